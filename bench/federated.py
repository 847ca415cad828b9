"""Federated against pooled against single-station training on NEU-DET, at one fixed total CPU budget.

    python bench/federated.py --rounds 4 --round-cpu 10 --json
    python bench/federated.py --rounds 6 --round-batches 20 --imgsz 96 --server-lr 3 --json

Three stations (three processes) each hold part of NEU-DET's train split, divided so that each sees mostly two
of the six classes (``--share`` of the pictures whose main class is one of its two; the rest spread over the
others). Each round every station fine-tunes the global model for ``--round-cpu`` CPU seconds (one torch
thread, its own process's CPU clock) and the server averages the weights (FedAvg weighted by parts), through a
real Flower server on loopback with a relay keeping the bytes each station sent. The baselines get the same
total, 3 x rounds x round-cpu CPU seconds: one model on the three stations' pooled parts, and each station alone
on its own parts (the best is reported). Every model starts from the same weights (``--base``, a new head for
NEU-DET's classes) and is scored by mAP50 on NEU-DET's common val split (360 pictures).

With ``--round-batches N`` the budget is counted in batches: each station trains exactly N per round, each
baseline 3 x rounds x N. That is the same compute whatever else runs on the machine; CPU seconds are not: on a
loaded machine the stations trained 5 to 15 batches per 10 CPU seconds from round to round while the baselines
averaged 20. ``--server-lr``, ``--server-momentum`` (FedAvgM) and ``--prox`` (FedProx) go to the server as
``inspector federate serve`` takes them. ``image_bytes_sent`` counts picture bytes found in what the stations
sent: any JPEG (JFIF) header, and a 64-byte sample from the middle of each of its pictures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import queue
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")

NEU = ROOT.parent / "shared" / "datasets" / "neu-det"
# the start of every NEU-DET picture file; the 3-byte start-of-image marker alone turns up by chance in tens of MB
# of weights (two hits in one 42 MB run), so the whole JFIF header is looked for
JPEG_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF"


def split_stations(ds, share: float, seed: int) -> dict[str, list]:
    """The train split in three: station k holds mostly the pictures whose main class is one of classes 2k, 2k+1."""
    rng = random.Random(seed)
    names = [f"station{k + 1}" for k in range(3)]
    out: dict[str, list] = {n: [] for n in names}
    for im in ds.splits["train"]:
        main = Counter(b.cls for b in im.boxes).most_common(1)[0][0] if im.boxes else rng.randrange(6)
        own = names[min(main // 2, 2)]
        out[own if rng.random() < share else rng.choice([n for n in names if n != own])].append(im)
    return out


def write_station(root: Path, images: list, classes: tuple[str, ...], data: Path) -> Path:
    """A VOC folder of links to the pictures and annotations (nothing copied), all in the train split."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "splits").mkdir()
    for im in images:
        (root / "images" / im.path.name).symlink_to(im.path)
        xml = data / "annotations" / f"{im.path.stem}.xml"
        (root / "annotations" / xml.name).symlink_to(xml)
    (root / "splits" / "train.txt").write_text("".join(f"{im.path.stem}\n" for im in images))
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in classes))
    return root


def _threads() -> None:
    import torch

    torch.set_num_threads(1)


def budget_clock(batches: bool):
    """The clock budgets are counted on: this process's CPU time, or (``--round-batches``) a counter that
    ``fine_tune`` advances by one per batch it has trained, so a budget of N is exactly N batches."""
    return itertools.count().__next__ if batches else time.process_time


def station_process(address: str, name: str, folder: str, cache: str, batches: bool = False) -> None:
    """One station: joins the federation and trains on its own parts, on its own CPU clock (or batch count)."""
    _threads()
    from inspector.federated.flower import StationClient, join

    join(address, StationClient(name, Path(folder), Path(cache), clock=budget_clock(batches), validate=False))


def alone_process(label: str, arrays_file: str, arch: str, classes: list, folder: str, cache: str, imgsz: int,
                  batch: int, budget: float, val_yaml: str, out: mp.Queue, batches: bool = False) -> None:
    """A baseline: the same start, ``budget`` CPU seconds on one folder's parts, then mAP50 on the common val."""
    _threads()
    import numpy as np

    from inspector.federated.local import build_network, fine_tune, load_arrays, local_data, map50

    model = build_network(arch, classes)
    with np.load(arrays_file) as z:
        load_arrays(model, [z[f"a{i}"] for i in range(len(z.files))])
    data = local_data(Path(folder), classes, Path(cache))
    cpu = time.process_time()
    r = fine_tune(model, data, imgsz=imgsz, budget_s=budget, batch=batch, clock=budget_clock(batches))
    cpu = time.process_time() - cpu
    out.put((label, map50(model, Path(val_yaml), imgsz), data.train_parts, r.batches, round(cpu, 1)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(NEU), help="NEU-DET (Pascal VOC with splits/)")
    p.add_argument("--base", default=str(ROOT / "models" / "surfaces-v1"), help="the start of every model")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--round-cpu", type=float, default=10.0, help="CPU seconds per station per round")
    p.add_argument("--round-batches", type=int, default=0, help="budget in batches instead of CPU seconds: each "
                   "station trains exactly this many per round, each baseline 3 x rounds x as many (the same "
                   "compute whatever else runs on the machine; 0: --round-cpu)")
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--share", type=float, default=0.9, help="share of a station's pictures from its two classes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, default=18731)
    p.add_argument("--prox", type=float, default=0.0, help="FedProx's proximal weight on the stations (0: off)")
    p.add_argument("--server-lr", type=float, default=1.0, help="FedAvgM: the server's step (1: the plain average)")
    p.add_argument("--server-momentum", type=float, default=0.0, help="FedAvgM: the server's momentum (0: none)")
    p.add_argument("--federated-only", action="store_true", help="skip the baselines (they depend only on the "
                   "total budget: compare with a run of the same total)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if not Path(a.data).is_dir():
        print(f"NEU-DET not found at {a.data}: give --data", file=sys.stderr)
        return 2
    _threads()
    import numpy as np

    from inspector.federated.flower import serve
    from inspector.federated.local import build_network, load_arrays, map50
    from inspector.federated.result import global_start
    from inspector.training.datasets import load_dataset, to_ultralytics
    from tests.netspy.relay import Relay

    started = time.time()
    ds = load_dataset(a.data)
    classes = tuple(ds.classes)
    work = Path(tempfile.mkdtemp(prefix="bench-federated-"))
    cache = work / "cache"
    parts = split_stations(ds, a.share, a.seed)
    data = Path(a.data).resolve()
    folders = {n: write_station(work / n, ims, classes, data) for n, ims in parts.items()}
    pooled = write_station(work / "pooled", [im for ims in parts.values() for im in ims], classes, data)
    mix = {n: dict(Counter(classes[Counter(b.cls for b in im.boxes).most_common(1)[0][0]] for im in ims
                           if im.boxes)) for n, ims in parts.items()}
    val_yaml = to_ultralytics(ds, cache)  # NEU-DET's own val split, the same for every model
    start = global_start(a.base, a.imgsz, classes)
    arrays_file = work / "start.npz"
    np.savez(arrays_file, **{f"a{i}": x for i, x in enumerate(start.arrays)})
    by_batches = a.round_batches > 0
    per_round = float(a.round_batches) if by_batches else a.round_cpu
    total = 3 * a.rounds * per_round
    ctx = mp.get_context("spawn")

    # the baselines first, in their own processes (one thread each, on their own CPU clocks)
    q: mp.Queue = ctx.Queue()
    jobs = [("pooled", str(pooled))] + [(n, str(f)) for n, f in folders.items()]
    if a.federated_only:
        jobs = []
    procs = [ctx.Process(target=alone_process, args=(label, str(arrays_file), start.architecture, list(classes),
                                                      folder, str(cache), a.imgsz, a.batch, total, str(val_yaml), q,
                                                      by_batches))
             for label, folder in jobs]
    for pr in procs:
        pr.start()
    alone: dict = {}
    while len(alone) < len(procs):
        try:
            label, m, n, batches, cpu = q.get(timeout=10)
        except queue.Empty:
            if sum(pr.is_alive() for pr in procs) < len(procs) - len(alone):
                print("a baseline process failed (its error is above)", file=sys.stderr)
                return 1
            continue
        alone[label] = {"map50": m, "parts": n, "batches": batches, "cpu_s": cpu}
    for pr in procs:
        pr.join()

    # the federation: a real Flower server here, three station processes, a relay per station
    relays = {n: Relay(("127.0.0.1", a.port)) for n in folders}
    stations = [ctx.Process(target=station_process, args=(relays[n].address, n, str(f), str(cache), by_batches))
                for n, f in folders.items()]
    for s in stations:
        s.start()
    fed = serve(start.arrays, architecture=start.architecture, classes=classes, imgsz=a.imgsz, rounds=a.rounds,
                min_stations=3, round_budget_s=per_round, address=f"127.0.0.1:{a.port}", batch=a.batch,
                prox=a.prox, server_lr=a.server_lr, server_momentum=a.server_momentum)
    for s in stations:
        s.join(timeout=60)
    model = build_network(start.architecture, classes)
    load_arrays(model, fed.arrays)
    fed_map = map50(model, val_yaml, a.imgsz)

    sent = {n: bytes(r.sent) for n, r in relays.items()}
    image_bytes = 0
    for n, stream in sent.items():
        image_bytes += stream.count(JPEG_HEADER) * len(JPEG_HEADER)
        for im in parts[n]:
            data = im.path.read_bytes()
            sample = data[len(data) // 2:len(data) // 2 + 64]
            image_bytes += len(sample) * stream.count(sample)
    singles = {n: v for n, v in alone.items() if n != "pooled"} or {"-": {"map50": None}}
    best = max(singles, key=lambda n: singles[n]["map50"] or 0)
    alone.setdefault("pooled", {"map50": None})
    result = {
        "federated_map50": fed_map, "pooled_map50": alone["pooled"]["map50"],
        "best_single_map50": singles[best]["map50"], "best_single": best,
        "single_map50": {n: v["map50"] for n, v in singles.items()},
        "rounds": a.rounds, "budget": "batches" if by_batches else "cpu_s", "round_budget": per_round,
        "total_budget": total,
        "prox": a.prox, "server_lr": a.server_lr, "server_momentum": a.server_momentum,
        "bytes_per_station_round": round(sum(len(s) for s in sent.values()) / len(sent) / a.rounds),
        "image_bytes_sent": image_bytes,
        "stations": {n: {"parts": len(parts[n]), "main_classes": mix[n]} for n in parts},
        "per_round": [{"round": r.round, "batches": {n: f.get("batches") for n, f in r.fit.items()}}
                      for r in fed.rounds],
        "baseline_batches": {n: v.get("batches") for n, v in alone.items()},
        "baseline_cpu_s": {n: v.get("cpu_s") for n, v in alone.items()},
        "imgsz": a.imgsz, "base": Path(a.base).name, "wall_s": round(time.time() - started, 1),
        "val_pictures": len(ds.splits["val"]),
    }
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    if a.federated_only:
        return 0
    target_pooled = result["federated_map50"] >= result["pooled_map50"] - 0.05
    target_single = result["federated_map50"] >= result["best_single_map50"] + 0.10
    print(f"within 0.05 of pooled: {target_pooled}; at least 0.10 over the best single station: {target_single}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

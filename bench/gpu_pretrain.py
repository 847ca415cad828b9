"""Does a base model pre-trained on the procedural surface corpus help on real defects? (GPU check)

One run, time-boxed phase by phase, on a machine with a GPU and no network:

1. generate the corpus (inspector/training/corpus.py) with every CPU core;
2. pre-train yolo11n from ``yolo11n.yaml`` on it (Ultralytics ``time=``);
3. train NEU-DET (its fixed splits/train.txt; splits/val.txt used only for validation) twice with the
   same settings and the same time budget: (a) from ``yolo11n.yaml``, (b) from the pre-trained base;
4. evaluate both best.pt on splits/val.txt and print one JSON line; copy the pre-trained base
   (optimizer stripped) and the JSON to $OUT.

    python3 gpu_pretrain.py [--total-s 470] [--count 50000] [--device 0]
    python3 gpu_pretrain.py --smoke            # tiny sizes on the CPU: proves the script end to end
    python bench/gpu_pretrain.py --stage DIR --wheels WHEELDIR   # (here) lay out DIR for the device

Nothing is downloaded: YOLO_OFFLINE=1, no plots (no fonts), the AMP self-check (which wants
yolo26n.pt) is skipped, and polars (not on the device) is never imported.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
T0 = time.monotonic()
# What the device tool runs, from the repository root, with carry=[".gpu"] and timeout_s about 540
RUN_COMMAND = (
    "cd .gpu && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade "
    "--target /tmp/site whl/*.whl && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 "
    "MPLBACKEND=Agg && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc; "
    "timeout -k 5 495 python3 gpu_pretrain.py --total-s 470 > $OUT/log.txt 2>&1; rc=$?; "
    "grep -aE '^\\[ *[0-9.]+s|^\\{|Error|Traceback' $OUT/log.txt | tail -n 60; echo rc=$rc; exit $rc")


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _corpus_module():
    try:
        from inspector.training import corpus  # noqa: F401 - only whether it imports
    except ImportError:  # on the device: a copy beside this script
        import pretrain_corpus as corpus
    return corpus


# ---------------------------------------------------------------------------------------------
# staging (runs here, not on the device)

def stage(dest: Path, wheels: Path | None, neu: Path) -> None:
    """Copy this script, the generator, the wheels and NEU-DET in Ultralytics layout into ``dest``."""
    root = HERE.parent
    sys.path.insert(0, str(root))
    from inspector.training.datasets import load_dataset

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(__file__, dest / "gpu_pretrain.py")
    shutil.copy2(root / "inspector" / "training" / "corpus.py", dest / "pretrain_corpus.py")
    if wheels:
        (dest / "whl").mkdir(exist_ok=True)
        for w in sorted(wheels.glob("*.whl")):
            shutil.copy2(w, dest / "whl" / w.name)
    ds = load_dataset(neu)
    out = dest / "neu"
    shutil.rmtree(out, ignore_errors=True)
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
        for im in ds.splits[split]:
            shutil.copy2(im.path, out / "images" / split / im.path.name)
            (out / "labels" / split / f"{im.path.stem}.txt").write_text("".join(
                f"{b.cls} {(b.x1 + b.x2) / 2 / im.width:.6f} {(b.y1 + b.y2) / 2 / im.height:.6f} "
                f"{(b.x2 - b.x1) / im.width:.6f} {(b.y2 - b.y1) / im.height:.6f}\n" for b in im.boxes))
    (out / "classes.txt").write_text("".join(c + "\n" for c in ds.classes))
    (dest / "RUN.txt").write_text(RUN_COMMAND + "\n")
    print(f"staged {dest}: NEU-DET {len(ds.splits['train'])} train / {len(ds.splits['val'])} val, "
          f"classes {', '.join(ds.classes)}")


# ---------------------------------------------------------------------------------------------
# device side

def _offline_ultralytics() -> None:
    """Keep Ultralytics from reaching for the network or for polars."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    for absent in ("polars", "ultralytics_platform"):  # not on the device: behave the same here
        sys.modules.setdefault(absent, None)  # type: ignore[arg-type]  # import -> ImportError
    import ultralytics.data.utils as du
    import ultralytics.engine.trainer as tr

    tr.check_amp = lambda model: True  # its self-check loads yolo26n.pt (a download)
    du.check_font = lambda *a, **k: None

    def read_results_csv(self) -> dict:
        try:
            with open(self.csv, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError:
            return {}
        out: dict = {}
        for r in rows:
            for k, v in r.items():
                try:
                    out.setdefault(k.strip(), []).append(float(v))
                except (TypeError, ValueError):
                    out.setdefault(k.strip(), []).append(v)
        return out

    tr.BaseTrainer.read_results_csv = read_results_csv


def _neu_yaml(neu: Path, work: Path, limit: int | None) -> Path:
    """A data.yaml (absolute paths) over a private copy of the staged NEU-DET folder."""
    copy = work / "neu"
    if not copy.exists():
        shutil.copytree(neu, copy)
    lists = {}
    for split in ("train", "val"):
        imgs = sorted((copy / "images" / split).glob("*.jpg"))
        if limit:
            imgs = imgs[:limit if split == "train" else max(8, limit // 3)]
        lst = work / f"neu_{split}.txt"
        lst.write_text("".join(f"{p}\n" for p in imgs))
        lists[split] = lst
    names = [c.strip() for c in (copy / "classes.txt").read_text().splitlines() if c.strip()]
    y = work / "neu.yaml"
    y.write_text(f"path: {json.dumps(str(copy))}\ntrain: {json.dumps(str(lists['train']))}\n"
                 f"val: {json.dumps(str(lists['val']))}\nnames:\n"
                 + "".join(f"  {i}: {json.dumps(n)}\n" for i, n in enumerate(names)))
    return y


def _gate(ref: str, work: Path) -> str:
    """What Ultralytics may read for ``ref``: the gate's rebuilt copy or checked architecture, never the file."""
    from inspector.detection.checkpoint import safe_source

    return str(safe_source(ref, work))


def _train(base: str, data: Path, name: str, work: Path, seconds: float, epochs_guess: int,
           a: argparse.Namespace, **extra) -> dict:
    """Train for ``seconds`` of Ultralytics' time mode. ``epochs_guess`` (what should fit) only sets what
    Ultralytics decides before its first epoch, as in a normal run: the 'auto' optimizer (AdamW below
    10k iterations, else SGD) and the warm-up; after the first epoch it fits epochs and schedule to the time."""
    from ultralytics import YOLO

    t = time.monotonic()
    model = YOLO(_gate(base, work / "gate" / name))
    args = dict(data=str(data), imgsz=extra.pop("imgsz"), batch=extra.pop("batch"), device=a.device,
                workers=a.workers, project=str(work / "runs"), name=name, exist_ok=True, plots=False,
                verbose=False, amp=a.device != "cpu", seed=0, deterministic=False, val=True,
                patience=1000, cache="ram")
    args["epochs"] = epochs_guess
    args["time"] = seconds / 3600
    args.update(extra)
    model.train(**args)
    run = work / "runs" / name
    best = run / "weights" / "best.pt"
    if not best.exists():
        best = run / "weights" / "last.pt"
    epochs = 0
    try:
        epochs = max(0, len((run / "results.csv").read_text().strip().splitlines()) - 1)
    except OSError:
        pass
    took = time.monotonic() - t
    say(f"{name}: {epochs} epochs in {took:.0f} s (train budget {seconds:.0f} s)")
    opt = getattr(getattr(model, "trainer", None), "optimizer", None)
    return {"best": str(best), "epochs": epochs, "seconds": round(took, 1), "budget_s": round(seconds, 1),
            "optimizer": type(opt).__name__ if opt is not None else None}


def _evaluate(weights: str, data: Path, imgsz: int, a: argparse.Namespace) -> dict:
    from ultralytics import YOLO

    m = YOLO(_gate(weights, Path(weights).parent / "gate"))
    r = m.val(data=str(data), split="val", imgsz=imgsz, batch=32, device=a.device, plots=False, verbose=False,
              workers=a.workers)
    names = r.names
    per_class = {names[int(c)]: round(float(ap), 4) for c, ap in zip(r.box.ap_class_index, r.box.ap50, strict=True)}
    return {"map50": round(float(r.box.map50), 4), "map50_95": round(float(r.box.map), 4),
            "per_class_ap50": per_class}


def run(a: argparse.Namespace) -> dict:
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = Path(a.out or os.environ.get("OUT") or work / "out")
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"smoke": a.smoke, "device": a.device, "imgsz": a.imgsz, "neu_imgsz": a.neu_imgsz}

    def left() -> float:
        return a.total_s - (time.monotonic() - T0)

    # 1. corpus
    pc = _corpus_module()
    say(f"generating up to {a.count} corpus images at {a.imgsz} px with {a.gen_workers} processes "
        f"(budget {a.gen_s:.0f} s)")
    info = pc.write_corpus(work / "corpus", a.count, seed=a.seed, size=a.imgsz, workers=a.gen_workers,
                           val_every=a.val_every, time_budget_s=a.gen_s)
    result["corpus"] = {k: info[k] for k in ("count", "train", "val", "seconds", "boxes_per_class",
                                              "images_per_surface")}
    result["corpus"]["ms_per_image_per_process"] = round(info["seconds"] / max(1, info["count"]) * 1000
                                                         * a.gen_workers, 2)
    _save(result, out)
    say(f"corpus: {info['count']} images in {info['seconds']} s "
        f"({info['seconds'] / max(1, info['count']) * 1000 * a.gen_workers:.1f} ms per image per process)")

    _offline_ultralytics()
    import torch

    result["torch"] = torch.__version__
    if a.device != "cpu":
        result["gpu"] = torch.cuda.get_device_name(0)
    import ultralytics

    result["ultralytics"] = ultralytics.__version__

    # 2. pre-train, with what is left after keeping time for the two NEU runs and their checks
    neu_total = 2 * (a.neu_s + a.neu_overhead_s)
    pre_s = max(30.0, min(a.pretrain_s, left() - neu_total - a.pretrain_overhead_s))
    say(f"pre-training yolo11n.yaml on the corpus for {pre_s:.0f} s ({left():.0f} s left in all)")
    pre = _train("yolo11n.yaml", work / "corpus" / "data.yaml", "pretrain", work, pre_s, a.pre_epochs, a,
                 imgsz=a.imgsz,
                 batch=a.batch, close_mosaic=a.pre_close_mosaic, warmup_epochs=1.0)
    pre.update(_final_metrics(Path(pre["best"]).parent.parent))
    result["pretrain"] = pre
    base = out / "surfaces-yolo11n.pt"
    from inspector.detection.checkpoint import rebuild

    rebuild(Path(pre["best"]), base, half=True)  # the weights without the optimizer, rebuilt from the tensors
    result["pretrain"]["base_bytes"] = base.stat().st_size
    say(f"pre-trained: {pre['epochs']} epochs, corpus val mAP50 {pre.get('map50')}, base {base.stat().st_size} bytes")
    _save(result, out)

    # 3. NEU-DET twice, same settings and budget
    neu_yaml = _neu_yaml(Path(a.neu), work, 40 if a.smoke else None)
    for arm, start in (("neu_scratch", "yolo11n.yaml"), ("neu_pretrained", str(base))):
        budget = max(20.0, min(a.neu_s, (left() - a.neu_overhead_s) if arm == "neu_pretrained"
                               else (left() - a.neu_overhead_s * 2) / 2))
        say(f"{arm}: from {Path(start).name} for {budget:.0f} s")
        r = _train(start, neu_yaml, arm, work, budget, a.neu_epochs, a, imgsz=a.neu_imgsz, batch=a.neu_batch)
        r.update(_evaluate(r["best"], neu_yaml, a.neu_imgsz, a))
        result[arm] = r
        say(f"{arm}: mAP50 {r['map50']}, mAP50-95 {r['map50_95']}, {r['epochs']} epochs")
        _save(result, out)
    result["neu_scratch_map50"] = result["neu_scratch"]["map50"]
    result["neu_pretrained_map50"] = result["neu_pretrained"]["map50"]
    result["wall_s"] = round(time.monotonic() - T0, 1)
    _save(result, out)
    for name in ("pretrain", "neu_scratch", "neu_pretrained"):
        src = work / "runs" / name / "results.csv"
        if src.exists():
            shutil.copy2(src, out / f"{name}_results.csv")
    return result


def _final_metrics(run: Path) -> dict:
    try:
        rows = list(csv.DictReader(open(run / "results.csv", newline="")))
    except OSError:
        return {}
    if not rows:
        return {}
    last = {k.strip(): v for k, v in rows[-1].items()}
    best = max(float(r.get("metrics/mAP50(B)", 0) or 0) for r in ({k.strip(): v for k, v in x.items()} for x in rows))
    return {"map50": round(float(last.get("metrics/mAP50(B)", 0) or 0), 4),
            "map50_95": round(float(last.get("metrics/mAP50-95(B)", 0) or 0), 4), "best_map50": round(best, 4)}


def _save(result: dict, out: Path) -> None:
    (out / "gpu_pretrain.json").write_text(json.dumps(result, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", default=None, help="(here) lay out this folder for the device and stop")
    ap.add_argument("--wheels", default=None, help="with --stage: folder of wheels to copy")
    ap.add_argument("--neu", default=str(HERE / "neu"), help="staged NEU-DET (Ultralytics layout)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, CPU, one epoch a phase")
    ap.add_argument("--device", default=None)
    ap.add_argument("--work", default="/tmp/gpu_pretrain")
    ap.add_argument("--out", default=None, help="default: $OUT")
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--neu-imgsz", type=int, default=320)
    ap.add_argument("--val-every", type=int, default=100)
    ap.add_argument("--gen-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--workers", type=int, default=14, help="Ultralytics data loader workers")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--neu-batch", type=int, default=32)
    ap.add_argument("--total-s", type=float, default=470, help="the whole script's wall budget")
    ap.add_argument("--gen-s", type=float, default=60)
    ap.add_argument("--pretrain-s", type=float, default=200, help="pre-training loop time, at most")
    ap.add_argument("--pretrain-overhead-s", type=float, default=35, help="caching, final validation")
    ap.add_argument("--pre-close-mosaic", type=int, default=2)
    ap.add_argument("--pre-epochs", type=int, default=10, help="epochs expected to fit the pre-training time")
    ap.add_argument("--neu-epochs", type=int, default=30, help="epochs expected to fit each NEU run's time")
    ap.add_argument("--neu-s", type=float, default=75, help="each NEU-DET run's training loop time")
    ap.add_argument("--neu-overhead-s", type=float, default=20, help="each NEU run's setup and evaluation")
    a = ap.parse_args()
    if a.stage:
        stage(Path(a.stage), Path(a.wheels) if a.wheels else None,
              HERE.parent.parent / "shared" / "datasets" / "neu-det")
        return 0
    if a.smoke:
        a.device = a.device or "cpu"
        a.count = min(a.count, 200)
        a.imgsz = a.neu_imgsz = 128
        a.val_every = 5
        a.gen_workers = min(a.gen_workers, 2)
        a.workers = 2
        a.batch = a.neu_batch = 16
        a.gen_s, a.pretrain_s, a.neu_s = 20, 12, 8
        a.pretrain_overhead_s, a.neu_overhead_s, a.total_s = 10, 10, 120
    a.device = a.device or "0"
    say(f"start: python {sys.version.split()[0]}, {os.cpu_count()} cpus, args {vars(a)}")
    result = run(a)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

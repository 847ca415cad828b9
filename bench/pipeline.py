"""Throughput of Inspector on this machine, from one run on the same frames.

Prints: model-only frames/s (the default backend alone, pre/post-processing included, the better
of one image at a time and queued two deep as the runner feeds it), full pipeline frames/s (folder
source decoding, inference, rules, SQLite rows and JPEG files), their ratio; Ultralytics' own
PyTorch and OpenVINO predict on the same frames and model for comparison; INT8 speed and its mAP50
cost; time to the first verdict; CPU seconds per inspection. ``--json`` makes the last line one JSON object.
``--size WxH`` makes the frames camera-sized JPEGs (the parts upscaled, as a 5 MP camera sees them).

``--peer`` compares end to end with the 30-line script a plant engineer would write (Ultralytics' OpenVINO
export, one SQLite commit and one ``cv2.imwrite`` per part: ../shared/acceptance/lib/peer_pipeline.py)
on the same folders, 320x320 and 2448x2048 (or ``--sizes``), interleaved with ``inspector run``, medians of
three; JSON keys per size: parts_per_s, peer_parts_per_s, vs_peer, latency_p50_ms, latency_p99_ms.

    python bench/pipeline.py [--frames 200] [--size 2448x2048] [--model PATH] [--quick] [--json]
    python bench/pipeline.py --peer [--sizes 320x320,2448x2048] [--json]
    python bench/pipeline.py --peer --tiles [--tile 320 --overlap 64 --parts 40] [--json]

``--peer --tiles``: 2448x2048 JPEGs (synthetic parts pasted at their own scale) judged by ``inspector run`` with
a recipe that tiles them, against bench/sahi_peer.py (SAHI's sliced prediction on Ultralytics' OpenVINO export,
same tiles, same overlap); keys parts_per_s, sahi_parts_per_s, vs_sahi.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from inspector.core.privacy import guard_process  # noqa: E402 - the project root is on sys.path first

# isort: split

import cv2  # noqa: E402
import numpy as np  # noqa: E402

PEER = ROOT.parent / "shared" / "acceptance" / "lib" / "peer_pipeline.py"
IN_MEMORY = 40  # camera-sized frames kept decoded for the model-only rounds (5 MP: 15 MB each)


def cpu_flags() -> str:
    from inspector.detection.setup import cpu_flags as flags

    return " ".join(flags()) or "unknown"


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    if not (w.isdigit() and h.isdigit() and int(w) >= 32 and int(h) >= 32):
        raise SystemExit(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 2448x2048")
    return int(w), int(h)


def _frames(folder: Path, n: int, seed: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """``n`` synthetic parts written as JPEG files (upscaled to ``size`` with sensor-like noise, as the
    acceptance check makes its 5 MP folder); returns the decoded frames (at most IN_MEMORY when upscaled)."""
    from inspector.sources.synth import generate

    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    rng = np.random.default_rng(seed)
    for stem, part in generate(n, seed):
        im = part.image
        if size is not None and (im.shape[1], im.shape[0]) != size:
            im = cv2.resize(im, size, interpolation=cv2.INTER_CUBIC)
            im = np.clip(im.astype(np.int16) + rng.integers(-6, 7, im.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{stem}.jpg"), im, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if size is None or len(frames) < IN_MEMORY:
            frames.append(im)
    return frames


def _fps(detect, frames: list[np.ndarray], rounds: int = 3) -> float:
    """Median frames/s over rounds, after a warm-up."""
    for f in frames[:5]:
        detect(f)
    results = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for f in frames:
            detect(f)
        results.append(len(frames) / (time.perf_counter() - t0))
    return statistics.median(results)


def _queued_fps(det, frames: list[np.ndarray], rounds: int = 3) -> float:
    """Median frames/s of the detector alone fed as the runner feeds it: the next image is queued
    (``submit``) before this one's result is taken, ``depth`` at a time."""
    def run(fs: list[np.ndarray]) -> None:
        pending: list = []
        for f in fs:
            if len(pending) >= det.depth:
                pending.pop(0).result()
            pending.append(det.submit(f))
        for p in pending:
            p.result()

    run(frames[:5])
    results = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        run(frames)
        results.append(len(frames) / (time.perf_counter() - t0))
    return statistics.median(results)


def _children_cpu_s() -> float:
    """CPU seconds of the finished child processes (Unix; 0 where it cannot be read)."""
    try:
        import resource
    except ImportError:
        return 0.0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _pipeline_fps(folder: Path, model: Path, db_dir: Path, n: int, db_name: str = "bench.db") -> tuple[float, dict]:
    """Run the real station (folder -> model -> rules -> SQLite + JPEGs) as ``inspector run`` over ``n`` frames
    (the folder looped, as the model-only rounds loop it); return parts/s. In a process of its own: the
    model-only rounds' compiled model, idle in this process, would otherwise share the cores with it."""
    j = _inspector_run(folder, db_dir / db_name.removesuffix(".db"), str(model), ["--loop", "--max-frames", str(n)])
    return j["fps"], {"inspected": j["frames"], "latency_p50_ms": j["latency_p50_ms"],
                      "latency_p99_ms": j["latency_p99_ms"]}


def _first_verdict_s(folder: Path, model: Path, db_dir: Path) -> float:
    """Wall time from starting `inspector run` to its first printed verdict line."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "inspector.cli", "run", "--source", str(folder), "--model", str(model),
                          "--db", f"sqlite:///{(db_dir / 'first.db').as_posix()}", "--max-frames", "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    first = None
    for line in p.stdout:
        if line.startswith("#") and first is None:
            first = time.perf_counter() - t0
    p.wait()
    return first if first is not None else float("nan")


def main() -> int:
    guard_process()  # the offline guard: nothing this benchmark runs may call out
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--model", default=None, help="model folder or file (default: the shipped model)")
    ap.add_argument("--quick", action="store_true", help="skip the Ultralytics comparisons and INT8")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--size", default=None, help="camera frame size WxH (default: the 320x320 parts as they are)")
    ap.add_argument("--peer", action="store_true", help="end to end against the 30-line script, both sizes")
    ap.add_argument("--sizes", default="320x320,2448x2048", help="sizes for --peer (default 320x320,2448x2048)")
    ap.add_argument("--tiles", action="store_true", help="with --peer: 2448x2048 pictures judged tile by tile "
                    "(a recipe with tile_size) against SAHI's sliced prediction (bench/sahi_peer.py)")
    ap.add_argument("--tile", type=int, default=320, help="--tiles: tile size in camera pixels (default 320)")
    ap.add_argument("--overlap", type=int, default=64, help="--tiles: pixels neighbouring tiles share (default 64)")
    ap.add_argument("--parts", type=int, default=40, help="--tiles: pictures per round (default 40)")
    a = ap.parse_args()
    if a.peer and a.tiles:
        return _tiles_main(a)
    if a.peer:
        return _peer_main(a)

    from inspector.core.config import Config, ModelConfig
    from inspector.detection.detector import load_detector
    from inspector.detection.offline import keep_data_local
    from inspector.detection.registry import ModelRegistry, resolve_model
    from inspector.lifecycle.tune import first_start_tune

    keep_data_local()
    tmp = Path(tempfile.mkdtemp(prefix="inspector-bench-"))
    out: dict = {}
    try:
        folder = tmp / "frames"
        size = _size(a.size) if a.size else None
        frames = _frames(folder, a.frames, seed=90210, size=size)
        out["size"] = f"{frames[0].shape[1]}x{frames[0].shape[0]}"
        out["cpu_flags"] = cpu_flags()
        model_dir = resolve_model(a.model, (".onnx", ".pt")).parent if a.model is None or Path(a.model).is_dir() \
            else Path(a.model)
        reg = ModelRegistry()
        det = load_detector(ModelConfig(path=model_dir), conf=0.25, registry=reg)
        # the station tunes after a model's first run on a machine: measure what it runs from then on, the model
        # alone and the station alike (otherwise the first pipeline round would tune, and the later rounds would
        # run another set-up than the model-only rounds)
        if first_start_tune(det.path, det.sha256, Config(), det.setup.backend) is not None:
            del det
            det = load_detector(ModelConfig(path=model_dir), conf=0.25, registry=reg)
        out["backend"] = det.setup.backend
        out["setup"] = f"{det.setup.label} ({(det.setup.tune or {}).get('status', 'not tunable')})"
        imgsz = getattr(det, "imgsz", 320)
        out["imgsz"] = imgsz
        # The model alone, both ways the station can call it (one image at a time, and queued: the
        # runtime holds the next image while Python finishes this one), and the whole station, in
        # rounds interleaved so that background load hits all three alike; medians of the rounds.
        # model_fps is the better of the two model-only figures.
        queued = getattr(det, "depth", 1) > 1
        rounds: dict[str, list[float]] = {"one": [], "queued": [], "pipeline": []}
        cpu_s, inspected = 0.0, 0
        for i in range(5):
            rounds["one"].append(_fps(det.detect, frames, rounds=1))
            if queued:
                rounds["queued"].append(_queued_fps(det, frames, rounds=1))
            cpu0 = _children_cpu_s()  # the run's process: capture, inference, writer (and its start)
            fps, done = _pipeline_fps(folder, model_dir, tmp, 3 * a.frames if size is None else a.frames,
                                      f"bench{i}.db")
            cpu_s += _children_cpu_s() - cpu0
            inspected += done["inspected"]
            rounds["pipeline"].append(fps)
            rounds.setdefault("latency_p50", []).append(done["latency_p50_ms"])
            rounds.setdefault("latency_p99", []).append(done["latency_p99_ms"])
        med = {k: statistics.median(v) for k, v in rounds.items() if v}
        del det
        out["model_fps_one_at_a_time"] = round(med["one"], 2)
        out["model_fps_queued"] = round(med.get("queued", med["one"]), 2)
        out["model_fps"] = max(out["model_fps_one_at_a_time"], out["model_fps_queued"])
        p_fps = med["pipeline"]
        out["pipeline_fps"] = round(p_fps, 2)
        out["pipeline_ratio"] = round(p_fps / out["model_fps"], 3)
        out["cpu_s_per_inspection"] = round(cpu_s / max(inspected, 1), 4)
        out["latency_p50_ms"] = round(med["latency_p50"], 1)
        out["latency_p99_ms"] = round(med["latency_p99"], 1)
        # in model-inference times: one image at a time, the model alone
        out["latency_p50_in_inference_times"] = round(med["latency_p50"] / (1000 / med["one"]), 2)
        out["first_verdict_s"] = round(_first_verdict_s(folder, model_dir, tmp), 2)
        flags = f"[{out['size']} frames; CPU flags: {out['cpu_flags']}]"
        print(f"set-up measured: {out['setup']}")
        print(f"model only ({out['backend']}, {imgsz} px): {out['model_fps']:.1f} frames/s (one image at a time "
              f"{out['model_fps_one_at_a_time']:.1f}, queued {out['model_fps_queued']:.1f}) {flags}")
        print(f"full pipeline (folder, rules, SQLite, JPEG files): {out['pipeline_fps']:.1f} frames/s "
              f"= {out['pipeline_ratio']:.2f}x model-only {flags}")
        print(f"latency read -> committed verdict: p50 {out['latency_p50_ms']:.0f} ms "
              f"({out['latency_p50_in_inference_times']:.1f} inference times), p99 {out['latency_p99_ms']:.0f} ms "
              f"{flags}")
        print(f"first verdict after {out['first_verdict_s']:.2f} s; {out['cpu_s_per_inspection'] * 1000:.1f} "
              f"CPU-ms per inspection, the run's start-up included {flags}")
        if not a.quick:
            _compare(out, frames, model_dir, imgsz, reg, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        print(json.dumps(out))
    return 0


def _compare(out: dict, frames: list[np.ndarray], model_dir: Path, imgsz: int, reg, tmp: Path) -> None:
    """Ultralytics' own paths and our INT8 model, interleaved with ours in one run; then INT8's accuracy."""
    from ultralytics import YOLO

    from inspector.core.config import ModelConfig
    from inspector.detection.checkpoint import rebuild
    from inspector.detection.detector import load_detector

    pt = next(iter(sorted(model_dir.glob("*.pt"))))
    reg.check(pt)
    # Ultralytics reads only a copy rebuilt from the tensors (and exports beside it, not into models/)
    local = rebuild(pt, tmp / pt.name)
    torch_model = YOLO(str(local), task="detect")
    ov_dir = Path(YOLO(str(local), task="detect").export(format="openvino", imgsz=imgsz, verbose=False))
    ov_model = YOLO(str(ov_dir), task="detect")
    # the same resources as Ultralytics' predict, which uses every core (the station itself keeps one
    # core for capture and writing: model_fps above is measured at that setting)
    cores = os.cpu_count() or 1
    out["compare_threads"] = cores
    ours = load_detector(ModelConfig(path=model_dir, threads=cores), conf=0.25, registry=reg)
    try:
        q = _int8_model(model_dir, reg, tmp)
        q8 = load_detector(ModelConfig(path=q, threads=cores), conf=0.25, registry=reg)
    except ImportError as e:
        print(f"INT8 not measured: {e}")
        q, q8 = None, None

    def ul(m):
        return lambda f: m.predict(f, imgsz=imgsz, conf=0.25, verbose=False, device="cpu")

    paths = {"torch": ul(torch_model), "ov": ul(ov_model), "ours": ours.detect}
    if q8 is not None:
        paths["int8"] = q8.detect
    rounds: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(3):  # interleaved, so background load hits all alike
        for k, detect in paths.items():
            rounds[k].append(_fps(detect, frames, rounds=1))
    med = {k: statistics.median(v) for k, v in rounds.items()}
    out["ultralytics_torch_fps"] = round(med["torch"], 2)
    out["ultralytics_openvino_fps"] = round(med["ov"], 2)
    out["default_fps"] = round(med["ours"], 2)
    out["speedup"] = round(med["ours"] / med["torch"], 3)
    out["vs_ultralytics_openvino"] = round(med["ours"] / med["ov"], 3)
    print(f"Ultralytics PyTorch predict: {med['torch']:.1f} frames/s; its OpenVINO export: {med['ov']:.1f}; "
          f"Inspector {out['backend']} ({cores} threads): {med['ours']:.1f} = {out['speedup']:.2f}x PyTorch, "
          f"{out['vs_ultralytics_openvino']:.2f}x Ultralytics OpenVINO")
    if q is not None:
        out["int8_fps"] = round(med["int8"], 2)
        out["int8_speedup"] = round(med["int8"] / med["torch"], 3)
        _int8_accuracy(out, q, model_dir, reg, tmp)


def _int8_model(model_dir: Path, reg, tmp: Path) -> Path:
    """The shipped model quantised as `inspector export --int8` does it, on fresh synthetic parts."""
    from inspector.lifecycle.export import CALIBRATION_IMAGES, export_int8
    from inspector.sources.synth import write_dataset

    # as many calibration images as `inspector export --int8` takes from a training set by default
    write_dataset(tmp / "calib", CALIBRATION_IMAGES, seed=4242)
    calib = sorted((tmp / "calib" / "images").glob("*.jpg"))
    onnx = next(iter(sorted(model_dir.glob("*.onnx"))))
    work = tmp / "int8"
    work.mkdir()
    shutil.copy2(onnx, work / onnx.name)
    q = export_int8(work / onnx.name, calib)
    for f in sorted(work.iterdir()):
        reg.allow(f, "made by this benchmark")
    return q


def _int8_accuracy(out: dict, q: Path, model_dir: Path, reg, tmp: Path) -> None:
    from inspector.core.config import ModelConfig, RecipeConfig
    from inspector.detection.detector import load_detector
    from inspector.inspection.rules import Recipe
    from inspector.sources.synth import write_dataset
    from inspector.training.datasets import load_dataset
    from inspector.training.evaluation import evaluate

    test = tmp / "test"
    write_dataset(test, 300, seed=777001)
    ds = load_dataset(test)
    recipe = Recipe(RecipeConfig())
    lo8 = load_detector(ModelConfig(path=q), conf=0.001, registry=reg)
    lofp = load_detector(ModelConfig(path=model_dir), conf=0.001, registry=reg)
    m8 = evaluate(lo8, ds, ds.split("all"), recipe).map50
    mfp = evaluate(lofp, ds, ds.split("all"), recipe).map50
    out["int8_map50"] = round(m8, 4)
    out["float_map50"] = round(mfp, 4)  # the shipped model at the default precision
    out["int8_map50_drop"] = round(mfp - m8, 4)
    print(f"INT8: {out['int8_fps']:.1f} frames/s = {out['int8_speedup']:.2f}x PyTorch; "
          f"mAP50 {mfp:.3f} -> {m8:.3f} (drop {out['int8_map50_drop']:.3f}) on 300 fresh synthetic parts")


def _peer_main(a) -> int:
    """``inspector run`` and the 30-line script on the same folders, interleaved, medians of three."""
    if not PEER.is_file():
        print(f"--peer skipped: the 30-line script is not here ({PEER}); it lives with the acceptance checks.")
        return 0
    from inspector.detection.registry import resolve_model

    pt = resolve_model(a.model, (".pt",))
    out: dict = {"cpu_flags": cpu_flags(), "rounds": 3}
    tmp = Path(tempfile.mkdtemp(prefix="inspector-peer-"))
    try:
        for text in a.sizes.split(","):
            size = _size(text.strip())
            n = 300 if size == (320, 320) else 100  # as the acceptance check: 300 small parts, 100 camera frames
            folder = tmp / f"f{size[0]}x{size[1]}"
            _frames(folder, n, seed=13013, size=None if size == (320, 320) else size)
            if "setup" not in out:  # a model's first run here tunes when it ends: measure what runs from then on
                warm = _inspector_run(folder, tmp / "warm", a.model, ["--max-frames", "5"])
                warm = _inspector_run(folder, tmp / "warm2", a.model, ["--max-frames", "5"])
                run = (warm.get("tune") or {}).get("running") or {}
                out["setup"] = f"{run.get('backend')} {run.get('precision')} x{run.get('threads')} " \
                               f"{run.get('streams', 1)} stream(s) ({(warm.get('tune') or {}).get('status')})"
                print(f"set-up measured: {out['setup']}")
            ours, peer, p50, p99 = [], [], [], []
            for r in range(3):
                j = _inspector_run(folder, tmp / f"r{r}", a.model)
                ours.append(j["fps"])
                p50.append(j["latency_p50_ms"])
                p99.append(j["latency_p99_ms"])
                peer.append(_peer_run(pt, folder, tmp / f"p{r}"))
            med = statistics.median
            fig = {"parts_per_s": round(med(ours), 2), "peer_parts_per_s": round(med(peer), 2),
                   "latency_p50_ms": round(med(p50), 1), "latency_p99_ms": round(med(p99), 1),
                   "inspector_rounds": ours, "peer_rounds": peer}
            fig["vs_peer"] = round(fig["parts_per_s"] / fig["peer_parts_per_s"], 3)
            out[text.strip()] = fig
            print(f"{text.strip()} ({n} parts): inspector run {fig['parts_per_s']:.1f} parts/s, 30-line script "
                  f"{fig['peer_parts_per_s']:.1f} = {fig['vs_peer']:.2f}x; latency p50 {fig['latency_p50_ms']:.0f} ms "
                  f"p99 {fig['latency_p99_ms']:.0f} ms; rounds {ours} vs {peer} [CPU flags: {out['cpu_flags']}]")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        print(json.dumps(out))
    return 0


def _pasted(folder: Path, n: int, seed: int, size: tuple[int, int]) -> None:
    """``n`` synthetic parts, each pasted at its own scale at a random place into a camera-sized picture of
    noisy plain background (as ../shared/acceptance/tiles makes them): small defects on a large picture."""
    from inspector.sources.synth import generate

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for stem, part in generate(n, seed):
        im = part.image
        h, w = im.shape[:2]
        border = np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]]).reshape(-1, 3)
        big = np.clip(np.median(border, axis=0) + rng.normal(0, 4, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        x0, y0 = int(rng.integers(0, size[0] - w)), int(rng.integers(0, size[1] - h))
        big[y0:y0 + h, x0:x0 + w] = im
        cv2.imwrite(str(folder / f"big_{stem}.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 95])


def _tiles_main(a) -> int:
    """``inspector run`` with a tiled recipe and SAHI's sliced prediction on the same 2448x2048 JPEGs,
    interleaved, medians of three."""
    from inspector.detection.registry import resolve_model
    from inspector.detection.tiling import Tiling, tile_grid

    pt = resolve_model(a.model, (".pt",))
    size = (2448, 2048)
    tiles = len(tile_grid(*size, Tiling(a.tile, a.overlap)))
    out: dict = {"cpu_flags": cpu_flags(), "rounds": 3, "tile": a.tile, "overlap": a.overlap,
                 "tiles_per_picture": tiles, "load_before": round(os.getloadavg()[0], 1)}
    tmp = Path(tempfile.mkdtemp(prefix="inspector-tiles-"))
    try:
        from inspector.detection.checkpoint import rebuild

        gated = rebuild(pt, tmp / pt.name)  # the peer's Ultralytics reads only a copy rebuilt from the tensors
        folder = tmp / "big"
        _pasted(folder, a.parts, seed=13013, size=size)
        recipe = tmp / "tiles.toml"
        recipe.write_text(f'name = "tiles"\ntile_size = {a.tile}\ntile_overlap = {a.overlap}\n')
        extra = ["--recipe", str(recipe)]
        warm = _inspector_run(folder, tmp / "warm", a.model, extra + ["--max-frames", "3"])
        run = (warm.get("tune") or {}).get("running") or {}
        out["setup"] = f"{run.get('backend')} {run.get('precision')} x{run.get('threads')} " \
                       f"{run.get('streams', 1)} stream(s) ({(warm.get('tune') or {}).get('status')})"
        ours, peer, p50 = [], [], []
        for r in range(3):
            j = _inspector_run(folder, tmp / f"r{r}", a.model, extra)
            ours.append(j["fps"])
            p50.append(j["latency_p50_ms"])
            peer.append(_peer_run(gated, folder, tmp / f"p{r}", [str(ROOT / "bench" / "sahi_peer.py")],
                                  [str(a.tile), str(a.overlap)]))
        med = statistics.median
        fig = {"parts_per_s": round(med(ours), 2), "sahi_parts_per_s": round(med(peer), 2),
               "latency_p50_ms": round(med(p50), 1), "inspector_rounds": ours, "sahi_rounds": peer}
        fig["vs_sahi"] = round(fig["parts_per_s"] / fig["sahi_parts_per_s"], 3)
        out["2448x2048"] = fig
        out["load_after"] = round(os.getloadavg()[0], 1)
        print(f"2448x2048 tiled ({a.parts} parts, {tiles} tiles of {a.tile} px, overlap {a.overlap}; {out['setup']}): "
              f"inspector run {fig['parts_per_s']:.2f} parts/s, SAHI sliced prediction {fig['sahi_parts_per_s']:.2f}"
              f" = {fig['vs_sahi']:.2f}x; latency p50 {fig['latency_p50_ms']:.0f} ms; rounds {ours} vs {peer} "
              f"[CPU flags: {out['cpu_flags']}; load average {out['load_before']} -> {out['load_after']}]")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        print(json.dumps(out))
    return 0


def _inspector_run(folder: Path, work: Path, model: str | None, extra: list[str] | None = None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "inspector.cli", "run", "--source", str(folder), "--db",
           f"sqlite:///{(work / 'i.db').as_posix()}", "--json", "--quiet"] + (["--model", model] if model else [])
    cmd += extra or []
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode or not lines:
        raise SystemExit(f"inspector run failed ({p.returncode}): {p.stderr.strip()[-400:]}")
    return json.loads(lines[-1])


def _peer_run(pt: Path, folder: Path, work: Path, script: list[str] | None = None,
              args: list[str] | None = None) -> float:
    p = subprocess.run([sys.executable, *(script or [str(PEER)]), str(pt), str(folder), str(work),
                        *(args or ["320"])], capture_output=True, text=True, env=dict(os.environ, YOLO_OFFLINE="1"))
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode or not lines:
        raise SystemExit(f"the 30-line script failed ({p.returncode}): {p.stderr.strip()[-400:]}")
    return float(json.loads(lines[-1])["peer_parts_per_s"])


if __name__ == "__main__":
    sys.exit(main())

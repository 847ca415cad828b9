"""Frames per second of each way to run one YOLO model on the CPU, measured in one run.

Ultralytics' own predict (PyTorch, its ONNX export, its OpenVINO export) against Inspector's
FastDetector (ONNX Runtime, OpenVINO FP32 and bf16, OpenVINO INT8), all on the same synthetic
frames, one image at a time, pre- and post-processing included; the median of interleaved rounds.
Each backend runs in its own process and idles while another is timed: in one process, one
runtime's spinning thread pool slowed the next one down by up to half. It also gives the
mAP50 of each on those frames' labels (at conf 0.001), so that a faster path that loses accuracy
shows it.

    python bench/backends.py [--model PATH] [--frames 100] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inspector.core.privacy import guard_process  # noqa: E402 - the project root is on sys.path first

# isort: split

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from inspector.core.errors import InspectorError
from inspector.detection.card import load_card
from inspector.detection.checkpoint import rebuild
from inspector.detection.fast import FastDetector, auto_threads
from inspector.detection.registry import resolve_model
from inspector.lifecycle.export import export_int8, export_onnx

EVAL_CONF = 0.001


def _read_frames(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Frames of a YOLO folder and their labels as (n, 5) rows cls x1 y1 x2 y2 in pixels."""
    out = []
    for img_path in sorted((folder / "images").glob("*.jpg")):
        image = cv2.imread(str(img_path))
        h, w = image.shape[:2]
        lab = folder / "labels" / f"{img_path.stem}.txt"
        rows = np.loadtxt(lab, ndmin=2) if lab.exists() and lab.stat().st_size else np.zeros((0, 5))
        boxes = np.zeros((len(rows), 5))
        if len(rows):
            cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
            boxes = np.stack([rows[:, 0], cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        out.append((image, boxes))
    return out


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter / (area + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter + 1e-9)


def map50(preds: list[list[tuple[int, float, tuple[float, ...]]]], gts: list[np.ndarray]) -> float:
    """Mean over labelled classes of the 101-point interpolated AP at IoU 0.5 (as COCO/Ultralytics)."""
    classes = sorted({int(c) for g in gts for c in g[:, 0]})
    aps = []
    for c in classes:
        dets = [(conf, i, np.array(box)) for i, p in enumerate(preds) for cls, conf, box in p if cls == c]
        dets.sort(key=lambda d: -d[0])
        gt_c = [g[g[:, 0] == c, 1:] for g in gts]
        used = [np.zeros(len(g), bool) for g in gt_c]
        n_gt = sum(len(g) for g in gt_c)
        tp = np.zeros(len(dets))
        for k, (_, i, box) in enumerate(dets):
            if len(gt_c[i]):
                ious = _iou(box, gt_c[i])
                ious[used[i]] = 0
                j = int(ious.argmax())
                if ious[j] >= 0.5:
                    used[i][j] = True
                    tp[k] = 1
        ctp = np.cumsum(tp)
        recall = ctp / max(n_gt, 1)
        precision = ctp / np.arange(1, len(dets) + 1)
        mrec = np.concatenate([[0.0], recall, [1.0]])
        mpre = np.flip(np.maximum.accumulate(np.flip(np.concatenate([[1.0], precision, [0.0]]))))
        x = np.linspace(0, 1, 101)
        aps.append(float(np.trapezoid(np.interp(x, mrec, mpre), x)))
    return float(np.mean(aps)) if aps else float("nan")


def _build(kind: str, path: Path, imgsz: int, threads: int):
    if kind == "ultralytics":
        from inspector.detection.detector import UltralyticsDetector

        return UltralyticsDetector(path, "", imgsz)
    backend, _, precision = kind.partition(":")
    return FastDetector(path, "", backend, imgsz, threads=threads, precision=precision or "f32")


def _worker(conn, kind: str, path: Path, imgsz: int, threads: int, frames_dir: Path) -> None:
    """One backend in its own process: idle between rounds, so no runtime's spinning threads or
    OpenMP pool steal the CPU from the backend being timed (in one process they did)."""
    from inspector.detection.fast import block_openvino_telemetry
    from inspector.detection.offline import keep_data_local

    block_openvino_telemetry()
    keep_data_local()
    frames = _read_frames(frames_dir)
    images = [im for im, _ in frames]
    det = _build(kind, path, imgsz, threads)
    for im in images[:10]:
        det.detect(im)
    conn.send("ready")
    while (cmd := conn.recv()) != "stop":
        if cmd == "round":
            t0 = time.perf_counter()
            for im in images:
                det.detect(im)
            conn.send(len(images) / (time.perf_counter() - t0))
        elif cmd == "map50":
            det.conf = EVAL_CONF  # both detector kinds read conf on each call
            preds = [[(d.cls, d.confidence, (d.x1, d.y1, d.x2, d.y2)) for d in det.detect(im)] for im in images]
            conn.send(map50(preds, [g for _, g in frames]))


def _calibration_images(model: Path, work: Path, count: int) -> list[Path]:
    """The training images named in the model card, else freshly synthesised parts."""
    card = load_card(model)
    data = card.data if card is not None else ""
    if data and Path(data).exists():
        try:
            from inspector.training.datasets import load_dataset

            imgs = [im.path for im in load_dataset(data).splits.get("train", ())]
            if len(imgs) >= 50:
                return imgs[:: max(1, len(imgs) // count)][:count]
        except InspectorError:
            pass
    from inspector.sources.synth import write_dataset

    write_dataset(work / "calib", count, 9001)
    return sorted((work / "calib" / "images").glob("*.jpg"))


def main(argv: list[str] | None = None) -> int:
    guard_process()  # the offline guard: nothing this benchmark runs may call out
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="a .pt file or model folder (default: the shipped model)")
    ap.add_argument("--imgsz", type=int, default=None, help="default: the model card's, else 320")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="FastDetector threads (0: all cores but one)")
    ap.add_argument("--calib", type=int, default=200, help="INT8 calibration images")
    ap.add_argument("--int8", type=Path, default=None, help="an INT8 .xml made before by export_int8 (skips that)")
    ap.add_argument("--no-accuracy", action="store_true", help="skip the mAP50 pass")
    ap.add_argument("--json", action="store_true", help="end with one line of JSON")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from inspector.detection.fast import block_openvino_telemetry
    from inspector.detection.offline import keep_data_local

    block_openvino_telemetry()  # before Ultralytics' OpenVINO export imports openvino
    keep_data_local()
    try:
        pt = resolve_model(a.model, (".pt",))
    except InspectorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if pt.suffix != ".pt":
        print(f"error: {pt}: the benchmark needs the .pt weights", file=sys.stderr)
        return 2
    card = load_card(pt)
    imgsz = a.imgsz or (card.imgsz if card is not None else 320)
    work = Path(tempfile.mkdtemp(prefix="inspector-bench-"))
    try:
        print(f"model {pt} at {imgsz} px, {a.frames} frames, {a.rounds} rounds, {os.cpu_count()} CPUs, "
              f"FastDetector threads {a.threads or auto_threads()}", flush=True)
        from inspector.sources.synth import write_dataset

        write_dataset(work / "frames", a.frames, 2024)
        local_pt = rebuild(pt, work / pt.name)  # what Ultralytics reads below: rebuilt from the tensors, no pickle
        onnx = export_onnx(local_pt, imgsz, work / "fp32.onnx")
        from ultralytics import YOLO

        ov_dir = Path(YOLO(str(local_pt)).export(format="openvino", imgsz=imgsz, dynamic=False, verbose=False))
        t0 = time.perf_counter()
        int8 = a.int8 or export_int8(onnx, _calibration_images(pt, work, a.calib), work / "int8.xml")
        print(f"exports ready (INT8 quantisation {time.perf_counter() - t0:.0f} s)", flush=True)
        specs = {
            "ultralytics-pytorch": ("ultralytics", local_pt),
            "ultralytics-onnx": ("ultralytics", onnx),
            "ultralytics-openvino": ("ultralytics", ov_dir),
            "fast-onnxruntime": ("onnxruntime", onnx),
            "fast-openvino": ("openvino", onnx),
            "fast-openvino-bf16": ("openvino:bf16", onnx),
            "fast-openvino-int8": ("openvino", Path(int8)),
        }
        ctx = mp.get_context("spawn")
        workers = {}
        for name, (kind, path) in specs.items():  # started one at a time: loading is not timed
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, kind, path, imgsz, a.threads, work / "frames"))
            proc.start()
            if parent.recv() != "ready":
                raise RuntimeError(f"{name} did not start")
            workers[name] = (proc, parent)
        runs: dict[str, list[float]] = {k: [] for k in specs}
        for _ in range(a.rounds):  # interleaved, so that a load change hits every backend alike
            for name, (_, conn) in workers.items():
                conn.send("round")
                runs[name].append(conn.recv())
        fps = {k: statistics.median(v) for k, v in runs.items()}
        acc = {}
        if not a.no_accuracy:
            for name, (_, conn) in workers.items():
                conn.send("map50")
                acc[name] = conn.recv()
        for proc, conn in workers.values():
            conn.send("stop")
            proc.join(30)
        base = fps["ultralytics-pytorch"]
        print(f"\n{'backend':24s} {'frames/s':>9s} {'vs PyTorch':>10s} {'ms/frame':>9s} {'mAP50':>7s}")
        for name, f in fps.items():
            m = f"{acc[name]:7.3f}" if name in acc else f"{'-':>7s}"
            print(f"{name:24s} {f:9.1f} {f / base:9.2f}x {1000 / f:9.2f} {m}")
        result = {"model": str(pt), "imgsz": imgsz, "frames": a.frames, "rounds": a.rounds,
                  "threads": a.threads or auto_threads(),
                  "fps": {k: round(v, 2) for k, v in fps.items()},
                  "ratio_vs_pytorch": {k: round(v / base, 2) for k, v in fps.items()},
                  "map50": {k: round(v, 4) for k, v in acc.items()}}
        if a.json:
            print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Frames per second of each way to run one YOLO model on the CPU, measured in one run.

Ultralytics' own predict (PyTorch, its ONNX export, its OpenVINO export) against Inspector's
FastDetector (ONNX Runtime, OpenVINO, OpenVINO INT8), all on the same synthetic frames, one image
at a time, pre- and post-processing included; the median of interleaved rounds. It also gives the
mAP50 of each on those frames' labels (at conf 0.001), so that a faster path that loses accuracy
shows it.

    python bench/backends.py [--model PATH] [--frames 100] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from inspector.errors import InspectorError
from inspector.export import export_int8, export_onnx
from inspector.fast_detector import FastDetector
from inspector.registry import read_card, resolve_model

EVAL_CONF = 0.001


def _frames(folder: Path, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic frames and their labels as (n, 5) rows cls x1 y1 x2 y2 in pixels."""
    from inspector.synth import write_dataset

    write_dataset(folder, count, seed)
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


def _fps(det, images: list[np.ndarray]) -> float:
    t0 = time.perf_counter()
    for im in images:
        det.detect(im)
    return len(images) / (time.perf_counter() - t0)


def _accuracy(det, frames) -> float:
    conf = det.conf
    det.conf = EVAL_CONF  # both detector kinds read conf on each call
    try:
        preds = [[(d.cls, d.confidence, (d.x1, d.y1, d.x2, d.y2)) for d in det.detect(im)] for im, _ in frames]
    finally:
        det.conf = conf
    return map50(preds, [g for _, g in frames])


def _calibration_images(model: Path, work: Path, count: int) -> list[Path]:
    """The training images named in the model card, else freshly synthesised parts."""
    data = read_card(model).get("data")
    if data and Path(data).exists():
        try:
            from inspector.datasets import load_dataset

            imgs = [im.path for im in load_dataset(data).splits.get("train", ())]
            if len(imgs) >= 50:
                return imgs[:: max(1, len(imgs) // count)][:count]
        except InspectorError:
            pass
    from inspector.synth import write_dataset

    write_dataset(work / "calib", count, 9001)
    return sorted((work / "calib" / "images").glob("*.jpg"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="a .pt file or model folder (default: the shipped model)")
    ap.add_argument("--imgsz", type=int, default=None, help="default: the model card's, else 320")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="FastDetector threads (0: the runtime chooses)")
    ap.add_argument("--calib", type=int, default=200, help="INT8 calibration images")
    ap.add_argument("--int8", type=Path, default=None, help="an INT8 .xml made before by export_int8 (skips that)")
    ap.add_argument("--no-accuracy", action="store_true", help="skip the mAP50 pass")
    ap.add_argument("--json", action="store_true", help="end with one line of JSON")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from inspector.detector import UltralyticsDetector
    from inspector.fast_detector import block_openvino_telemetry
    from inspector.privacy import keep_data_local

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
    imgsz = a.imgsz or int(read_card(pt).get("imgsz") or 320)
    work = Path(tempfile.mkdtemp(prefix="inspector-bench-"))
    try:
        print(f"model {pt} at {imgsz} px, {a.frames} frames, {a.rounds} rounds, cpu threads {os.cpu_count()}",
              flush=True)
        frames = _frames(work / "frames", a.frames, seed=2024)
        images = [im for im, _ in frames]
        local_pt = work / pt.name
        shutil.copy2(pt, local_pt)
        onnx = export_onnx(local_pt, imgsz, work / "fp32.onnx")
        from ultralytics import YOLO

        ov_dir = Path(YOLO(str(local_pt)).export(format="openvino", imgsz=imgsz, dynamic=False, verbose=False))
        t0 = time.perf_counter()
        int8 = a.int8 or export_int8(onnx, _calibration_images(pt, work, a.calib), work / "int8.xml")
        print(f"exports ready (INT8 quantisation {time.perf_counter() - t0:.0f} s)", flush=True)
        dets = {
            "ultralytics-pytorch": UltralyticsDetector(local_pt, "", imgsz),
            "ultralytics-onnx": UltralyticsDetector(onnx, "", imgsz),
            "ultralytics-openvino": UltralyticsDetector(ov_dir, "", imgsz),
            "fast-onnxruntime": FastDetector(onnx, "", "onnxruntime", imgsz, threads=a.threads),
            "fast-openvino": FastDetector(onnx, "", "openvino", imgsz, threads=a.threads),
            "fast-openvino-bf16": FastDetector(onnx, "", "openvino", imgsz, threads=a.threads, precision="bf16"),
            "fast-openvino-int8": FastDetector(Path(int8), "", "openvino", imgsz, threads=a.threads),
        }
        for det in dets.values():
            det.detect(images[0])
        runs: dict[str, list[float]] = {k: [] for k in dets}
        for _ in range(a.rounds):  # interleaved, so that a load change hits every backend alike
            for name, det in dets.items():
                runs[name].append(_fps(det, images))
        fps = {k: statistics.median(v) for k, v in runs.items()}
        acc = {} if a.no_accuracy else {k: _accuracy(d, frames) for k, d in dets.items()}
        base = fps["ultralytics-pytorch"]
        print(f"\n{'backend':24s} {'frames/s':>9s} {'vs PyTorch':>10s} {'ms/frame':>9s} {'mAP50':>7s}")
        for name, f in fps.items():
            m = f"{acc[name]:7.3f}" if name in acc else f"{'-':>7s}"
            print(f"{name:24s} {f:9.1f} {f / base:9.2f}x {1000 / f:9.2f} {m}")
        result = {"model": str(pt), "imgsz": imgsz, "frames": len(images), "rounds": a.rounds,
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

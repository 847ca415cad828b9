"""Decoding of the YOLO detection head and class-wise NMS in numpy, as Ultralytics does it.

Mirrors ``ultralytics.utils.nms.non_max_suppression`` (agnostic=False, multi_label=False) with
torchvision's NMS: boxes of different classes are pushed apart by ``class * 7680`` pixels and one
greedy NMS runs over all of them, in float32 like the original, so that ties and borderline
overlaps come out the same.
"""

from __future__ import annotations

import numpy as np

from inspector.detection.letterbox import Geometry

MAX_WH = 7680.0  # Ultralytics' per-class offset
MAX_NMS = 30000  # boxes kept for NMS, by confidence
MAX_DET = 300


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_det: int = MAX_DET) -> np.ndarray:
    """Greedy NMS over (n, 4) xyxy float32 boxes; returns the kept indices, best first.

    A box is dropped when its IoU with a better kept box is above ``iou`` (torchvision's rule).
    """
    n = boxes.shape[0]
    if n == 0:
        return np.empty(0, np.intp)
    order = np.argsort(-scores, kind="stable")
    if n == 1:
        return order
    b = boxes[order]
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    thr = np.float64(iou)  # torchvision compares the float32 IoU with a double threshold
    alive = np.ones(n, bool)
    keep: list[int] = []
    for i in range(n):
        if not alive[i]:
            continue
        keep.append(i)
        if len(keep) >= max_det or i == n - 1:
            break
        # IoU of box i with every later box, in float32 as torchvision computes it
        xx1 = np.maximum(x1[i], x1[i + 1:])
        yy1 = np.maximum(y1[i], y1[i + 1:])
        xx2 = np.minimum(x2[i], x2[i + 1:])
        yy2 = np.minimum(y2[i], y2[i + 1:])
        w = np.maximum(xx2 - xx1, np.float32(0))
        h = np.maximum(yy2 - yy1, np.float32(0))
        inter = w * h
        over = inter / (areas[i] + areas[i + 1:] - inter) > thr
        alive[i + 1:] &= ~over
    return order[np.asarray(keep, np.intp)]


def decode(pred: np.ndarray, conf: float, iou: float, max_det: int = MAX_DET) -> np.ndarray:
    """One image's head output (4 + nc, N) in letterbox pixels -> (k, 6) rows x1 y1 x2 y2 conf cls.

    Candidates are those whose best class score is above ``conf`` (strictly, as Ultralytics).
    """
    nc = pred.shape[0] - 4
    cls_scores = pred[4:]
    best = cls_scores.max(axis=0)
    idx = np.flatnonzero(best > conf)
    if idx.size == 0:
        return np.empty((0, 6), np.float32)
    scores = best[idx]
    if idx.size > MAX_NMS:
        top = np.argsort(-scores, kind="stable")[:MAX_NMS]
        idx, scores = idx[top], scores[top]
    cls = cls_scores[:, idx].argmax(axis=0) if nc > 1 else np.zeros(idx.size, np.intp)
    xywh = pred[:4, idx]
    out = np.empty((idx.size, 6), np.float32)
    half_w, half_h = xywh[2] / 2, xywh[3] / 2
    out[:, 0] = xywh[0] - half_w
    out[:, 1] = xywh[1] - half_h
    out[:, 2] = xywh[0] + half_w
    out[:, 3] = xywh[1] + half_h
    out[:, 4] = scores
    out[:, 5] = cls
    offset = out[:, 5:6] * np.float32(MAX_WH)
    keep = nms(out[:, :4] + offset, scores, iou, max_det)
    return out[keep]


def decode_end2end(pred: np.ndarray, conf: float, max_det: int = MAX_DET) -> np.ndarray:
    """An end-to-end head's (N, 6) rows (already xyxy, conf, cls): only the confidence filter."""
    return pred[pred[:, 4] > conf][:max_det].astype(np.float32, copy=False)


def to_image(rows: np.ndarray, geo: Geometry) -> np.ndarray:
    """Map (k, 6) letterbox rows back onto the original image in place, clipped (scale_boxes)."""
    if rows.shape[0]:
        b = rows[:, :4]
        b[:, 0::2] -= np.float32(geo.left)
        b[:, 1::2] -= np.float32(geo.top)
        b[:, 0::2] /= np.float32(geo.gain_x)
        b[:, 1::2] /= np.float32(geo.gain_y)
        np.clip(b[:, 0::2], 0, geo.width, out=b[:, 0::2])
        np.clip(b[:, 1::2], 0, geo.height, out=b[:, 1::2])
    return rows

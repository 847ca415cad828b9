"""Honest evaluation in the terms a quality manager uses.

Box metrics (mAP50, mAP50-95, per-class AP) come from all detections down to a low confidence;
part metrics come from the recipe's verdicts on the same detections: a defective part is caught
when it is flagged FAIL or REVIEW, a good part is falsely rejected when it is flagged FAIL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from inspector.core.ports import Detector
from inspector.core.types import Detections, Verdict
from inspector.inspection.rules import Recipe
from inspector.sources.images import decode_image
from inspector.training.datasets import Dataset, LabelledImage

log = logging.getLogger(__name__)

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


@dataclass
class EvalReport:
    images: int
    map50: float
    map50_95: float
    per_class_ap50: dict[str, float]
    part_recall: float
    false_reject_rate: float
    escapes: int
    defective_parts: int
    good_parts: int
    confusion: dict[str, dict[str, int]]
    not_inspected: int = 0
    split: str = ""
    escaped_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"images": self.images, "split": self.split, "map50": round(self.map50, 4),
                "map50_95": round(self.map50_95, 4),
                "per_class_ap50": {k: round(v, 4) for k, v in self.per_class_ap50.items()},
                "part_recall": round(self.part_recall, 4), "false_reject_rate": round(self.false_reject_rate, 4),
                "escapes": self.escapes, "defective_parts": self.defective_parts, "good_parts": self.good_parts,
                "not_inspected": self.not_inspected, "confusion": self.confusion,
                "escaped_files": self.escaped_files[:20]}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N x 4) with every box in b (M x 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(br - tl, 0, None).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def average_precision(tp: np.ndarray, conf: np.ndarray, n_gt: int) -> float:
    """101-point interpolated AP (as COCO and Ultralytics compute it)."""
    if n_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    order = np.argsort(-conf, kind="stable")
    tp = tp[order]
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1 - tp)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-9)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz
    return float(trapezoid(np.interp(x, mrec, mpre), x))


def _match(pred_boxes: np.ndarray, pred_conf: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """True positives (P x T) for one image and class, greedy by confidence at each IoU threshold."""
    tp = np.zeros((len(pred_boxes), len(IOU_THRESHOLDS)))
    if len(pred_boxes) == 0 or len(gt_boxes) == 0:
        return tp
    iou = box_iou(pred_boxes, gt_boxes)
    order = np.argsort(-pred_conf, kind="stable")
    for t, thr in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(gt_boxes), bool)
        for i in order:
            cand = np.where(~taken & (iou[i] >= thr), iou[i], -1)
            j = int(np.argmax(cand))
            if cand[j] >= thr:
                taken[j] = True
                tp[i, t] = 1
    return tp


def evaluate(detector: Detector, dataset: Dataset, images: tuple[LabelledImage, ...], recipe: Recipe,
             progress: Callable[[int, int], None] | None = None, split: str = "",
             on_image: Callable[[LabelledImage, Verdict, Detections | None], None] | None = None) -> EvalReport:
    """Run the detector over the images and compute box and part metrics.

    ``on_image`` (if given) sees each image's verdict and detections (None when it could not be read).
    """
    ncls = len(dataset.classes)
    name_to_model = {n: i for i, n in enumerate(detector.classes)}
    stats: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(ncls)]
    n_gt = np.zeros(ncls, int)
    confusion = {"defective": {v.value: 0 for v in Verdict}, "good": {v.value: 0 for v in Verdict}}
    escaped: list[str] = []
    for k, im in enumerate(images, 1):
        img, err = decode_image(im.path)
        truth = "defective" if im.boxes else "good"
        if img is None:
            log.warning("skipping %s: %s", im.path.name, err)
            confusion[truth][Verdict.NOT_INSPECTED.value] += 1
            if on_image:
                on_image(im, Verdict.NOT_INSPECTED, None)
            continue
        det: Detections = detector.detect(img)
        verdict, _ = recipe.evaluate(det)
        confusion[truth][verdict.value] += 1
        if on_image:
            on_image(im, verdict, det)
        if truth == "defective" and verdict == Verdict.PASS:
            escaped.append(im.path.name)
        for c in range(ncls):
            model_c = name_to_model.get(dataset.classes[c], -1)
            preds = [d for d in det if d.cls == model_c]
            pb = np.array([[d.x1, d.y1, d.x2, d.y2] for d in preds]).reshape(-1, 4)
            pc = np.array([d.confidence for d in preds])
            gb = np.array([[b.x1, b.y1, b.x2, b.y2] for b in im.boxes if b.cls == c]).reshape(-1, 4)
            n_gt[c] += len(gb)
            if len(pb):
                stats[c].append((_match(pb, pc, gb), pc))
        if progress:
            progress(k, len(images))
    ap = np.full((ncls, len(IOU_THRESHOLDS)), np.nan)
    for c in range(ncls):
        if n_gt[c] == 0:
            continue
        tp = np.concatenate([s[0] for s in stats[c]]) if stats[c] else np.zeros((0, len(IOU_THRESHOLDS)))
        conf = np.concatenate([s[1] for s in stats[c]]) if stats[c] else np.zeros(0)
        for t in range(len(IOU_THRESHOLDS)):
            ap[c, t] = average_precision(tp[:, t], conf, int(n_gt[c]))
    present = ~np.isnan(ap[:, 0])
    d, g = confusion["defective"], confusion["good"]
    defective = sum(d.values())
    good = sum(g.values())
    caught = d[Verdict.FAIL.value] + d[Verdict.REVIEW.value]
    return EvalReport(
        images=len(images),
        map50=float(np.mean(ap[present, 0])) if present.any() else 0.0,
        map50_95=float(np.mean(ap[present])) if present.any() else 0.0,
        per_class_ap50={dataset.classes[c]: float(ap[c, 0]) for c in range(ncls) if present[c]},
        part_recall=caught / defective if defective else 1.0,
        false_reject_rate=g[Verdict.FAIL.value] / good if good else 0.0,
        escapes=d[Verdict.PASS.value],
        defective_parts=defective, good_parts=good, confusion=confusion,
        not_inspected=d[Verdict.NOT_INSPECTED.value] + g[Verdict.NOT_INSPECTED.value],
        split=split, escaped_files=escaped,
    )


def format_report(r: EvalReport) -> str:
    lines = [f"{r.images} images ({r.split or 'all'}): mAP50 {r.map50:.3f}, mAP50-95 {r.map50_95:.3f}",
             "per-class AP50: " + ", ".join(f"{k} {v:.3f}" for k, v in r.per_class_ap50.items()),
             f"parts: {r.defective_parts} defective, {r.good_parts} good; defective-part recall {r.part_recall:.3f}, "
             f"false-reject rate {r.false_reject_rate:.3f}, escapes {r.escapes}",
             "confusion (truth -> verdict):"]
    for truth, row in r.confusion.items():
        lines.append(f"  {truth:<10} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    if r.escaped_files:
        lines.append("escaped: " + ", ".join(r.escaped_files[:10]))
    return "\n".join(lines)

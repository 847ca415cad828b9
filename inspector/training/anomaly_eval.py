"""Judging an anomaly model on held-out parts: image AUROC, pixel AUPRO (where masks exist), and at the
threshold the false-reject rate on good parts and the recall per defect kind.

The test set is ``DIR/splits/test.txt`` (``path<TAB>kind``, kind ``normal`` for good parts; a defect's mask
``NAME.png`` beside ``NAME.jpg``, white = defect) or, without it, a folder whose sub-folders are the kinds
(``good`` or ``normal`` for good parts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspector.core.errors import ConfigError
from inspector.training.anomaly import IMAGE_EXTS, _is_mask, load_picture

log = logging.getLogger(__name__)

NORMAL = ("normal", "good", "ok", "free")
AUPRO_FPR = 0.3  # the usual integration limit of the per-region overlap curve
MAP_SIDE = 128  # maps and masks are compared at this size


@dataclass(frozen=True)
class TestPicture:
    path: Path
    kind: str
    mask: Path | None

    @property
    def normal(self) -> bool:
        return self.kind.lower() in NORMAL


def read_test_set(data: Path | str) -> list[TestPicture]:
    data = Path(data)
    listing = data / "splits" / "test.txt"
    out: list[TestPicture] = []
    if listing.is_file():
        for line in listing.read_text(errors="replace").splitlines():
            parts = line.strip().split("\t")
            if not parts[0]:
                continue
            p = data / parts[0]
            kind = parts[1].strip() if len(parts) > 1 else "unknown"
            out.append(TestPicture(p, kind, _mask_of(p)))
    elif data.is_dir():
        for sub in sorted(d for d in data.iterdir() if d.is_dir()):
            for p in sorted(sub.rglob("*")):
                if p.suffix.lower() in IMAGE_EXTS and not _is_mask(p):
                    out.append(TestPicture(p, sub.name, _mask_of(p)))
    if not out:
        raise ConfigError(f"--data {data}: no splits/test.txt and no sub-folders of pictures by kind to judge on.")
    if not any(t.normal for t in out) or all(t.normal for t in out):
        raise ConfigError(f"--data {data}: the test pictures need both good parts (kind 'normal' or 'good') and "
                          "defective ones.")
    return out


def _mask_of(p: Path) -> Path | None:
    m = p.with_suffix(".png")
    return m if m != p and m.is_file() else None


def image_auroc(normal: np.ndarray, defective: np.ndarray) -> float:
    """The chance that a defective picture scores above a good one (ties count half)."""
    s = np.r_[normal, defective]
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s):  # average ranks of ties
        same = s == v
        if same.sum() > 1:
            ranks[same] = ranks[same].mean()
    n0, n1 = len(normal), len(defective)
    return float((ranks[n0:].sum() - n1 * (n1 + 1) / 2) / (n0 * n1))


def pixel_aupro(maps: list[np.ndarray], masks: list[np.ndarray], limit: float = AUPRO_FPR,
                steps: int = 200) -> float | None:
    """Area under the per-region-overlap curve up to ``limit`` false-positive rate, divided by ``limit``.

    ``maps`` and ``masks`` are the same size; regions are the 8-connected parts of each mask. None without
    any defect region."""
    regions: list[np.ndarray] = []
    negatives = []
    for m, k in zip(maps, masks, strict=True):
        negatives.append(m[~k])
        if k.any():
            n, lab = cv2.connectedComponents(k.astype(np.uint8), connectivity=8)
            regions += [np.sort(m[lab == i]) for i in range(1, n)]
    if not regions:
        return None
    neg = np.sort(np.concatenate(negatives))
    # thresholds at which the false-positive rate on defect-free pixels is 0 .. limit
    fprs = np.linspace(0.0, limit, steps + 1)
    thr = np.quantile(neg, 1.0 - fprs)
    pro = np.array([np.mean([1.0 - np.searchsorted(r, t, side="left") / len(r) for r in regions]) for t in thr])
    fpr = 1.0 - np.searchsorted(neg, thr, side="left") / len(neg)
    return float(np.trapezoid(pro, fpr) / limit) if hasattr(np, "trapezoid") else float(np.trapz(pro, fpr) / limit)


def evaluate_anomaly(detector, data: Path | str, threshold: float,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """The issue's figures for an anomaly detector (``score(image) -> (score, heat map)``) on ``data``."""
    tests = read_test_set(data)
    scores, maps, masks = [], [], []
    with_masks = any(t.mask is not None for t in tests if not t.normal)
    for i, t in enumerate(tests):
        image = load_picture(t.path)
        s, heat = detector.score(image)
        scores.append(s)
        if with_masks:
            maps.append(cv2.resize(heat, (MAP_SIDE, MAP_SIDE), interpolation=cv2.INTER_LINEAR))
            if t.mask is not None:
                k = cv2.imread(str(t.mask), cv2.IMREAD_GRAYSCALE)
                k = cv2.resize(k, (MAP_SIDE, MAP_SIDE), interpolation=cv2.INTER_NEAREST) > 127
            else:
                k = np.zeros((MAP_SIDE, MAP_SIDE), bool)
            masks.append(k)
        if progress:
            progress(i + 1, len(tests))
    sc = np.array(scores)
    normal = np.array([t.normal for t in tests])
    kinds = np.array([t.kind for t in tests])
    flagged = sc >= threshold  # FAIL, as the recipe judges it
    recall_by_kind = {k: round(float(flagged[kinds == k].mean()), 4) for k in sorted(set(kinds[~normal]))}
    aupro = pixel_aupro(maps, masks) if with_masks else None
    return {"images": len(tests), "good_parts": int(normal.sum()), "defective_parts": int((~normal).sum()),
            "image_auroc": round(image_auroc(sc[normal], sc[~normal]), 4),
            "pixel_aupro": None if aupro is None else round(aupro, 4),
            "threshold": round(float(threshold), 4),
            "false_reject_rate": round(float(flagged[normal].mean()), 4),
            "recall": round(float(flagged[~normal].mean()), 4),
            "recall_by_kind": recall_by_kind,
            "parts_by_kind": {k: int((kinds == k).sum()) for k in sorted(set(kinds))}}


def format_anomaly_report(r: dict) -> str:
    lines = [f"{r['images']} pictures: {r['good_parts']} good, {r['defective_parts']} defective",
             f"image AUROC {r['image_auroc']:.4f}; pixel AUPRO "
             + ("n/a (no masks)" if r["pixel_aupro"] is None else f"{r['pixel_aupro']:.4f}"),
             f"at threshold {r['threshold']:.2f}: false rejects {r['false_reject_rate']:.1%} of good parts, "
             f"recall {r['recall']:.1%} of defective parts"]
    lines += [f"  {k}: {v:.1%} of {r['parts_by_kind'][k]}" for k, v in r["recall_by_kind"].items()]
    return "\n".join(lines)

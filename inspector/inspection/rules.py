"""The recipe: detections in, a verdict with human-readable reasons out. Small pure predicates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inspector.core.config import RecipeConfig
from inspector.core.errors import ConfigError
from inspector.core.types import Detection, Detections, Verdict


@dataclass(frozen=True)
class ClassThresholds:
    fail_conf: float
    review_conf: float
    min_area_px: float


class Recipe:
    """Per-class thresholds, minimum box area, region of interest and the REVIEW band."""

    def __init__(self, cfg: RecipeConfig) -> None:
        self.cfg = cfg

    def check_classes(self, known: Sequence[str], model: str = "the model") -> None:
        """A per-class rule must name a class the model reports: a misspelt one would never apply."""
        unknown = sorted(set(self.cfg.classes) - set(known))
        if unknown:
            names = ", ".join(f"[classes.{n}]" for n in unknown)
            raise ConfigError(f"recipe {self.cfg.name!r}: {names} names no class of {model}; its classes are "
                              f"{', '.join(known) or '(none)'}.")

    def thresholds(self, label: str) -> ClassThresholds:
        c = self.cfg.classes.get(label)
        pick = lambda v, d: d if v is None else v  # noqa: E731
        return ClassThresholds(
            pick(c.fail_conf if c else None, self.cfg.fail_conf),
            pick(c.review_conf if c else None, self.cfg.review_conf),
            pick(c.min_area_px if c else None, self.cfg.min_area_px),
        )

    @property
    def detector_floor(self) -> float:
        """The lowest confidence any rule looks at: what the detector must report."""
        floors = [self.cfg.review_conf] + [self.thresholds(n).review_conf for n in self.cfg.classes]
        return max(0.001, min(floors))

    def _in_roi(self, d: Detection, w: int, h: int) -> bool:
        if self.cfg.roi is None:
            return True
        x1, y1, x2, y2 = self.cfg.roi
        cx, cy = d.center
        return x1 * w <= cx <= x2 * w and y1 * h <= cy <= y2 * h

    def evaluate(self, detections: Detections) -> tuple[Verdict, tuple[str, ...]]:
        fails: list[str] = []
        reviews: list[str] = []
        for d in sorted(detections.items, key=lambda d: -d.confidence):
            t = self.thresholds(d.label)
            if d.confidence < t.review_conf or d.area < t.min_area_px:
                continue
            if not self._in_roi(d, detections.image_width, detections.image_height):
                continue
            where = f"at ({d.center[0]:.0f}, {d.center[1]:.0f})"
            if d.confidence >= t.fail_conf:
                fails.append(f"{d.label} {d.confidence:.2f} {where} (fail at {t.fail_conf:.2f})")
            else:
                band = f"{t.review_conf:.2f}-{t.fail_conf:.2f}"
                reviews.append(f"{d.label} {d.confidence:.2f} {where} (uncertain: {band})")
        if fails:
            return Verdict.FAIL, tuple(fails + reviews)
        if reviews:
            return Verdict.REVIEW, tuple(reviews)
        return Verdict.PASS, (f"no defect at or above {self.detector_floor:.2f} confidence",)

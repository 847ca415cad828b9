"""The plain values a report is made of. ``db.reporting`` fills them; the renderers only read them.

Every figure of a report (PDF, HTML) comes from one ``ReportData``, so the formats cannot disagree.
Times are timezone-aware UTC; people read them in the station's zone (inspector/clock.py).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import NamedTuple

from inspector.core.clock import station_time, zone_text
from inspector.core.identity import part_name
from inspector.core.types import BoxCorners


def _need(cond: bool, what: str, got: object) -> None:
    if not cond:
        raise ValueError(f"expected {what}, got {got!r}")


@dataclass(frozen=True)
class Totals:
    """Final verdicts (after review) of the inspections in the report."""

    inspected: int = 0  # every record, NOT_INSPECTED included
    passed: int = 0
    failed: int = 0
    review: int = 0
    not_inspected: int = 0

    def __post_init__(self) -> None:
        _need(min(self.inspected, self.passed, self.failed, self.review, self.not_inspected) >= 0,
              "counts >= 0", self)
        _need(self.passed + self.failed + self.review + self.not_inspected == self.inspected,
              "pass + fail + review + not inspected == inspected", self)

    @property
    def judged(self) -> int:
        return self.inspected - self.not_inspected

    @property
    def yield_pct(self) -> float | None:
        """pass / (inspected - not inspected), in percent; None when nothing was judged."""
        return self.passed / self.judged * 100.0 if self.judged > 0 else None


@dataclass(frozen=True)
class ModelUsed:
    name: str
    sha256: str
    inspections: int

    @property
    def sha_prefix(self) -> str:
        return self.sha256[:12]


@dataclass(frozen=True)
class ParetoItem:
    """Boxes of one defect class on parts finally judged FAIL or REVIEW."""

    label: str
    count: int
    cumulative_pct: float


@dataclass(frozen=True)
class YieldPoint:
    """One hour (or 8-hour shift) of the period."""

    start: dt.datetime
    totals: Totals


@dataclass(frozen=True)
class Box(BoxCorners):
    """A box as a report draws it: label, confidence and the model's class index (``box``: the one ``Box``)."""

    label: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float
    cls: int = -1  # the model's class index (its colour); -1 where unknown

    @classmethod
    def from_detection(cls, d, with_class: bool = True) -> Box:
        """A report's box from a detection (the engine's ``Detection`` or a stored ``DetectionDTO``)."""
        return cls(d.label, d.confidence, d.x1, d.y1, d.x2, d.y2, d.cls if with_class else -1)


@dataclass(frozen=True)
class Failure:
    """A part finally judged FAIL, with the boxes the model drew on it."""

    inspection_id: int
    created_at: dt.datetime
    run_id: int
    frame_name: str
    max_confidence: float
    image_path: str | None  # relative to the image folder (the database's folder for SQLite)
    boxes: tuple[Box, ...]
    seq: int = -1  # the part's sequence in its run (-1: unknown)

    @property
    def name(self) -> str:
        """The part as the window names it ("run 3 part 412"), or its record id where the sequence is unknown."""
        return part_name(self.run_id, self.seq) if self.seq >= 0 else f"record {self.inspection_id}"


@dataclass(frozen=True)
class StationFigures:
    """One station's part of a plant report (issue 30): its final verdicts and its top defect classes."""

    station: str
    totals: Totals
    pareto: tuple[ParetoItem, ...] = ()


@dataclass(frozen=True)
class ReportData:
    generated_at: dt.datetime
    period_start: dt.datetime | None  # the requested bounds, else the first and last inspection
    period_end: dt.datetime | None
    run_id: int | None
    runs: tuple[int, ...]
    stations: tuple[str, ...]
    models: tuple[ModelUsed, ...]
    totals: Totals
    reviewed: int  # inspections with at least one review
    overrides: int  # reviews with the action "override"
    escapes: int  # machine said PASS, the final (reviewed) verdict is FAIL
    pareto: tuple[ParetoItem, ...]
    bucket_hours: int  # 1 (per hour) or 8 (per shift, for periods longer than 3 days)
    yield_series: tuple[YieldPoint, ...]
    worst: tuple[Failure, ...]
    scope: str = ""  # the product, lot and shift the report is limited to ("" for all)
    by_station: tuple[StationFigures, ...] = ()  # yield and Pareto per station when several stations are in it

    def __post_init__(self) -> None:
        _need(self.bucket_hours in (1, 8), "bucket_hours 1 or 8", self.bucket_hours)

    @property
    def bucket_name(self) -> str:
        return "hour" if self.bucket_hours == 1 else "shift (8 h)"


class ExportRow(NamedTuple):
    """One inspection as a CSV line: the machine's verdict and the final one.

    A NamedTuple, not a frozen dataclass: an export makes a million of them, and a tuple is built
    several times faster while being just as immutable.
    """

    inspection_id: int
    created_at: dt.datetime
    run_id: int
    station: str
    source: str
    frame_name: str
    machine_verdict: str
    final_verdict: str
    reviewed: bool
    reasons: tuple[str, ...]
    latency_ms: float
    model_sha256: str
    image_path: str | None
    boxes: tuple[Box, ...]
    # the latest review (empty when none) and the boxes as reviewed: QC marks per machine box ("" or
    # "false"), and the boxes QC drew for missed defects
    reviewer: str = ""
    decision: str = ""  # "confirm FAIL", "override PASS", "false_detection FAIL", ...
    review_reason: str = ""
    reviewed_at: dt.datetime | None = None
    box_marks: tuple[str, ...] = ()
    drawn: tuple[Box, ...] = ()
    product: str = ""  # the plant's day the part was made in
    lot: str = ""
    work_order: str = ""
    shift: str = ""

    @property
    def defects(self) -> str:
        """``"dent, scratch x2"``: boxes per class, sorted by class."""
        if not self.boxes:
            return ""
        counts: dict[str, int] = {}
        for b in self.boxes:
            counts[b.label] = counts.get(b.label, 0) + 1
        return ", ".join(k if n == 1 else f"{k} x{n}" for k, n in sorted(counts.items()))


def fmt_time(t: dt.datetime | None, seconds: bool = False) -> str:
    if t is None:
        return "-"
    return station_time(t, seconds)  # the station's zone, named beside it (zone_text), as on the screen


def fmt_pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}%"


def period_text(d: ReportData) -> str:
    return f"{fmt_time(d.period_start)} to {fmt_time(d.period_end)} {zone_text(d.period_end)}"


def models_text(d: ReportData) -> str:
    return ", ".join(f"{m.name} ({m.sha_prefix})" for m in d.models) or "-"


def bucket_labels(points: tuple[YieldPoint, ...], most: int = 12) -> list[str]:
    """Axis labels for the buckets, at most ``most`` of them shown (the others blank): the hour, with the
    day when the series spans more than one."""
    if not points:
        return []
    starts = [p.start.astimezone() for p in points]  # the station's zone, as the rest of the report
    one_day = starts[0].date() == starts[-1].date()
    every = max(1, -(-len(points) // most))
    return [(t.strftime("%H:%M") if one_day else t.strftime("%m-%d %H:%M")) if i % every == 0 else ""
            for i, t in enumerate(starts)]


def count_axis(top: float) -> tuple[float, float]:
    """(maximum, step) of a count axis: a round step (1, 2 or 5 times a power of ten, at least 1) and
    the fewest such steps (3 to 5) that reach ``top``."""
    raw = max(top, 1.0) / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1.0, step)
    return step * max(1, math.ceil(top / step)), step

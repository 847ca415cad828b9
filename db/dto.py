"""The plain, frozen values that repositories return. No ORM object ever leaves ``db/``.

Times are timezone-aware UTC. Verdicts are ``inspector.core.types.Verdict``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from inspector.core.heatmaps import heat_path
from inspector.core.types import BoxCorners, Verdict


@dataclass(frozen=True)
class ModelVersionDTO:
    id: int
    name: str
    path: str
    sha256: str
    classes: tuple[str, ...]
    created_at: dt.datetime


@dataclass(frozen=True)
class PromotionDTO:
    """One promotion or rollback of a station's model (issue 15)."""

    id: int
    station: str
    action: str
    sha256: str
    path: str
    name: str
    previous_sha256: str
    reason: str
    actor: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ShadowAgreement:
    """How often a challenger's shadow verdict agreed with the active model's over the last ``parts`` parts."""

    model_sha256: str
    parts: int
    agreed: int
    challenger_fails: int  # FAIL or REVIEW by the challenger where the active model passed
    challenger_passes: int  # PASS by the challenger where the active model failed or sent to review

    @property
    def rate(self) -> float | None:
        return self.agreed / self.parts if self.parts else None


@dataclass(frozen=True)
class RunDTO:
    id: int
    source: str
    recipe: dict[str, Any] = field(hash=False)
    recipe_name: str
    model_id: int
    station: str
    mode: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None


@dataclass(frozen=True)
class PageCursor:
    """Where a page ended: the (created_at, id) of its last row. Pass it as ``after=`` for the next page."""

    created_at: dt.datetime
    id: int


@dataclass(frozen=True)
class InspectionRow:
    """One line of the review table: the machine's verdict and, after any review, the final one."""

    id: int
    run_id: int
    seq: int
    created_at: dt.datetime
    machine_verdict: Verdict
    final_verdict: Verdict
    reasons: tuple[str, ...]
    latency_ms: float
    image_path: str | None
    frame_name: str
    model_sha256: str
    reviewed: bool
    labels: tuple[tuple[str, int], ...] = ()  # (label, number of boxes), sorted by label
    product: str = ""  # the plant's day when the part was made ("" where not recorded)
    lot: str = ""
    work_order: str = ""
    shift: str = ""

    @property
    def cursor(self) -> PageCursor:
        return PageCursor(self.created_at, self.id)

    @property
    def detection_count(self) -> int:
        return sum(n for _, n in self.labels)

    @property
    def labels_summary(self) -> str:
        """For a table cell: ``"dent, scratch x2"``."""
        return ", ".join(label if n == 1 else f"{label} x{n}" for label, n in self.labels)


@dataclass(frozen=True)
class DetectionDTO(BoxCorners):
    """A stored detection (as the model drew it; ``box`` converts to the one ``Box``)."""

    id: int
    inspection_id: int
    cls: int
    label: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class ReviewDTO:
    id: int
    inspection_id: int
    reviewer: str
    created_at: dt.datetime
    action: str
    old_verdict: Verdict
    new_verdict: Verdict
    reason: str
    detail: dict[str, Any] = field(hash=False)
    #: False for a review whose seal does not bind it to this database (copied in, re-inserted, changed outside
    #: Inspector: issue 24): listed as such, never counted
    counts: bool = True


@dataclass(frozen=True)
class InspectionDetail:
    """Everything the detail view shows about one inspection."""

    row: InspectionRow
    detections: tuple[DetectionDTO, ...]
    reviews: tuple[ReviewDTO, ...]  # oldest first; the last one that counts gives the final verdict
    run: RunDTO
    model: ModelVersionDTO | None  # the version whose sha256 the inspection names, if registered

    @property
    def counted_reviews(self) -> tuple[ReviewDTO, ...]:
        """The reviews that count (oldest first): the history less those not from this database."""
        return tuple(r for r in self.reviews if r.counts)

    @property
    def heatmap_path(self) -> str | None:
        """Where the heat map of this part is stored (beside its picture, ``NAME.heat.png``): set when an anomaly
        model judged it and its picture was stored; None for a detector's part or one without a picture."""
        if not self.row.image_path or self.model is None or tuple(self.model.classes) != ("anomaly",):
            return None
        return heat_path(self.row.image_path)


@dataclass(frozen=True)
class AuditEntryDTO:
    id: int
    created_at: dt.datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = field(hash=False)
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    problems: tuple[str, ...] = ()
    stations: tuple[str, ...] = ()  # a line per registered station's chain (issue 30)
    notes: tuple[str, ...] = ()  # what could not be checked here (HMAC seals without the key file)


@dataclass(frozen=True)
class UserDTO:
    id: int
    name: str
    role: str
    password_hash: str = field(repr=False)
    failed_attempts: int
    locked_until: dt.datetime | None
    created_at: dt.datetime

    def locked(self, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.timezone.utc)
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class VerdictCounts:
    """Final verdicts (after review) over a period."""

    inspected: int = 0  # every record, NOT_INSPECTED included
    pass_: int = 0
    fail: int = 0
    review: int = 0
    not_inspected: int = 0

    @property
    def yield_pct(self) -> float | None:
        judged = self.inspected - self.not_inspected
        return self.pass_ / judged * 100.0 if judged > 0 else None


@dataclass(frozen=True)
class PartAnswer:
    """What a station answered for a triggered part (its recorded inspection), to answer a repeat the same way."""

    part_id: str
    inspection_id: int
    seq: int
    verdict: str
    reasons: tuple[str, ...]
    defects: tuple[tuple[str, float, float, float, float, float], ...]  # (label, confidence, x1, y1, x2, y2)
    model_sha256: str
    recipe: str
    latency_ms: float
    created_at: dt.datetime


@dataclass(frozen=True)
class AlarmDTO:
    """An alarm a rule raised, and who acknowledged it when (None: still open)."""

    id: int
    station: str
    run_id: int | None
    rule: str
    message: str
    raised_at: dt.datetime
    acked_by: str | None
    acked_at: dt.datetime | None

"""Shared helpers of the repositories: JSON text, the clock, and ORM-row-to-DTO conversion."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from db.dto import DetectionDTO, ModelVersionDTO, ReviewDTO, RunDTO, UserDTO
from db.failures import mask_url
from db.schema import DetectionRecord, ModelVersion, Review, Run, User
from inspector.core.types import Verdict


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def dumps(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 kept; unknown types (dates, paths) as strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def loads(text: str | None, empty: Any = None) -> Any:
    return json.loads(text) if text else empty


def verdict(value: Verdict | str) -> Verdict:
    """A Verdict from a Verdict or its name; ValueError naming the allowed values otherwise."""
    try:
        return value if isinstance(value, Verdict) else Verdict(value)
    except ValueError:
        raise ValueError(f"expected a verdict among {[v.value for v in Verdict]}, got {value!r}") from None


def model_dto(m: ModelVersion) -> ModelVersionDTO:
    return ModelVersionDTO(id=m.id, name=m.name, path=m.path, sha256=m.sha256,
                           classes=tuple(loads(m.classes, [])), created_at=m.created_at)


def run_dto(r: Run) -> RunDTO:
    return RunDTO(id=r.id, source=mask_url(r.source), recipe=loads(r.recipe, {}), recipe_name=r.recipe_name,
                  model_id=r.model_id, station=r.station, mode=r.mode, started_at=r.started_at,
                  ended_at=r.ended_at, end_reason=r.end_reason)


def detection_dto(d: DetectionRecord) -> DetectionDTO:
    return DetectionDTO(id=d.id, inspection_id=d.inspection_id, cls=d.cls, label=d.label, confidence=d.confidence,
                        x1=d.x1, y1=d.y1, x2=d.x2, y2=d.y2)


def review_dto(r: Review, counts: bool = True) -> ReviewDTO:
    return ReviewDTO(id=r.id, inspection_id=r.inspection_id, reviewer=r.reviewer, created_at=r.created_at,
                     action=r.action, old_verdict=Verdict(r.old_verdict), new_verdict=Verdict(r.new_verdict),
                     reason=r.reason, detail=loads(r.detail, {}), counts=counts)


def user_dto(u: User) -> UserDTO:
    return UserDTO(id=u.id, name=u.name, role=u.role, password_hash=u.password_hash,
                   failed_attempts=u.failed_attempts, locked_until=u.locked_until, created_at=u.created_at)

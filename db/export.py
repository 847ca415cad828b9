"""Streams for long exports, and the one-call report and data-set jobs for the CLI and the reports screen.

Rows come oldest first in keyset batches (``(created_at, id)`` after the last one seen), so a million
rows never sit in memory and each batch walks an index. The jobs read everything inside one
transaction, so a report's files all see the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from db.failures import mask_url
from db.reporting import _utc, inspection_conds
from db.repositories._common import loads
from db.repositories.queries import (
    INSPECTIONS,
    D,
    DayFilter,
    I,
    R,
    Refused,
    counted,
    latest_review_verdict,
    refused_reviews,
)
from db.schema import ModelVersion, Run
from inspector.core.reviewing import standing
from inspector.reports import (
    Box,
    ExportRow,
    PartForTraining,
    ReviewStep,
)
from inspector.reports.dataset import drawn_box

BATCH = 2000
Progress = Callable[[int, int], None]


def count_inspections(session: Session, since: dt.datetime | None = None, until: dt.datetime | None = None,
                      run_id: int | None = None, day: DayFilter | None = None) -> int:
    return int(session.execute(select(func.count()).select_from(INSPECTIONS)
                            .where(*inspection_conds(since, until, run_id, day))).scalar() or 0)


def _batches(session: Session, conds: list[Any], columns: Sequence[Any], batch: int) -> Iterator[Sequence[Any]]:
    """Rows of ``inspections`` matching ``conds``, oldest first, ``batch`` at a time (keyset on created_at, id)."""
    after: tuple[dt.datetime, int] | None = None
    while True:
        q = select(I.id, I.created_at, *columns).where(*conds)
        if after is not None:
            q = q.where(and_(I.created_at >= after[0], or_(I.created_at > after[0], I.id > after[1])))
        rows = session.execute(q.order_by(I.created_at, I.id).limit(batch)).all()
        if rows:
            yield rows
        if len(rows) < batch:
            return
        after = (rows[-1].created_at, rows[-1].id)


def _boxes(session: Session, ids: list[int]) -> dict[int, list[tuple[int, Box]]]:
    out: dict[int, list[tuple[int, Box]]] = defaultdict(list)
    q = (select(D.id, D.inspection_id, D.label, D.confidence, D.x1, D.y1, D.x2, D.y2)
         .where(D.inspection_id.in_(ids)).order_by(D.inspection_id, D.id))
    for d in session.execute(q):
        out[d.inspection_id].append((d.id, Box.from_detection(d, with_class=False)))
    return out


def iter_export_rows(session: Session, since: dt.datetime | None = None, until: dt.datetime | None = None,
                     run_id: int | None = None, batch: int = BATCH,
                     day: DayFilter | None = None) -> Iterator[ExportRow]:
    """Every inspection of the period with its final verdict and boxes, oldest first."""
    runs = {r.id: (r.station, mask_url(r.source)) for r in session.execute(select(Run.id, Run.station, Run.source))}
    refused = refused_reviews(session)  # reviews not from this database count nowhere (issue 24)
    cols = [I.run_id, I.frame_name, I.verdict, latest_review_verdict(refused=refused).label("final"), I.reasons,
            I.latency_ms, I.model_sha256, I.image_path, I.product, I.lot, I.work_order, I.shift]
    for rows in _batches(session, inspection_conds(since, until, run_id, day), cols, batch):
        ids = [r[0] for r in rows]
        boxes = _boxes(session, ids)
        reviews = _reviews(session, ids, refused)
        for iid, created, run_id, frame, machine, final, reasons, latency, sha, image, *day_of in rows:
            station, source = runs.get(run_id, ("", ""))
            found = boxes.get(iid) or []
            steps = reviews.get(iid, [])
            latest = steps[-1] if steps else None
            kept = standing(steps)  # an undone review and its undo count for nothing
            false = {s.detail.get("detection_id") for s in kept if s.action == "false_detection"}
            yield ExportRow(iid, created, run_id, station, source, frame, machine, final or machine, final is not None,
                            tuple(loads(reasons, [])), latency, sha, image, tuple(b for _, b in found),
                            latest.reviewer if latest else "",
                            f"{latest.action} {latest.new_verdict}" if latest else "",
                            latest.reason if latest else "", _utc(latest.created_at) if latest else None,
                            tuple("false" if did in false else "" for did, _ in found),
                            tuple(b for s in kept if s.action == "missed_defect"
                                  for b in [drawn_box(s.detail)] if b is not None),
                            *(v or "" for v in day_of))


class _Reviewed(NamedTuple):
    id: int
    reviewer: str
    action: str
    new_verdict: str
    reason: str
    created_at: dt.datetime
    detail: dict[str, Any]


def _reviews(session: Session, ids: list[int], refused: Refused) -> dict[int, list[_Reviewed]]:
    """The reviews that count of these inspections, oldest first."""
    out: dict[int, list[_Reviewed]] = defaultdict(list)
    for rv in session.execute(select(R.inspection_id, R.id, R.reviewer, R.action, R.new_verdict, R.reason,
                                     R.created_at, R.detail).where(R.inspection_id.in_(ids),
                                                                   *counted(refused=refused))
                              .order_by(R.inspection_id, R.id)):
        out[rv.inspection_id].append(_Reviewed(rv.id, rv.reviewer, rv.action, rv.new_verdict, rv.reason or "",
                                               rv.created_at, loads(rv.detail, {}) or {}))
    return out



def _training_conds(since: dt.datetime | None, until: dt.datetime | None, reviewed_only: bool,
                    product: str | None, refused: Refused) -> list[Any]:
    conds = [*inspection_conds(since, until, None), I.image_path.is_not(None)]
    if reviewed_only:
        conds.append(exists().where(R.inspection_id == I.id, *counted(refused=refused)))
    if product is not None:
        conds.append(I.product == product)
    return conds


def count_training_parts(session: Session, since: dt.datetime | None = None, until: dt.datetime | None = None,
                         reviewed_only: bool = False, product: str | None = None) -> int:
    return int(session.execute(select(func.count()).select_from(INSPECTIONS)
                               .where(*_training_conds(since, until, reviewed_only, product,
                                                       refused_reviews(session)))).scalar()
               or 0)


def iter_training_parts(session: Session, since: dt.datetime | None = None, until: dt.datetime | None = None,
                        reviewed_only: bool = False, batch: int = BATCH,
                        product: str | None = None) -> Iterator[PartForTraining]:
    """Inspections with a stored image (of ``product`` when given), with their boxes and reviews (oldest first)."""
    cols = [I.verdict, I.image_path]
    refused = refused_reviews(session)  # reviews not from this database count nowhere (issue 24)
    for rows in _batches(session, _training_conds(since, until, reviewed_only, product, refused), cols, batch):
        ids = [r.id for r in rows]
        boxes = _boxes(session, ids)
        reviews: dict[int, list[ReviewStep]] = defaultdict(list)
        for rv in session.execute(select(R.inspection_id, R.id, R.action, R.new_verdict, R.detail)
                                  .where(R.inspection_id.in_(ids), *counted(refused=refused))
                                  .order_by(R.inspection_id, R.id)):
            reviews[rv.inspection_id].append(ReviewStep(rv.action, rv.new_verdict, loads(rv.detail, {}) or {},
                                                        rv.id))
        for r in rows:
            steps = tuple(reviews.get(r.id, ()))
            final = steps[-1].new_verdict if steps else r.verdict
            yield PartForTraining(r.id, r.image_path, r.verdict, final, tuple(boxes.get(r.id, ())), steps)


def training_classes(session: Session, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[str]:
    """The classes of the model versions that inspected the period, in the first model's order."""
    model_ids = select(Run.model_id).where(Run.id.in_(select(I.run_id).where(*inspection_conds(since, until, None))
                                                      .distinct()))
    names: list[str] = []
    for (text,) in session.execute(select(ModelVersion.classes).where(ModelVersion.id.in_(model_ids))
                                   .order_by(ModelVersion.id)):
        for c in loads(text, []):
            if c not in names:
                names.append(c)
    return names

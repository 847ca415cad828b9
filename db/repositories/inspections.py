"""Inspection records: fast batched inserts for the runner, keyset pages and counts for review and reports."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.orm import Session

from db.dto import InspectionDetail, InspectionRow, PageCursor, VerdictCounts
from db.repositories._common import detection_dto, dumps, loads, model_dto, review_dto, run_dto
from db.repositories.queries import (
    DETECTIONS,
    INSPECTIONS,
    D,
    DayFilter,
    I,
    InspectionFilter,
    Refused,
    latest_review_verdict,
    page_ids_query,
    refused_reviews,
    verdict_counts_queries,
)
from db.schema import DetectionRecord, ModelVersion, Review, Run
from db.seal import DAY_COLUMNS, inspection_fields, seal_columns
from inspector.core.names import readable
from inspector.core.types import Inspection, Verdict

MAX_PAGE = 10_000


Rows = tuple[dict[str, Any], list[dict[str, Any]]]  # an inspection's row and its detections' rows


def _row_values(run_id: int, insp: Inspection, image_path: str | None, uid: str | None = None,
                recipe_sha256: str = "") -> dict[str, Any]:
    sha = insp.model_sha256 or (insp.detections.model_sha256 if insp.detections is not None else "")
    return {"run_id": run_id, "seq": insp.seq, "created_at": insp.started_at, "verdict": insp.verdict.value,
            "reasons": readable(dumps(list(insp.reasons))), "latency_ms": float(insp.latency_ms),
            "image_path": image_path, "frame_name": readable(insp.frame_name), "model_sha256": sha, "uid": uid,
            "recipe_sha256": (insp.day.recipe_sha256 if insp.day is not None else "") or recipe_sha256,
            **_trigger_values(insp), **_day_values(insp)}


def _day_values(insp: Inspection) -> dict[str, Any]:
    """Product, lot, work order and shift as stamped by the runner (NULL where not set)."""
    day = insp.day
    return {name: (getattr(day, name) or None) if day is not None else None for name in DAY_COLUMNS}


def _trigger_values(insp: Inspection) -> dict[str, Any]:
    """The trigger's part id and other keys (with the protocol it came by), None for a free-running part."""
    t = insp.trigger
    if t is None:
        return {"part_id": None, "trigger": None}
    return {"part_id": t.part_id, "trigger": dumps({**t.extra, "via": t.via, "at": t.at})}


def inspection_rows(run_id: int, insp: Inspection, image_path: str | None, uid: str | None = None,
                    recipe_sha256: str = "") -> Rows:
    """The values ``add_rows`` inserts for one inspection (plain values: the outbox stores them as JSON)."""
    boxes = [{"created_at": insp.started_at, "cls": d.cls, "label": d.label, "confidence": float(d.confidence),
              "x1": float(d.x1), "y1": float(d.y1), "x2": float(d.x2), "y2": float(d.y2)}
             for d in (insp.detections or ())]
    return _row_values(run_id, insp, image_path, uid, recipe_sha256), boxes


def _insert_sqlite(session: Session | Connection, rows: list[dict[str, Any]]) -> list[int]:
    """SQLite's ordered RETURNING goes one row per statement; instead the first row takes the write lock
    and its id, and the rest follow with the next ids (free: SQLite numbers from the largest id, and no
    one else can write until we commit) in one executemany."""
    first = session.execute(insert(INSPECTIONS).returning(INSPECTIONS.c.id), rows[:1]).scalar_one()
    ids = list(range(first, first + len(rows)))
    if len(rows) > 1:
        session.execute(insert(INSPECTIONS), [{**row, "id": i} for row, i in zip(rows[1:], ids[1:], strict=True)])
    return ids


COUNT_ALL = 2**62  # a limit no table reaches: the page query counts every match


class InspectionRepo:
    @staticmethod
    def add(session: Session, run_id: int, inspection: Inspection, image_path: str | None,
            recipe_sha256: str = "") -> int:
        """Insert one inspection and its detections; returns its id."""
        return InspectionRepo.add_many(session, run_id, [(inspection, image_path)], recipe_sha256)[0]

    @staticmethod
    def add_many(session: Session, run_id: int, items: Sequence[tuple[Inspection, str | None]],
                 recipe_sha256: str = "") -> list[int]:
        """Insert inspections (with their image paths, relative to the image folder) and their detections,
        as a few multi-row statements; returns their ids in the order given."""
        return InspectionRepo.add_rows(session, [inspection_rows(run_id, insp, path, None, recipe_sha256)
                                                 for insp, path in items])

    @staticmethod
    def add_rows(session: Session | Connection, entries: Sequence[Rows], seal_key: bytes | None = None,
                 info: Mapping[str, Any] | None = None) -> list[int]:
        """Insert rows made by ``inspection_rows`` as a few multi-row statements, each row sealed at insert
        (``db.seal``: signed by the session's station, else HMAC-sealed; so a row forwarded from the outbox is
        sealed too); returns the ids in order.

        ``session`` may be a Core connection inside its transaction (the run's writer: less work per part than
        a Session); then ``info`` is its session factory's (the signer or the key), or ``seal_key`` the key."""
        if not entries:
            return []
        given = info if info is not None else (session.info if isinstance(session, Session) else {})
        given = {**given, "seal_key": seal_key} if seal_key else given
        # an outbox entry written before schema 0005 has no day columns: NULL, as on the rows of its time
        rows = [{**dict.fromkeys(DAY_COLUMNS), **row} for row, _ in entries]
        rows = [{**row, **seal_columns(given, inspection_fields, row)} for row in rows]
        dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
        if dialect.name == "sqlite":
            ids = _insert_sqlite(session, rows)
        else:
            stmt = insert(INSPECTIONS).returning(INSPECTIONS.c.id, sort_by_parameter_order=True)
            ids = list(session.execute(stmt, rows).scalars())
        boxes = [{**box, "inspection_id": iid} for iid, (_, bs) in zip(ids, entries, strict=True) for box in bs]
        if boxes:
            session.execute(insert(DETECTIONS), boxes)
        return ids

    @staticmethod
    def existing_uids(session: Session, uids: Sequence[str]) -> set[str]:
        """Which of these inspection keys are stored already (a forward whose acknowledgement was lost)."""
        if not uids:
            return set()
        return set(session.scalars(select(INSPECTIONS.c.uid).where(INSPECTIONS.c.uid.in_(list(uids)))))

    @staticmethod
    def page(session: Session, filters: InspectionFilter | None = None, limit: int = 50,
             after: PageCursor | None = None, refused: Refused | None = None) -> list[InspectionRow]:
        """One page, newest first. For the next page pass ``after=rows[-1].cursor``. ``refused``: as
        ``refused_reviews`` (found here when not given)."""
        if not 0 < limit <= MAX_PAGE:
            raise ValueError(f"expected a page size in 1..{MAX_PAGE}, got {limit}")
        refused = refused_reviews(session) if refused is None else refused
        q = page_ids_query(filters or InspectionFilter(), limit, after, refused)
        if q is None:
            return []
        ids = [row[0] for row in session.execute(q)]
        return InspectionRepo.rows(session, ids, refused)

    @staticmethod
    def count(session: Session, filters: InspectionFilter | None = None) -> int:
        """How many rows the filter matches (the page walk without its limit)."""
        q = page_ids_query(filters or InspectionFilter(), COUNT_ALL, None, refused_reviews(session))
        if q is None:
            return 0
        return int(session.execute(select(func.count()).select_from(q.subquery())).scalar() or 0)

    @staticmethod
    def iterate(session: Session, filters: InspectionFilter | None = None,
                batch: int = 1000) -> Iterator[InspectionRow]:
        """Every matching row, newest first, fetched a keyset page at a time (for reports and exports)."""
        after = None
        refused = refused_reviews(session)  # read once for the whole walk, not once a page
        while True:
            rows = InspectionRepo.page(session, filters, batch, after, refused)
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].cursor

    @staticmethod
    def rows(session: Session, ids: Sequence[int], refused: Refused | None = None) -> list[InspectionRow]:
        """The rows of these ids, in the order given (missing ids are skipped). ``refused``: as
        ``refused_reviews`` (found here when not given)."""
        if not ids:
            return []
        refused = refused_reviews(session) if refused is None else refused
        final = latest_review_verdict(refused=refused).label("final")
        found = {r.id: r for r in session.execute(select(INSPECTIONS, final).where(I.id.in_(ids)))}
        labels: dict[int, list[tuple[str, int]]] = defaultdict(list)
        q = (select(D.inspection_id, D.label, func.count()).where(D.inspection_id.in_(ids))
             .group_by(D.inspection_id, D.label).order_by(D.inspection_id, D.label))
        for iid, label, n in session.execute(q):
            labels[iid].append((label, n))
        out = []
        for i in ids:
            r = found.get(i)
            if r is None:
                continue
            out.append(InspectionRow(
                id=r.id, run_id=r.run_id, seq=r.seq, created_at=r.created_at, machine_verdict=Verdict(r.verdict),
                final_verdict=Verdict(r.final or r.verdict), reasons=tuple(loads(r.reasons, [])),
                latency_ms=r.latency_ms, image_path=r.image_path, frame_name=r.frame_name,
                model_sha256=r.model_sha256, reviewed=r.final is not None, labels=tuple(labels.get(i, ())),
                product=r.product or "", lot=r.lot or "", work_order=r.work_order or "", shift=r.shift or ""))
        return out

    @staticmethod
    def get(session: Session, inspection_id: int) -> InspectionDetail | None:
        """Row, detections, reviews (oldest first), run and model version of one inspection; None if unknown."""
        refused = refused_reviews(session)
        found = InspectionRepo.rows(session, [inspection_id], refused)
        if not found:
            return None
        row = found[0]
        dets = session.scalars(select(DetectionRecord).where(DetectionRecord.inspection_id == inspection_id)
                               .order_by(DetectionRecord.id))
        reviews = session.scalars(select(Review).where(Review.inspection_id == inspection_id).order_by(Review.id))
        run = session.get(Run, row.run_id)
        assert run is not None  # a foreign key
        model = None
        if row.model_sha256:
            model = session.scalars(select(ModelVersion).where(ModelVersion.sha256 == row.model_sha256)).first()
        model = model or session.get(ModelVersion, run.model_id)
        return InspectionDetail(row=row, detections=tuple(detection_dto(d) for d in dets),
                                reviews=tuple(review_dto(r, r.id not in refused) for r in reviews), run=run_dto(run),
                                model=None if model is None else model_dto(model))

    @staticmethod
    def counts(session: Session, since: dt.datetime | None = None, until: dt.datetime | None = None,
               run_id: int | None = None, day: DayFilter | None = None) -> VerdictCounts:
        """Final verdicts (after review) of the inspections in [since, until) and/or one run (and product, lot,
        shift)."""
        machine_q, changed_q = verdict_counts_queries(since, until, run_id, day, refused=refused_reviews(session))
        tally: Counter[str] = Counter()
        for v, n in session.execute(machine_q):
            tally[v] += n
        for machine, final, n in session.execute(changed_q):
            tally[machine] -= n
            tally[final] += n
        return VerdictCounts(inspected=sum(tally.values()), pass_=tally[Verdict.PASS.value],
                             fail=tally[Verdict.FAIL.value], review=tally[Verdict.REVIEW.value],
                             not_inspected=tally[Verdict.NOT_INSPECTED.value])

    @staticmethod
    def image_paths(session: Session) -> set[str]:
        """Every image path the database names (relative to the image folder), to reconcile orphans."""
        q = select(I.image_path).where(I.image_path.is_not(None)).execution_options(yield_per=10_000)
        return {p for (p,) in session.execute(q)}

    @staticmethod
    def last_seq(session: Session, run_id: int) -> int | None:
        """The seq of the run's latest inspection (by time), or None for a run without any."""
        q = select(I.seq).where(I.run_id == run_id).order_by(I.created_at.desc(), I.id.desc()).limit(1)
        return session.execute(q).scalar()

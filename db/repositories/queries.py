"""The review table's filter and the keyset queries behind it, shaped for the indexes in ``db.schema``.

A page is found in two steps: the ids of the page first, then the rows of just those ids. The ids
come newest first with a keyset on (created_at, id), so page 1,000 costs what page 1 costs, and each
query walks the one index that orders its candidates:

- no label, no review condition: ``inspections`` by (created_at, id) or (verdict, created_at, id);
- a label: ``detections`` by (label, created_at, inspection_id) (created_at is copied there);
- reviewed rows, or a final verdict set by a review: ``reviews`` by (new_verdict, inspection_created_at,
  inspection_id), keeping only each inspection's latest review.

The final verdict is the latest review's new verdict, else the machine's, so a filter on it is the
union of two such walks: never-reviewed rows with that machine verdict, and rows reviewed to it.

Only reviews that count are read (issue 24): ``refused_reviews`` lists the reviews whose seal does not bind them to
this database (copied in from another one, re-inserted under another id, changed outside Inspector), and every
query here that reads reviews takes that set and leaves them out, as if they were not there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ColumnElement, FromClause, Select, Table, and_, exists, func, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from db.dto import PageCursor
from db.repositories._common import verdict
from db.schema import DetectionRecord, InspectionRecord, Review, Run
from db.seal import key, public_keys, read_binding, review_fields, row_state
from inspector.core.errors import StorageError
from inspector.core.types import Verdict

INSPECTIONS = cast(Table, InspectionRecord.__table__)
DETECTIONS = cast(Table, DetectionRecord.__table__)
REVIEWS = cast(Table, Review.__table__)
RUNS = cast(Table, Run.__table__)
I = INSPECTIONS.c  # noqa: E741
D = DETECTIONS.c
R = REVIEWS.c


@dataclass(frozen=True)
class DayFilter:
    """Product, lot and shift (``2026-11-30/A``) as stored on each inspection, and the station that judged it (its
    run's, issue 30); empty fields do not filter."""

    product: str | None = None
    lot: str | None = None
    shift: str | None = None
    station: str | None = None

    def conds(self) -> list[ColumnElement[bool]]:
        conds = [getattr(I, name) == value for name in ("product", "lot", "shift") if (value := getattr(self, name))]
        if self.station:  # a station's runs are few: the (run_id, created_at, id) index serves each
            conds.append(I.run_id.in_(select(RUNS.c.id).where(RUNS.c.station == self.station)))
        return conds

    def __bool__(self) -> bool:
        return bool(self.product or self.lot or self.shift or self.station)


@dataclass(frozen=True)
class InspectionFilter:
    """What the review table shows. Every field is optional; set fields all apply (AND).

    ``since`` is inclusive, ``until`` exclusive (naive times are taken as UTC). ``verdict`` is the
    final verdict (after review: what the table shows), the same as ``final_verdict``;
    ``machine_verdict`` is the model's. Both together ask "the model said X, the reviewer said Y".
    ``label``: has at least one box of that class. ``reviewed``: has (True) or lacks (False) a review.
    """

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    verdict: Verdict | None = None
    label: str | None = None
    run_id: int | None = None
    reviewed: bool | None = None
    machine_verdict: Verdict | None = None
    final_verdict: Verdict | None = None
    day: DayFilter | None = None  # product, lot, shift

    def __post_init__(self) -> None:
        for name in ("verdict", "machine_verdict", "final_verdict"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, verdict(value))
        if self.verdict is not None and self.final_verdict is not None and self.verdict != self.final_verdict:
            raise ValueError(f"expected verdict and final_verdict to agree (both are the final verdict), got "
                             f"{self.verdict.value} and {self.final_verdict.value}")
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError(f"expected until >= since, got since={self.since} until={self.until}")

    @property
    def final(self) -> Verdict | None:
        return self.final_verdict or self.verdict


Refused = frozenset[int]


def refused_reviews(session: Session) -> Refused:
    """The ids of the reviews that do not count: their seal fails, or does not bind them to this database under their
    id (a review copied in from another database, re-inserted or replayed as newest, changed outside Inspector). A
    review sealed before binding began stays valid, as in ``audit verify``; an HMAC seal is not checked on a PC
    without the key file (``verify`` says so), a signed one always is.

    Each row's outcome is remembered for its (id, seal) under the same binding and keys, so a query reads only the
    ids and seals and checks only rows it has not seen: a copied, re-inserted or replayed review has a seal this id
    never had. A row changed in place under its old seal after this process checked it is left to ``audit
    verify`` (and the next start)."""
    try:
        k: bytes | None = key(session, create=False)
    except StorageError:
        k = None
    b = read_binding(session)
    ctx = (None if b is None else (b.seal_id, tuple(sorted(b.since.items())), b.holds),
           None if k is None else hashlib.sha256(k).hexdigest(), tuple(sorted(public_keys(session).items())))
    if sum(len(v) for v in _CHECKED.values()) > _CHECKED_MAX:
        _CHECKED.clear()
    cache = _CHECKED.setdefault(ctx, {})
    get, out, unseen = cache.get, set(), []
    # the driver's own tuples (id, mac, sig, signer) as the keys: this runs before every review query, over every review
    cursor = session.connection().connection.cursor()  # the same connection, so the same transaction
    try:
        cursor.execute("SELECT id, mac, sig, signer FROM reviews")
        seals_here = cursor.fetchall()
    finally:
        cursor.close()
    for row in seals_here:
        broken = get(row)
        if broken is None:
            if row[2] or k is not None:  # an HMAC seal without the key file is not checked here
                unseen.append(row)
        elif broken:
            out.add(row[0])
    ids = [row[0] for row in unseen]
    seals = {row[0]: tuple(row) for row in unseen}
    for lo in range(0, len(ids), 500):
        for r in session.execute(select(REVIEWS).where(R.id.in_(ids[lo:lo + 500]))):
            broken = row_state(session, "reviews", review_fields, r, k, b) == "broken"
            if seals.get(r.id) == (r.id, r.mac, r.sig, r.signer):
                cache[seals[r.id]] = broken
            if broken:
                out.add(r.id)
    return frozenset(out)


#: binding and keys -> (a review's id and seal) -> whether its seal failed
_CHECKED: dict[tuple, dict[tuple, bool]] = {}
_CHECKED_MAX = 500_000


def counted(reviews: Any = R, *, refused: Refused) -> list[ColumnElement[bool]]:
    """The condition that keeps only the reviews that count (none when every review counts)."""
    return [reviews.id.not_in(sorted(refused))] if refused else []


def latest_review_verdict(*, refused: Refused) -> Any:
    """Correlated scalar: the new verdict of the latest review that counts of ``inspections.id`` (NULL if none)."""
    return (select(R.new_verdict).where(R.inspection_id == I.id, *counted(refused=refused)).order_by(R.id.desc())
            .limit(1).correlate(INSPECTIONS).scalar_subquery())


def is_latest_review(reviews: Any = R, *, refused: Refused) -> ColumnElement[bool]:
    """True for a review that counts and that no later review that counts of the same inspection follows."""
    later = aliased(REVIEWS, name="later")
    newer = ~exists().where(later.c.inspection_id == reviews.inspection_id, later.c.id > reviews.id,
                            *counted(later.c, refused=refused))
    return and_(newer, *counted(reviews, refused=refused))


def never_reviewed(inspection_id: Any, *, refused: Refused) -> ColumnElement[bool]:
    return ~exists().where(R.inspection_id == inspection_id, *counted(refused=refused))


@dataclass
class _Walk:
    """One index walk: candidates from ``source`` keyed (created, id), filtered by ``conds``."""

    source: FromClause
    created: Any
    id: Any
    conds: list[ColumnElement[bool]] = field(default_factory=list)
    distinct: bool = False
    joined: bool = False

    def need_inspections(self) -> None:
        """Join the inspection row for conditions on its own columns."""
        if not self.joined:
            self.source = self.source.join(INSPECTIONS, I.id == self.id)
            self.joined = True

    def query(self, f: InspectionFilter, after: PageCursor | None, limit: int) -> Select[Any]:
        conds = list(self.conds)
        if f.since is not None:
            conds.append(self.created >= f.since)
        if f.until is not None:
            conds.append(self.created < f.until)
        if after is not None:  # (created, id) < cursor, written so that the created index bounds the range
            conds.append(and_(self.created <= after.created_at, or_(self.created < after.created_at,
                                                                   self.id < after.id)))
        q = select(self.id.label("id"), self.created.label("created_at")).select_from(self.source).where(*conds)
        if self.distinct:
            q = q.distinct()
        return q.order_by(self.created.desc(), self.id.desc()).limit(limit)


def _walk(f: InspectionFilter, machine: Verdict | None, reviewed_to: Verdict | None | bool,
          unreviewed: bool, refused: Refused) -> _Walk:
    """The walk for one branch. ``reviewed_to``: False = any review state, True = reviewed, a Verdict =
    latest review gave it. ``unreviewed``: only inspections never reviewed."""
    if reviewed_to is not False:
        w = _Walk(REVIEWS, R.inspection_created_at, R.inspection_id, [is_latest_review(refused=refused)])
        if isinstance(reviewed_to, Verdict):
            w.conds.append(R.new_verdict == reviewed_to.value)
        if f.label is not None:
            w.conds.append(exists().where(D.inspection_id == R.inspection_id, D.label == f.label))
    elif f.label is not None:
        w = _Walk(DETECTIONS, D.created_at, D.inspection_id, [D.label == f.label], distinct=True)
    else:
        w = _Walk(INSPECTIONS, I.created_at, I.id, joined=True)
    if unreviewed:
        w.conds.append(never_reviewed(w.id, refused=refused))
    if machine is not None:
        w.need_inspections()
        if f.run_id is not None and w.created is I.created_at:
            # keep the planner on the (run_id, created_at, id) index: walking the verdict index back to an
            # old run can cross most of the table, walking the run's own rows never does
            w.conds.append(func.coalesce(I.verdict, "") == machine.value)
        else:
            w.conds.append(I.verdict == machine.value)
    if f.day:
        w.need_inspections()
        w.conds.extend(f.day.conds())
    if f.run_id is not None:
        w.need_inspections()
        w.conds.append(I.run_id == f.run_id)
        if w.created is not I.created_at:
            # bound a walk over detections or reviews to the run's time span (two index look-ups)
            run = aliased(INSPECTIONS, name="run_span")
            span = select(run.c.created_at).where(run.c.run_id == f.run_id)
            w.conds.append(w.created >= span.with_only_columns(func.min(run.c.created_at)).scalar_subquery())
            w.conds.append(w.created <= span.with_only_columns(func.max(run.c.created_at)).scalar_subquery())
    return w


def page_ids_query(f: InspectionFilter, limit: int, after: PageCursor | None, refused: Refused) -> Select[Any] | None:
    """(id, created_at) of one page, newest first; None when the filter cannot match anything."""
    final = f.final
    if final is None:
        return _walk(f, f.machine_verdict, f.reviewed is True, f.reviewed is False, refused).query(f, after, limit)
    branches = []
    if f.reviewed is not True and f.machine_verdict in (None, final):
        branches.append(_walk(f, final, False, True, refused).query(f, after, limit))  # the machine's verdict stands
    if f.reviewed is not False:
        branches.append(_walk(f, f.machine_verdict, final, False, refused).query(f, after, limit))  # a review set it
    if len(branches) < 2:
        return branches[0] if branches else None
    # SQLite wants each ORDER BY ... LIMIT branch wrapped before UNION ALL
    both = union_all(*(select(*b.subquery().c) for b in branches)).subquery("page")
    return select(both.c.id, both.c.created_at).order_by(both.c.created_at.desc(), both.c.id.desc()).limit(limit)


def verdict_counts_queries(since: dt.datetime | None, until: dt.datetime | None,
                           run_id: int | None, day: DayFilter | None = None, *,
                           refused: Refused) -> tuple[Select[Any], Select[Any]]:
    """(machine verdict, n) over the period, and (machine, final, n) of the rows a review that counts changed."""
    conds: list[ColumnElement[bool]] = []
    rconds: list[ColumnElement[bool]] = [is_latest_review(refused=refused), R.new_verdict != I.verdict]
    if since is not None:
        conds.append(I.created_at >= since)
        rconds.append(R.inspection_created_at >= since)
    if until is not None:
        conds.append(I.created_at < until)
        rconds.append(R.inspection_created_at < until)
    if run_id is not None:
        conds.append(I.run_id == run_id)
        rconds.append(I.run_id == run_id)
    if day:
        conds.extend(day.conds())
        rconds.extend(day.conds())
    machine = select(I.verdict, func.count()).where(*conds).group_by(I.verdict)
    changed = (select(I.verdict, R.new_verdict, func.count()).select_from(REVIEWS.join(INSPECTIONS,
                                                                                         I.id == R.inspection_id))
               .where(*rconds).group_by(I.verdict, R.new_verdict))
    return machine, changed

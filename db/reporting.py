"""The figures of a QC report, from a handful of aggregate queries (never a load of every row).

``report_data`` returns one ``inspector.reports.ReportData``: the PDF and the HTML are drawn from it,
so they cannot disagree. Final verdicts are the latest review's new verdict, else the machine's,
counted as ``InspectionRepo.counts`` does: machine verdicts grouped, then corrected by the latest
reviews that changed them. The period is [since, until) and/or one run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, cast, func, select
from sqlalchemy.orm import Session

from db.repositories._common import loads
from db.repositories.queries import (
    DETECTIONS,
    INSPECTIONS,
    REVIEWS,
    D,
    DayFilter,
    I,
    R,
    Refused,
    counted,
    is_latest_review,
    latest_review_verdict,
    refused_reviews,
    verdict_counts_queries,
)
from db.schema import ModelVersion, Run
from inspector.core.reviewing import standing
from inspector.reports.data import (
    Box,
    Failure,
    ModelUsed,
    ParetoItem,
    ReportData,
    StationFigures,
    Totals,
    YieldPoint,
)
from inspector.reports.dataset import ReviewStep, drawn_box

SHIFT_AFTER = dt.timedelta(days=3)  # longer periods are shown per 8-hour shift instead of per hour
WORST = 12
_V = ("PASS", "FAIL", "REVIEW", "NOT_INSPECTED")


def window(created: Any, since: dt.datetime | None, until: dt.datetime | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if since is not None:
        conds.append(created >= since)
    if until is not None:
        conds.append(created < until)
    return conds


def inspection_conds(since: dt.datetime | None, until: dt.datetime | None,
                     run_id: int | None, day: DayFilter | None = None) -> list[ColumnElement[bool]]:
    conds = window(I.created_at, since, until)
    if run_id is not None:
        conds.append(I.run_id == run_id)
    if day:
        conds.extend(day.conds())
    return conds


def final_verdict(*, refused: Refused) -> ColumnElement[Any]:
    """The final verdict of ``inspections``' current row: latest review's that counts, else the machine's."""
    return func.coalesce(latest_review_verdict(refused=refused), I.verdict)


def _bucket(session: Session, col: Any, hours: int) -> ColumnElement[Any]:
    """Whole hours (or shifts) since the epoch, as an integer, on SQLite and PostgreSQL."""
    secs = hours * 3600
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", col), Integer) / secs
    return cast(func.floor(func.extract("epoch", col) / secs), BigInteger)


def _totals(tally: Counter[str]) -> Totals:
    return Totals(inspected=sum(tally.values()), passed=tally["PASS"], failed=tally["FAIL"], review=tally["REVIEW"],
                  not_inspected=tally["NOT_INSPECTED"])


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def report_data(session: Session, since: dt.datetime | None = None, until: dt.datetime | None = None,
                run_id: int | None = None, worst: int = WORST, now: dt.datetime | None = None,
                day: DayFilter | None = None) -> ReportData:
    """Every figure of the report over [since, until) and/or one run (and/or a product, lot, shift). Run it
    inside one transaction (``with session.begin():``) so that all figures see the same rows."""
    since, until = _utc(since), _utc(until)
    conds = inspection_conds(since, until, run_id, day)
    refused = refused_reviews(session)  # reviews not from this database count nowhere (issue 24)
    first, last, n = session.execute(select(func.min(I.created_at), func.max(I.created_at), func.count())
                                     .where(*conds)).one()
    start, end = since or first, until or last
    hours = 8 if start is not None and end is not None and end - start > SHIFT_AFTER else 1
    series, escapes = _series(session, since, until, run_id, hours, day, refused) if n else ([], 0)
    total: Counter[str] = Counter()
    for p in series:
        for v, k in (("PASS", p.totals.passed), ("FAIL", p.totals.failed), ("REVIEW", p.totals.review),
                     ("NOT_INSPECTED", p.totals.not_inspected)):
            total[v] += k
    reviewed, overrides = _review_counts(session, since, until, run_id, day, refused) if n else (0, 0)
    runs, stations, models = _provenance(session, conds) if n else ((), (), ())
    return ReportData(
        generated_at=_utc(now) or dt.datetime.now(dt.timezone.utc), period_start=start, period_end=end,
        run_id=run_id, runs=runs, stations=stations, models=models, totals=_totals(total), reviewed=reviewed,
        overrides=overrides, escapes=escapes, pareto=_pareto(session, conds, refused) if n else (), bucket_hours=hours,
        yield_series=tuple(series), worst=_worst(session, conds, worst, refused) if n and worst > 0 else (),
        scope=scope_text(day), by_station=_by_station(session, since, until, run_id, day, stations, refused))


def _by_station(session: Session, since: dt.datetime | None, until: dt.datetime | None, run_id: int | None,
                day: DayFilter | None, stations: tuple[str, ...], refused: Refused) -> tuple[StationFigures, ...]:
    """Yield and Pareto of each station, when the report covers more than one (a plant's, issue 30)."""
    if len(stations) < 2:
        return ()
    out = []
    for station in stations:
        one = replace(day or DayFilter(), station=station)
        machine_q, changed_q = verdict_counts_queries(since, until, run_id, one, refused=refused)
        tally: Counter[str] = Counter()
        for v, k in session.execute(machine_q):
            tally[v] += k
        for machine, final, k in session.execute(changed_q):
            tally[machine] -= k
            tally[final] += k
        out.append(StationFigures(station, _totals(tally), _pareto(session, inspection_conds(since, until, run_id,
                                                                                              one), refused)[:5]))
    return tuple(out)


def scope_text(day: DayFilter | None) -> str:
    """``station s2 · product P1 · lot L123 · shift 2026-11-30/A`` for the report's header ("" without a filter)."""
    if not day:
        return ""
    return " · ".join(f"{k} {v}" for k, v in (("station", day.station), ("product", day.product), ("lot", day.lot),
                                              ("shift", day.shift)) if v)


def _series(session: Session, since: dt.datetime | None, until: dt.datetime | None, run_id: int | None,
            hours: int, day: DayFilter | None, refused: Refused) -> tuple[list[YieldPoint], int]:
    """Final verdicts per hour/shift, and the escapes (machine PASS, final FAIL)."""
    b = _bucket(session, I.created_at, hours).label("b")
    machine = (select(b, I.verdict, func.count()).where(*inspection_conds(since, until, run_id, day))
               .group_by(b, I.verdict))
    rb = _bucket(session, R.inspection_created_at, hours).label("b")
    rconds = [is_latest_review(refused=refused), R.new_verdict != I.verdict,
              *window(R.inspection_created_at, since, until)]
    if run_id is not None:
        rconds.append(I.run_id == run_id)
    if day:
        rconds.extend(day.conds())
    changed = (select(rb, I.verdict, R.new_verdict, func.count())
               .select_from(REVIEWS.join(INSPECTIONS, I.id == R.inspection_id)).where(*rconds)
               .group_by(rb, I.verdict, R.new_verdict))
    tally: dict[int, Counter[str]] = defaultdict(Counter)
    for bucket, v, k in session.execute(machine):
        tally[int(bucket)][v] += k
    escapes = 0
    for bucket, was, now, k in session.execute(changed):
        tally[int(bucket)][was] -= k
        tally[int(bucket)][now] += k
        if was == "PASS" and now == "FAIL":
            escapes += k
    step = hours * 3600
    points = [YieldPoint(dt.datetime.fromtimestamp(bk * step, dt.timezone.utc), _totals(tally[bk]))
              for bk in sorted(tally)]
    return points, escapes


def _review_counts(session: Session, since: dt.datetime | None, until: dt.datetime | None,
                   run_id: int | None, day: DayFilter | None, refused: Refused) -> tuple[int, int]:
    conds = [*window(R.inspection_created_at, since, until), *counted(refused=refused)]
    src: Any = REVIEWS
    if run_id is not None or day:
        src = REVIEWS.join(INSPECTIONS, I.id == R.inspection_id)
        conds.extend(inspection_conds(None, None, run_id, day))
    q = select(func.count(func.distinct(R.inspection_id)),
               func.coalesce(func.sum(cast(R.action == "override", Integer)), 0)).select_from(src).where(*conds)
    reviewed, overrides = session.execute(q).one()
    return int(reviewed), int(overrides)


def _provenance(session: Session, conds: list[ColumnElement[bool]]
                ) -> tuple[tuple[int, ...], tuple[str, ...], tuple[ModelUsed, ...]]:
    """Runs, stations and model versions (name + sha256) of the inspections in the period."""
    used = session.execute(select(I.run_id, I.model_sha256, func.count()).where(*conds)
                           .group_by(I.run_id, I.model_sha256)).all()
    run_ids = sorted({r for r, _, _ in used})
    runs = {r.id: r for r in session.execute(select(Run.id, Run.station, Run.model_id).where(Run.id.in_(run_ids)))}
    versions = session.execute(select(ModelVersion.id, ModelVersion.name, ModelVersion.sha256)).all()
    by_id = {m.id: m for m in versions}
    by_sha = {m.sha256: m for m in versions}
    models: Counter[tuple[str, str]] = Counter()
    for rid, sha, k in used:
        run_model = by_id.get(runs[rid].model_id) if rid in runs else None
        version = (by_sha.get(sha) if sha else None) or run_model
        name = version.name if version is not None else "unknown"
        models[(name, sha or (run_model.sha256 if run_model else ""))] += k
    stations = tuple(sorted({runs[r].station for r in run_ids if r in runs and runs[r].station}))
    return (tuple(run_ids), stations,
            tuple(ModelUsed(name, sha, k) for (name, sha), k in sorted(models.items(), key=lambda x: -x[1])))


def _pareto(session: Session, conds: list[ColumnElement[bool]], refused: Refused) -> tuple[ParetoItem, ...]:
    """Defects of the parts finally FAIL or REVIEW, as reviewed: the model's boxes less those QC marked false,
    plus the boxes QC drew for missed defects (an undone review counts for nothing)."""
    judged = [*conds, final_verdict(refused=refused).in_(("FAIL", "REVIEW"))]
    q = (select(D.label, func.count()).select_from(INSPECTIONS.join(DETECTIONS, D.inspection_id == I.id))
         .where(*judged).group_by(D.label))
    counts: Counter[str] = Counter({label: int(k) for label, k in session.execute(q)})
    rq = (select(R.inspection_id, R.id, R.action, R.new_verdict, R.detail)
          .select_from(REVIEWS.join(INSPECTIONS, I.id == R.inspection_id))
          .where(*judged, R.action.in_(("false_detection", "missed_defect")), *counted(refused=refused))
          .order_by(R.inspection_id, R.id))
    steps: dict[int, list[ReviewStep]] = defaultdict(list)
    for iid, rid, action, new, detail in session.execute(rq):
        steps[iid].append(ReviewStep(action, new, loads(detail, {}) or {}, rid))
    false_ids = [r.detail.get("detection_id") for part in steps.values() for r in standing(part)
                 if r.action == "false_detection"]
    if false_ids:
        for label, k in session.execute(select(D.label, func.count()).where(D.id.in_([i for i in false_ids
                                                                                    if isinstance(i, int)]))
                                        .group_by(D.label)):
            counts[label] -= int(k)
    for part in steps.values():
        for r in standing(part):
            b = drawn_box(r.detail) if r.action == "missed_defect" else None
            if b is not None:
                counts[b.label] += 1
    ordered = sorted(((label, k) for label, k in counts.items() if k > 0), key=lambda x: (-x[1], x[0]))
    return pareto_items(ordered)


def pareto_items(counts: Iterable[tuple[str, int]]) -> tuple[ParetoItem, ...]:
    counts = list(counts)
    total = sum(k for _, k in counts)
    out, run = [], 0
    for label, k in counts:
        run += k
        out.append(ParetoItem(label, k, run / total * 100.0))
    return tuple(out)


def _worst(session: Session, conds: list[ColumnElement[bool]], limit: int, refused: Refused) -> tuple[Failure, ...]:
    """The FAIL parts the model was surest about, with their boxes."""
    top = func.max(D.confidence).label("top")
    q = (select(I.id, top).select_from(INSPECTIONS.join(DETECTIONS, D.inspection_id == I.id))
         .where(*conds, final_verdict(refused=refused) == "FAIL").group_by(I.id).order_by(top.desc(), I.id)
         .limit(limit))
    ranked = session.execute(q).all()
    ids = [r.id for r in ranked]
    if not ids:
        return ()
    rows = {r.id: r for r in session.execute(select(I.id, I.created_at, I.run_id, I.frame_name, I.image_path, I.seq)
                                             .where(I.id.in_(ids)))}
    boxes: dict[int, list[Box]] = defaultdict(list)
    for d in session.execute(select(D.inspection_id, D.label, D.confidence, D.x1, D.y1, D.x2, D.y2, D.cls)
                             .where(D.inspection_id.in_(ids)).order_by(D.inspection_id, D.confidence.desc())):
        boxes[d.inspection_id].append(Box.from_detection(d))
    return tuple(Failure(i, _utc(rows[i].created_at) or rows[i].created_at, rows[i].run_id, rows[i].frame_name,
                         top_conf, rows[i].image_path, tuple(boxes[i]), rows[i].seq)
                 for i, top_conf in ranked)


__all__ = ["final_verdict", "inspection_conds", "pareto_items", "report_data", "window"]

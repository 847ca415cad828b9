"""The report's figures against the database itself (plain SQL), and the pure pieces they are made of."""

from __future__ import annotations

import datetime as dt

import pytest

from db import InspectionRepo, open_database, session_factory
from db.reporting import pareto_items, report_data
from inspector.reports import Totals
from tests.reports.conftest import CLASSES, SHA, T0


@pytest.fixture(scope="module")
def data(qc_db):
    engine = open_database(qc_db.url)
    with session_factory(engine)() as s, s.begin():
        d = report_data(s)
    engine.dispose()
    return d


def test_totals_are_the_final_verdicts_in_sql(qc_db, data):
    want = qc_db.final_counts()
    t = data.totals
    assert (t.inspected, t.passed, t.failed, t.review, t.not_inspected) == (
        sum(want.values()), want["PASS"], want["FAIL"], want["REVIEW"], want["NOT_INSPECTED"])
    assert t.yield_pct == pytest.approx(100 * want["PASS"] / (sum(want.values()) - want["NOT_INSPECTED"]))


def test_totals_agree_with_the_repository_counts(qc_db, data):
    engine = open_database(qc_db.url)
    with session_factory(engine)() as s:
        c = InspectionRepo.counts(s)
    engine.dispose()
    assert (c.inspected, c.pass_, c.fail, c.review, c.not_inspected) == (
        data.totals.inspected, data.totals.passed, data.totals.failed, data.totals.review, data.totals.not_inspected)


def test_review_figures_match_sql(qc_db, data):
    [(overrides,)] = qc_db.sql("SELECT count(*) FROM reviews WHERE action = 'override'")
    [(reviewed,)] = qc_db.sql("SELECT count(DISTINCT inspection_id) FROM reviews")
    [(escapes,)] = qc_db.sql(
        "SELECT count(*) FROM inspections i WHERE i.verdict = 'PASS' AND (SELECT r.new_verdict FROM reviews r "
        "WHERE r.inspection_id = i.id ORDER BY r.id DESC LIMIT 1) = 'FAIL'")
    assert (data.overrides, data.reviewed, data.escapes) == (overrides, reviewed, escapes)
    assert escapes == 2 and overrides == 4


def test_pareto_counts_boxes_on_fail_and_review_parts(qc_db, data):
    """The model's boxes not marked false, and the boxes QC drew (issue 26), on parts finally FAIL or REVIEW."""
    final = ("coalesce((SELECT r.new_verdict FROM reviews r WHERE r.inspection_id = i.id ORDER BY r.id DESC LIMIT 1),"
             " i.verdict) IN ('FAIL', 'REVIEW')")
    rows = qc_db.sql(
        "SELECT label, count(*) FROM ("
        "SELECT d.label AS label FROM detections d JOIN inspections i ON i.id = d.inspection_id WHERE " + final +
        " AND NOT EXISTS (SELECT 1 FROM reviews f WHERE f.action = 'false_detection' AND f.inspection_id = i.id "
        "AND json_extract(f.detail, '$.detection_id') = d.id) "
        "UNION ALL SELECT json_extract(m.detail, '$.label') FROM reviews m JOIN inspections i ON i.id = m.inspection_id"
        " WHERE m.action = 'missed_defect' AND " + final + ") GROUP BY label")
    assert {p.label: p.count for p in data.pareto} == dict(rows)
    [(drawn,)] = qc_db.sql("SELECT count(*) FROM reviews WHERE action = 'missed_defect'")
    assert drawn == 1
    counts = [p.count for p in data.pareto]
    assert counts == sorted(counts, reverse=True)
    assert data.pareto[-1].cumulative_pct == pytest.approx(100.0)


def test_provenance_and_period(data):
    assert data.stations == ("line-2",)
    assert [(m.name, m.sha256) for m in data.models] == [("parts-test", SHA)]
    assert data.period_start == T0 and data.period_end == T0 + dt.timedelta(minutes=3.5 * 47)
    assert data.bucket_hours == 1 and len(data.yield_series) == 3


def test_yield_series_adds_up_to_the_totals(data):
    assert sum(p.totals.inspected for p in data.yield_series) == data.totals.inspected
    assert sum(p.totals.passed for p in data.yield_series) == data.totals.passed
    assert [p.start for p in data.yield_series] == sorted(p.start for p in data.yield_series)


def test_worst_failures_are_final_fails_by_confidence(qc_db, data):
    assert 0 < len(data.worst) <= 12
    tops = [f.max_confidence for f in data.worst]
    assert tops == sorted(tops, reverse=True)
    finals = dict(qc_db.sql("SELECT i.id, coalesce((SELECT r.new_verdict FROM reviews r WHERE r.inspection_id = i.id"
                            " ORDER BY r.id DESC LIMIT 1), i.verdict) FROM inspections i"))
    assert all(finals[f.inspection_id] == "FAIL" for f in data.worst)
    assert all(f.image_path and f.boxes and f.boxes[0].label in CLASSES for f in data.worst)


@pytest.mark.parametrize("minutes,run", [((60, 120), None), ((0, 30), 1), (None, 1), ((400, 500), None)])
def test_a_window_or_run_counts_what_sql_counts(qc_db, minutes, run):
    since = until = None
    sql = "SELECT count(*) FROM inspections WHERE 1=1"
    args: list[object] = []
    if minutes:
        since, until = (T0 + dt.timedelta(minutes=m) for m in minutes)
        sql += " AND created_at >= ? AND created_at < ?"
        args += [t.strftime("%Y-%m-%d %H:%M:%S.%f") for t in (since, until)]
    if run:
        sql += " AND run_id = ?"
        args.append(run)
    [(n,)] = qc_db.sql(sql, *args)
    engine = open_database(qc_db.url)
    with session_factory(engine)() as s, s.begin():
        d = report_data(s, since, until, run)
    engine.dispose()
    assert d.totals.inspected == n
    if minutes:
        assert (d.period_start, d.period_end) == (since, until)
    if n == 0:
        assert d.yield_series == () and d.worst == () and d.pareto == () and d.totals.yield_pct is None


def test_long_periods_are_shown_per_shift(qc_db):
    engine = open_database(qc_db.url)
    with session_factory(engine)() as s, s.begin():
        d = report_data(s, T0 - dt.timedelta(days=3), T0 + dt.timedelta(days=1))
    engine.dispose()
    assert d.bucket_hours == 8
    assert [p.start for p in d.yield_series] == [dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.timezone.utc),
                                                 dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.timezone.utc)]


def test_pareto_items_cumulate():
    items = pareto_items([("scratch", 6), ("dent", 3), ("chip", 1)])
    assert [round(p.cumulative_pct, 1) for p in items] == [60.0, 90.0, 100.0]
    assert pareto_items([]) == ()


@pytest.mark.parametrize("kwargs,message", [
    ({"inspected": 3, "passed": 1}, "pass \\+ fail"),
    ({"inspected": -1, "not_inspected": -1}, "counts >= 0"),
])
def test_totals_refuse_counts_that_do_not_add_up(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Totals(**kwargs)


def test_postgresql_gives_the_same_report(qc_db, tmp_path):
    """The same parts and reviews stored in PostgreSQL make the same report as in SQLite."""
    from tests.db.conftest import backend_url
    from tests.reports.conftest import build_qc_db

    # a schema of its own on the test server (skipped without INSPECTOR_TEST_PG_URL; set, a failure is a failure)
    schema = backend_url("postgresql", tmp_path)
    url = next(schema)
    try:
        build_qc_db(tmp_path, url=url)
        reports = []
        for u in (qc_db.url, url):
            engine = open_database(u)
            with session_factory(engine)() as s, s.begin():
                reports.append(report_data(s, T0 - dt.timedelta(days=3), T0 + dt.timedelta(days=1), now=T0))
                reports.append(report_data(s, now=T0))
            engine.dispose()
    finally:
        schema.close()
    lite, lite_all, pg, pg_all = reports
    assert pg == lite and pg_all == lite_all

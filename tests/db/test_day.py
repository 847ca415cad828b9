"""The plant's day in the database: product, lot, work order and shift stored and sealed on each inspection
(older rows keep their seals across migration 0005), filtered in review and reports, and alarms recorded with
who acknowledged them, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

import pytest
from sqlalchemy import text

from db import AlarmRepo, AuditRepo, DayFilter, InspectionFilter, InspectionRepo, UserRepo
from inspector.core.auth import Role
from inspector.core.day import PartDay
from inspector.core.errors import PermissionDenied
from inspector.core.types import Verdict
from tests.conftest import signed

DAYS = [PartDay("P1", "L1", "WO1", "2024-03-01/A", "c" * 64), PartDay("P1", "L2", "", "2024-03-01/A"),
        PartDay("P2", "L2", "WO2", "2024-03-01/B"), None]


def _write(sessions, run_id, mk) -> None:
    with sessions() as s, s.begin():
        for k in range(12):
            verdict = (Verdict.PASS, Verdict.FAIL, Verdict.REVIEW)[k % 3]
            insp = dataclasses.replace(mk.inspection(k, verdict, ("scratch",) if verdict != Verdict.PASS else ()),
                                       day=DAYS[k % 4])
            InspectionRepo.add(s, run_id, insp, None)


def test_day_is_stored_filtered_counted_and_sealed(db_url, engine, sessions, run_id, mk):
    _write(sessions, run_id, mk)
    with sessions() as s:
        p1 = InspectionRepo.page(s, InspectionFilter(day=DayFilter(product="P1")), limit=100)
        assert len(p1) == 6 and {r.product for r in p1} == {"P1"}
        lot2 = InspectionRepo.page(s, InspectionFilter(day=DayFilter(lot="L2")), limit=100)
        assert {(r.product, r.lot) for r in lot2} == {("P1", "L2"), ("P2", "L2")} and len(lot2) == 6
        both = InspectionFilter(day=DayFilter(product="P1", shift="2024-03-01/A"), verdict=Verdict.FAIL)
        assert InspectionRepo.count(s, both) == len([r for r in p1 if r.final_verdict == Verdict.FAIL])
        labelled = InspectionRepo.page(s, InspectionFilter(day=DayFilter(lot="L1"), label="scratch"), limit=100)
        assert {r.lot for r in labelled} == {"L1"} and labelled
        c = InspectionRepo.counts(s, day=DayFilter(shift="2024-03-01/B"))
        assert c.inspected == 3
        first = InspectionRepo.rows(s, [p1[-1].id])[0]
        assert (first.product, first.lot, first.work_order, first.shift) == ("P1", "L1", "WO1", "2024-03-01/A")
        recipe = s.execute(text(f"SELECT recipe_sha256 FROM inspections WHERE id = {first.id}")).scalar()
        assert recipe == "c" * 64, "the recipe the runner stamped wins over the run's"
        assert AuditRepo.verify(s).ok
    mk.raw_execute(db_url, engine, f"UPDATE inspections SET lot = 'L9' WHERE id = {first.id}")
    with sessions() as s:
        assert any(f"inspection {first.id}" in p for p in AuditRepo.verify(s).problems)


def test_alarms_are_recorded_sealed_and_acknowledged_once_by_a_user(db_url, engine, sessions, run_id, mk):
    with sessions() as s, s.begin():
        UserRepo.add(s, None, "boss", "admin", "scrypt$x")
        UserRepo.add(s, signed("boss", Role.ADMIN), "olga", "operator", "scrypt$x")
        a = AlarmRepo.raise_(s, "line-1", run_id, "fail_streak", "3 FAIL parts in a row")
    with sessions() as s, s.begin(), pytest.raises(PermissionDenied, match="signed-in user"):
        AlarmRepo.acknowledge(s, None, a.id)
    with sessions() as s, s.begin():
        assert [x.id for x in AlarmRepo.open(s, "line-1")] == [a.id]
        done = AlarmRepo.acknowledge(s, signed("olga", Role.OPERATOR), a.id)
    assert done.acked_by == "olga" and done.acked_at is not None
    with sessions() as s, s.begin(), pytest.raises(ValueError, match="acknowledged already by olga"):
        AlarmRepo.acknowledge(s, signed("boss", Role.ADMIN), a.id)
    with sessions() as s:
        assert AlarmRepo.open(s, "line-1") == []
        entries = AuditRepo.list(s)
        assert AuditRepo.verify(s).ok
    assert [(e.action, e.actor) for e in entries[:2]] == [("alarm.ack", "olga"), ("alarm.raise", "station:line-1")]
    mk.raw_execute(db_url, engine, f"UPDATE alarms SET acked_by = 'boss' WHERE id = {a.id}")
    with sessions() as s:
        assert any(f"alarm {a.id}" in p for p in AuditRepo.verify(s).problems)


def test_rows_sealed_before_0005_still_verify_after_it(tmp_path):
    """A 0004 database with a sealed inspection: after the upgrade its seal holds (the day is not in it), and
    a product written into it afterwards shows."""
    from alembic import command
    from sqlalchemy import create_engine

    from db import open_database, session_factory
    from db.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
    old.dispose()
    con = sqlite3.connect(tmp_path / "old.db")
    con.executescript("""
        insert into model_versions (name, path, sha256, classes, created_at)
            values ('m', 'm.onnx', 'ab', '[]', '2026-01-02 03:04:05.000000');
        insert into runs (source, recipe, recipe_name, model_id, station, mode, started_at)
            values ('folder', '{}', 'default', 1, 'st', 'part', '2026-01-02 03:04:05.000000');
        insert into inspections (run_id, seq, created_at, verdict, reasons, latency_ms, frame_name, model_sha256,
                                 recipe_sha256, mac)
            values (1, 0, '2026-01-02 03:04:06.000000', 'FAIL', '["scratch"]', 3.0, 'a.jpg', 'ab', '', '');
    """)
    con.commit()
    con.close()
    from db.seal import inspection_fields
    from inspector.core.integrity import seal, station_key

    class Row:  # the row as 0004 wrote it: sealed without the day
        run_id, seq, created_at, verdict, reasons = 1, 0, None, "FAIL", '["scratch"]'
        model_sha256, recipe_sha256, frame_name, image_path = "ab", "", "a.jpg", None

    Row.created_at = dt.datetime(2026, 1, 2, 3, 4, 6)
    con = sqlite3.connect(tmp_path / "old.db")
    con.execute("update inspections set mac = ?", (seal(station_key(), *inspection_fields(Row())),))
    con.commit()
    con.close()
    engine = open_database(url)
    try:
        sessions = session_factory(engine)
        with sessions() as s:
            assert AuditRepo.verify(s).ok, AuditRepo.verify(s).problems
        con = sqlite3.connect(tmp_path / "old.db")
        con.execute("update inspections set product = 'P1'")
        con.commit()
        con.close()
        with sessions() as s:
            assert any("inspection 1" in p for p in AuditRepo.verify(s).problems)
    finally:
        engine.dispose()


def test_an_outbox_entry_from_before_the_day_columns_is_stored_with_a_mixed_batch(sessions, run_id, mk):
    """Rows queued by an older version (no day keys) and new ones, forwarded together: both stored, sealed."""
    from db.repositories.inspections import inspection_rows

    old_row, old_boxes = inspection_rows(run_id, mk.inspection(0), None, "u" * 32)
    for name in ("product", "lot", "work_order", "shift"):
        del old_row[name]
    new = inspection_rows(run_id, dataclasses.replace(mk.inspection(1), day=DAYS[0]), None, "v" * 32)
    with sessions() as s, s.begin():
        ids = InspectionRepo.add_rows(s, [(old_row, old_boxes), new])
    with sessions() as s:
        rows = InspectionRepo.rows(s, ids)
        assert [(r.product, r.lot) for r in rows] == [("", ""), ("P1", "L1")]
        assert AuditRepo.verify(s).ok

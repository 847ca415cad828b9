"""The audit trail: a hash chain that shows a changed row, a deleted row and a deleted tail."""

from __future__ import annotations

import threading

import pytest

from db import AuditRepo, open_database, session_factory
from db.repositories import entry_hash


@pytest.fixture
def five(sessions) -> list:
    out = []
    for i in range(5):
        with sessions() as s, s.begin():
            out.append(AuditRepo.append(s, "admin", "settings.change", f"setting:{i}", {"old": i, "new": i + 1}))
    return out


def verify(sessions):
    with sessions() as s:
        return AuditRepo.verify(s)


def test_the_chain_links_and_verifies(sessions, five):
    assert five[0].id == 1 and five[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(five, five[1:], strict=False))
    e = five[2]
    assert e.hash == entry_hash(e.id, e.created_at, e.actor, e.action, e.target, e.detail, e.prev_hash)
    report = verify(sessions)
    assert report.ok and report.entries == 5 and report.problems == ()


def test_an_empty_trail_verifies(sessions):
    assert verify(sessions).ok


@pytest.mark.parametrize("sql, problem", [
    ("UPDATE audit_log SET actor = 'mallory' WHERE id = 3", "entry 3: its content does not match its hash"),
    ("UPDATE audit_log SET detail = '{\"new\":99,\"old\":2}' WHERE id = 3", "entry 3: its content does not match"),
    ("DELETE FROM audit_log WHERE id = 3", "entry 3 missing"),
    ("DELETE FROM audit_log WHERE id = 1", "entry 1 missing"),
    ("DELETE FROM audit_log WHERE id >= 4", "entries at the end were deleted"),
    ("DELETE FROM audit_log WHERE id = 5", "entries at the end were deleted"),
])
def test_tampering_is_detected(db_url, engine, sessions, five, mk, sql, problem):
    mk.raw_execute(db_url, engine, sql)
    report = verify(sessions)
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems


def test_a_deleted_row_also_breaks_the_next_link(db_url, engine, sessions, five, mk):
    mk.raw_execute(db_url, engine, "DELETE FROM audit_log WHERE id = 2")
    problems = verify(sessions).problems
    assert any("entry 3: does not link" in p for p in problems), problems


def test_two_writers_keep_one_chain(db_url, engine):
    # two engines = two programs appending at the same time
    other = open_database(db_url)
    errors: list[BaseException] = []

    def write(eng, who):
        sessions = session_factory(eng)
        try:
            for i in range(15):
                with sessions() as s, s.begin():
                    AuditRepo.append(s, who, "login", who, {"i": i})
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(eng, who)) for eng, who in ((engine, "ann"), (other, "bob"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.dispose()
    assert errors == []
    report = verify(session_factory(engine))
    assert report.ok and report.entries == 30, report.problems

"""Issue 12, points 2 and 6 to 10: rows edited behind Inspector's back (direct SQL on a real SQLite file
or PostgreSQL) are seen by ``AuditRepo.verify``; roles come from the users table; trust is per database."""

from __future__ import annotations

import datetime as dt

import pytest

from db import AuditRepo, InspectionRepo, ReviewRepo, TrustRepo, UserRepo
from db.accounts import create_user, recover, sign_in
from db.repositories.users import session_epoch
from inspector.core.auth import Actor, Role, issue
from inspector.core.errors import PermissionDenied
from inspector.core.integrity import station_key
from inspector.core.types import Verdict
from tests.conftest import QC, signed, staff


def BOSS():  # noqa: N802 - a badge, like QC()
    return signed("root-admin", Role.ADMIN)


@pytest.fixture
def station(sessions, run_id, mk) -> dict:
    """A station's database: users, a trusted model, three judged parts and a review."""
    with sessions() as s, s.begin():
        staff(s)
        UserRepo.add(s, BOSS(), "otto", "operator", "scrypt$test")
        TrustRepo.add(s, BOSS(), "model", "cd" * 32, "line.onnx")
        ids = InspectionRepo.add_many(s, run_id, [(mk.inspection(q, v, lb), None) for q, v, lb in
                                                  [(0, Verdict.PASS, ()), (1, Verdict.FAIL, ("scratch",)),
                                                   (2, Verdict.REVIEW, ("dent",))]], recipe_sha256="ef" * 32)
        ReviewRepo.add(s, ids[2], QC(), "override", "FAIL", "a real dent")
    with sessions() as s:
        assert AuditRepo.verify(s).ok
    return {"ids": ids}


def problems(sessions) -> tuple[str, ...]:
    with sessions() as s:
        report = AuditRepo.verify(s)
    assert not report.ok
    return report.problems


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE inspections SET verdict = 'PASS' WHERE verdict = 'FAIL'", "inspection"),
    ("UPDATE inspections SET reasons = '[]' WHERE verdict = 'FAIL'", "inspection"),
    ("UPDATE inspections SET model_sha256 = '" + "00" * 32 + "'", "inspection"),
    ("UPDATE inspections SET recipe_sha256 = '" + "00" * 32 + "'", "inspection"),
    ("UPDATE reviews SET new_verdict = 'PASS'", "review"),
    ("UPDATE users SET role = 'admin' WHERE name = 'otto'", "user"),
    ("UPDATE users SET password_hash = 'scrypt$mine' WHERE name = 'root-admin'", "user"),
    ("UPDATE trusted_files SET sha256 = '" + "99" * 32 + "'", "trusted file"),
    ("INSERT INTO trusted_files (kind, sha256, name, added_by, added_at, mac) VALUES "
     "('model', '" + "77" * 32 + "', 'evil', 'root-admin', '2026-01-01 00:00:00', '" + "ab" * 32 + "')",
     "trusted file"),
    ("DELETE FROM audit_anchor", "anchor is missing"),
    ("UPDATE audit_anchor SET entries = 0, last_id = 0, last_hash = '" + "0" * 64 + "', mac = ''",
     "anchor's seal"),
])
def test_an_edit_behind_inspectors_back_is_detected(db_url, engine, sessions, station, mk, sql, expected):
    mk.raw_execute(db_url, engine, sql)
    assert any(expected in p for p in problems(sessions)), problems(sessions)


def test_deleting_every_audit_row_and_the_anchor_is_detected(db_url, engine, sessions, station, mk):
    mk.raw_execute(db_url, engine, "DELETE FROM audit_log")
    mk.raw_execute(db_url, engine, "DELETE FROM audit_anchor")
    assert any("anchor is missing" in p for p in problems(sessions))


def test_deleting_the_last_entry_and_moving_the_anchor_back_is_detected(db_url, engine, sessions, station, mk):
    with sessions() as s:
        last, before = AuditRepo.list(s, limit=2)
    mk.raw_execute(db_url, engine, f"DELETE FROM audit_log WHERE id = {last.id}")
    mk.raw_execute(db_url, engine, f"UPDATE audit_anchor SET entries = entries - 1, last_id = {before.id}, "
                                   f"last_hash = '{before.hash}'")
    assert any("seal" in p for p in problems(sessions))


def test_a_forged_trust_row_is_not_trusted(db_url, engine, sessions, station, mk):
    mk.raw_execute(db_url, engine, "INSERT INTO trusted_files (kind, sha256, name, added_by, added_at, mac) VALUES "
                                   "('model', '" + "77" * 32 + "', 'evil', 'root-admin', '2026-01-01 00:00:00', '')")
    with sessions() as s:
        trusted = TrustRepo.trusted(s, "model")
    assert "77" * 32 not in trusted and "cd" * 32 in trusted


def test_trust_is_per_database_and_audited(sessions, station, tmp_path):
    """Issue 12.2: 'no users yet' means this database; a throwaway database trusts nothing here."""
    from db import open_database, session_factory

    other = open_database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with session_factory(other).begin() as s:
            assert TrustRepo.add(s, None, "model", "12" * 32, "evil.onnx")  # fresh install: the local admin
    finally:
        other.dispose()
    with sessions() as s:
        assert "12" * 32 not in TrustRepo.trusted(s, "model")
        entry = next(e for e in AuditRepo.list(s) if e.action == "model.trust")
    assert entry.actor == "root-admin" and entry.target == "model:" + "cd" * 32
    with sessions.begin() as s, pytest.raises(PermissionDenied):  # users exist: no sign-in, no trust
        TrustRepo.add(s, None, "model", "12" * 32, "evil.onnx")
    with sessions.begin() as s, pytest.raises(PermissionDenied, match="operator on this station"):
        TrustRepo.add(s, signed("otto", Role.ADMIN), "model", "12" * 32, "evil.onnx")


def test_user_changes_check_the_actor_from_the_table_and_are_audited(sessions, station):
    """Issue 12.7: UserRepo checks the acting user's stored role itself."""
    for call in (lambda s: UserRepo.add(s, signed("otto", Role.ADMIN), "eve", "admin", "x"),
                 lambda s: UserRepo.add(s, None, "eve", "admin", "x"),
                 lambda s: UserRepo.set_role(s, signed("otto", Role.OPERATOR), "otto", "admin"),
                 lambda s: UserRepo.set_role(s, signed("qc-anna", Role.QC), "otto", "qc"),
                 lambda s: UserRepo.set_password(s, signed("otto", Role.OPERATOR), "root-admin", "scrypt$mine")):
        with sessions.begin() as s, pytest.raises(PermissionDenied):
            call(s)
    with sessions.begin() as s:
        UserRepo.set_role(s, BOSS(), "otto", "qc")
    with sessions.begin() as s:  # the role change ended otto's sessions (issue 24): a new sign-in's
        again = issue(station_key(), Actor("otto", Role.QC), epoch=session_epoch(s, "otto"))
        UserRepo.set_password(s, again, "otto", "scrypt$own")
    with sessions() as s:
        actions = [(e.actor, e.action, e.target) for e in AuditRepo.list(s, limit=3)]
        assert AuditRepo.verify(s).ok
    assert actions[:2] == [("otto", "user.password", "user:otto"), ("root-admin", "user.role", "user:otto")]
    with sessions.begin() as s, pytest.raises(PermissionDenied, match="only admin"):
        UserRepo.set_role(s, BOSS(), "root-admin", "qc")


def test_the_only_admin_locked_out_recovers_once_with_the_code(engine):
    """Issue 12.8: five failures lock the admin; the recovery code unlocks once, audited."""
    from db import session_factory

    sessions = session_factory(engine)
    with sessions.begin() as s:
        _, code = create_user(s, None, "boss", Role.ADMIN, "password1")
    assert code
    for _ in range(5):
        with pytest.raises(PermissionDenied):
            sign_in(sessions, "boss", "guessing")
    with pytest.raises(PermissionDenied, match="locked"):
        sign_in(sessions, "boss", "password1")
    with pytest.raises(PermissionDenied, match="recovery code"):
        recover(sessions, "boss", "not-the-code", "password2")
    new_code = recover(sessions, "boss", code, "password2")
    assert new_code != code
    who = sign_in(sessions, "boss", "password2")
    assert (who.name, who.role) == ("boss", Role.ADMIN)
    with pytest.raises(PermissionDenied, match="recovery code"):
        recover(sessions, "boss", code, "password3")  # each code works once
    with sessions() as s:
        actions = [e.action for e in AuditRepo.list(s)]
        assert AuditRepo.verify(s).ok
    assert actions.count("user.recover") == 1 and actions.count("user.recover.failed") == 2
    later = dt.datetime.now(dt.timezone.utc)
    with sessions() as s:
        assert not UserRepo.get(s, "boss").locked(later)


def test_a_broken_user_seal_refuses_the_sign_in(db_url, engine, sessions, mk):
    with sessions.begin() as s:
        create_user(s, None, "boss", Role.ADMIN, "password1")
        create_user(s, signed("boss", Role.ADMIN), "otto", Role.OPERATOR, "password2")
    mk.raw_execute(db_url, engine, "UPDATE users SET role = 'admin' WHERE name = 'otto'")
    with pytest.raises(PermissionDenied, match="changed outside Inspector"):
        sign_in(sessions, "otto", "password2")


def test_a_missing_key_file_is_no_ok(sessions, station, monkeypatch, tmp_path):
    """Deleting the key (or checking from another data folder) cannot make a database pass."""
    import inspector.core.integrity as integrity

    monkeypatch.setenv("INSPECTOR_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(integrity, "_cache", {})
    assert any("sealing key" in p and "missing" in p for p in problems(sessions))
    assert not (tmp_path / "elsewhere" / integrity.KEY_FILE).exists(), "verify never makes a key"


def test_rows_of_an_older_database_are_sealed_at_the_upgrade(tmp_path, mk):
    """A database written before 0003 (users, parts, an audit entry) verifies after the upgrade, and an edit
    made after it shows."""
    import sqlite3

    from alembic import command
    from sqlalchemy import create_engine

    from db import open_database, session_factory
    from db.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    old.dispose()
    con = sqlite3.connect(tmp_path / "old.db")
    con.executescript("""
        insert into users (name, role, password_hash, failed_attempts, created_at)
            values ('boss', 'admin', 'scrypt$x', 0, '2026-01-02 03:04:05.000000');
        insert into model_versions (name, path, sha256, classes, created_at)
            values ('m', 'm.onnx', 'ab', '[]', '2026-01-02 03:04:05.000000');
        insert into runs (source, recipe, recipe_name, model_id, station, mode, started_at)
            values ('folder', '{}', 'default', 1, 'st', 'part', '2026-01-02 03:04:05.000000');
        insert into inspections (run_id, seq, created_at, verdict, reasons, latency_ms, frame_name, model_sha256)
            values (1, 0, '2026-01-02 03:04:06.000000', 'FAIL', '["scratch"]', 3.0, 'a.jpg', 'ab');
    """)
    con.commit()
    con.close()
    engine = open_database(url)  # backs up, upgrades to head and seals what is there
    try:
        sessions = session_factory(engine)
        with sessions() as s:
            assert AuditRepo.verify(s).ok, AuditRepo.verify(s).problems
        mk.raw_execute(url, engine, "UPDATE inspections SET verdict = 'PASS'")
        assert any("inspection 1" in p for p in problems(sessions))
    finally:
        engine.dispose()

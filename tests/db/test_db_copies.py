"""Issue 24, second round: two copies of one database share a ``seal_id``, so rows moved between them, a copy used
in the original's place, or a database rolled back to an older state all verified OK. The data folder now keeps its
own sealed record of each database it writes (``db.head_record``): where it lives and the last audit entry written;
each of these is reported at the station's start and by ``audit verify`` until an admin adopts the database."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Table, delete, insert, select, update

from db import AuditRepo, TrustRepo, open_database, session_factory
from db.head_record import adopt, problem
from db.schema import AuditAnchor, AuditEntry, TrustedFile
from inspector.core.auth import Role
from tests.conftest import signed, staff


def BOSS():  # noqa: N802 - a badge
    return signed("root-admin", Role.ADMIN)


def _rows(engine, model) -> list[dict]:
    table: Table = model.__table__
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(select(table).order_by(table.c.id))]


def _station(url: str):
    engine = open_database(url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        staff(s)
        TrustRepo.add(s, BOSS(), "model", "a1" * 32, "a.onnx")
    return engine, sessions


def _verify(sessions) -> tuple[bool, tuple[str, ...]]:
    with sessions() as s:
        r = AuditRepo.verify(s)
    return r.ok, r.problems


@pytest.fixture
def copies(tmp_path):
    """The live database A and B, a file copy of it in another folder, both used through this data folder."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    engine, _ = _station(f"sqlite:///{tmp_path / 'a' / 'inspector.db'}")
    engine.dispose()
    shutil.copy(tmp_path / "a" / "inspector.db", tmp_path / "b" / "inspector.db")
    a = open_database(f"sqlite:///{tmp_path / 'a' / 'inspector.db'}")
    b = open_database(f"sqlite:///{tmp_path / 'b' / 'inspector.db'}")
    yield a, b
    a.dispose()
    b.dispose()


def test_a_copy_notices_it_is_a_copy(copies, caplog):
    from inspector.core.config import Config
    from station.core import station_trust

    a, b = copies
    with session_factory(b)() as s:
        said = problem(s)
    assert said is not None and said.startswith("this database is a copy")
    ok, found = _verify(session_factory(b))
    assert not ok and any(p.startswith("this database is a copy") for p in found)
    with caplog.at_level(logging.WARNING):
        station_trust(session_factory(b), Config(station={"name": "cell-1"}))
    assert any(r.getMessage().startswith("this database is a copy") for r in caplog.records)
    assert _verify(session_factory(a)) == (True, ())  # the original is the one the data folder knows


def test_rows_moved_from_a_copy_into_the_original_are_reported(copies):
    """The attack: trust a model in the copy, then move its row, its audit entry and the chain's end into the
    original, which has written nothing since the copy. Before: verify OK, the model trusted."""
    a, b = copies
    before = max(r["id"] for r in _rows(a, AuditEntry))
    with session_factory(b).begin() as s:
        TrustRepo.add(s, BOSS(), "model", "ee" * 32, "evil.onnx")
    with a.begin() as c:
        for r in _rows(b, TrustedFile):
            if r["sha256"] == "ee" * 32:
                c.execute(insert(TrustedFile.__table__).values(**r))
        for r in _rows(b, AuditEntry):
            if r["id"] > before:
                c.execute(insert(AuditEntry.__table__).values(**r))
        c.execute(delete(AuditAnchor.__table__))
        for r in _rows(b, AuditAnchor):
            c.execute(insert(AuditAnchor.__table__).values(**r))
    ok, found = _verify(session_factory(a))
    assert not ok and any("was written in a copy of it" in p for p in found), found


@pytest.mark.parametrize("restore", ["rows", "file"])
def test_a_database_rolled_back_is_reported_until_an_admin_adopts_it(db_url, tmp_path, restore):
    if restore == "file" and not db_url.startswith("sqlite"):
        pytest.skip("a file backup is SQLite's; on PostgreSQL the rows are put back")
    engine, sessions = _station(db_url)
    try:
        saved = {m: _rows(engine, m) for m in (AuditEntry, AuditAnchor, TrustedFile)}
        if restore == "file":
            engine.dispose()
            path = Path(db_url.removeprefix("sqlite:///"))
            shutil.copy(path, tmp_path / "backup.db")
            engine = open_database(db_url)
            sessions = session_factory(engine)
        with sessions.begin() as s:  # later work: a model trusted, then the database goes back to before it
            TrustRepo.add(s, BOSS(), "model", "b2" * 32, "b.onnx")
        if restore == "file":
            engine.dispose()
            path.unlink()
            shutil.copy(tmp_path / "backup.db", path)
            engine = open_database(db_url)
            sessions = session_factory(engine)
        else:
            with engine.begin() as c:
                for m, rows in saved.items():
                    c.execute(delete(m.__table__))
                    if rows:
                        c.execute(insert(m.__table__), rows)
        ok, found = _verify(sessions)
        assert not ok and any(("older than what this data folder last saw" in p or "a backup was restored" in p)
                              for p in found), found
        with sessions.begin() as s:  # the record is not moved by the rolled-back database's own writes
            TrustRepo.add(s, BOSS(), "model", "c3" * 32, "c.onnx")
        assert not _verify(sessions)[0]
        with sessions.begin() as s:
            assert adopt(s, BOSS()) is not None
        assert _verify(sessions) == (True, ())
        with sessions() as s:
            assert any(e.action == "record.adopt" and e.actor == "root-admin" for e in AuditRepo.list(s))
    finally:
        engine.dispose()


def test_adopting_needs_an_admin(db_url):
    engine, sessions = _station(db_url)
    try:
        from inspector.core.errors import PermissionDenied

        with sessions.begin() as s, pytest.raises(PermissionDenied):
            adopt(s, signed("qc-anna", Role.QC))
        with sessions.begin() as s:
            s.execute(update(AuditAnchor.__table__).values(entries=AuditAnchor.entries))  # nothing changed
            assert adopt(s, BOSS()) is None  # nothing disagreed
    finally:
        engine.dispose()


def test_the_command_line_adopts_with_an_admins_sign_in(copies, monkeypatch, capsys):
    from db.accounts import create_user
    from inspector.cli import main

    a, b = copies
    with session_factory(a).begin() as s:
        create_user(s, BOSS(), "root", Role.ADMIN, "root-password-1")
    url = str(b.url)
    assert main(["audit", "verify", "--db", url]) == 1  # the copy
    assert main(["audit", "adopt", "--db", url]) != 0  # no sign-in: refused
    monkeypatch.setenv("INSPECTOR_PASSWORD", "root-password-1")
    with session_factory(b).begin() as s:  # the user made in A after the copy is not in B: make it there too
        create_user(s, BOSS(), "root", Role.ADMIN, "root-password-1")
    assert main(["audit", "adopt", "--db", url, "--user", "root"]) == 0
    assert "adopted" in capsys.readouterr().out
    assert main(["audit", "verify", "--db", url]) == 0
    assert main(["audit", "verify", "--db", str(a.url)]) == 1  # now A is the one the data folder does not follow

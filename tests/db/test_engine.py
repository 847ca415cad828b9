"""Opening databases: schema at head, SQLite pragmas, migrations with a backup, and the errors a user sees."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import db.migrate
from db import make_engine, open_database, session_factory
from db.migrate import head_revision
from db.schema import Base
from inspector.core.errors import StorageError

TABLES = {"model_versions", "runs", "inspections", "detections", "reviews", "audit_log", "audit_anchor", "users"}


def test_fresh_database_is_created_at_head(db_url, engine):
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        assert TABLES <= set(inspect(conn).get_table_names())
        anchor = conn.execute(text("SELECT entries, last_hash FROM audit_anchor")).one()
    assert tuple(anchor) == (0, "0" * 64)


def test_migration_matches_the_orm_tables(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    assert diff == []


def test_reopening_at_head_changes_nothing(db_url, engine, tmp_path):
    engine.dispose()
    again = open_database(db_url)
    again.dispose()
    assert not list(tmp_path.rglob("*.bak-*"))


def test_sqlite_pragmas_are_set_on_every_connection(sqlite_url, tmp_path):
    engine = open_database(sqlite_url)
    try:
        assert (tmp_path / "data").is_dir(), "the database's folder is created"
        with engine.connect() as a, engine.connect() as b:  # two pooled connections, both configured
            for conn in (a, b):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


@pytest.mark.parametrize("url, expected", [
    ("not a url", "not a valid URL"),
    ("mysql://bob:hunter2@host/db", "does not support"),
    ("sqlite:///{tmp}/afile/sub/x.db", "Cannot create the folder"),  # a file where a folder should be
    ("sqlite:///{tmp}/garbage.db", "not an Inspector database"),     # not an SQLite file at all
    ("sqlite:///{tmp}", "is a folder"),
    ("sqlite:////proc/inspector-test/x.db", "Cannot create the folder"),
    ("postgresql://bob:hunter2@127.0.0.1:1/nodb?connect_timeout=2", "cannot reach the database server"),
])
def test_unopenable_urls_raise_one_clear_sentence(tmp_path, url, expected):
    (tmp_path / "afile").write_text("I am a file")
    (tmp_path / "garbage.db").write_bytes(b"this is not a database, just some bytes" * 200)
    url = url.format(tmp=tmp_path)
    with pytest.raises(StorageError) as err:
        open_database(url)
    message = str(err.value)
    assert expected in message
    assert "hunter2" not in message, "the password is masked"
    assert "\n" not in message


def test_read_only_file_is_refused(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    path = tmp_path / "ro.db"
    open_database(f"sqlite:///{path}").dispose()
    path.chmod(0o444)
    (tmp_path / "ro.db-wal").unlink(missing_ok=True)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StorageError, match="read-only|cannot be opened"):
            open_database(f"sqlite:///{path}")
    finally:
        tmp_path.chmod(0o755)


def test_a_database_locked_by_another_program_is_refused_after_retrying(sqlite_url):
    open_database(sqlite_url).dispose()
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        with pytest.raises(StorageError, match="locked by another program"):
            open_database(sqlite_url, lock_wait_s=0.3)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_lock_released_while_retrying_is_waited_for(sqlite_url):
    open_database(sqlite_url).dispose()
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, lambda: other.execute("ROLLBACK"))
    timer.start()
    try:
        open_database(sqlite_url, lock_wait_s=3.0).dispose()
    finally:
        timer.join()
        other.close()


def test_a_foreign_database_is_not_touched(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    with pytest.raises(StorageError, match="no Inspector schema version"):
        open_database(f"sqlite:///{path}")


def test_a_newer_schema_is_refused(sqlite_url):
    open_database(sqlite_url).dispose()
    con = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    con.execute("UPDATE alembic_version SET version_num = 'f00d'")
    con.commit()
    con.close()
    with pytest.raises(StorageError, match="newer Inspector"):
        open_database(sqlite_url)


NEXT_REVISION = '''
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("operator", sa.String(100), nullable=True))


def downgrade():
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("operator")
'''


def test_an_older_file_is_backed_up_then_upgraded(sqlite_url, tmp_path, monkeypatch, mk):
    engine = open_database(sqlite_url)
    with session_factory(engine)() as s, s.begin():
        from db import ModelRepo, RunRepo

        model = ModelRepo.get_or_create(s, "m", "m.pt", "cd" * 32, ["a"])
        RunRepo.start(s, "cam", "{}", "r", model.id)
    engine.dispose()
    old_head = head_revision()
    # a newer Inspector: the same migrations plus one more
    newer = tmp_path / "migrations"
    shutil.copytree(db.migrate.MIGRATIONS, newer, ignore=shutil.ignore_patterns("__pycache__"))
    (newer / "versions" / "9999_operator.py").write_text(NEXT_REVISION.format(head=head_revision()))
    monkeypatch.setattr(db.migrate, "MIGRATIONS", newer)

    engine = open_database(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"
            assert "operator" in {c["name"] for c in inspect(conn).get_columns("runs")}
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 1
    finally:
        engine.dispose()
    backup = Path(sqlite_url.removeprefix("sqlite:///")).with_name(f"inspector.db.bak-{old_head}")
    assert backup.is_file()
    con = sqlite3.connect(backup)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == (old_head,)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    con.close()


def test_make_engine_builds_nothing_at_import_and_checks_the_url(sqlite_url):
    engine = make_engine(sqlite_url)  # no schema: open_database does that
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        engine.dispose()

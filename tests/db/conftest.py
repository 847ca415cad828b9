"""Fixtures for the persistence tests: real SQLite files in tmp_path; PostgreSQL when one is reachable.

Tests that take the ``db_url`` fixture run on SQLite and, when ``INSPECTOR_TEST_PG_URL`` is set, on
PostgreSQL too (each test starts from an empty schema there). Unset, the PostgreSQL cases are skipped;
set, an unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from db import ModelRepo, RunRepo, open_database, session_factory
from inspector.core.types import Detection, Detections, Inspection, Verdict

PG_ENV = "INSPECTOR_TEST_PG_URL"
T0 = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.timezone.utc)


@functools.cache
def pg_unreachable() -> str | None:
    """None when the PostgreSQL test server answers, else why the PostgreSQL tests are skipped."""
    url = os.environ.get(PG_ENV)
    if not url:
        return f"no PostgreSQL test server: set {PG_ENV}=postgresql://user:password@host:port/db to run these"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary)"
    try:
        eng = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1),
                            connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
    except Exception as e:
        return f"PostgreSQL test server at {PG_ENV} is not reachable: {str(e).strip().splitlines()[0]}"
    return None


def require_pg(reason: str) -> None:
    """Skip without a PostgreSQL test server; where ``INSPECTOR_TEST_PG_URL`` is set (CI), a broken server fails."""
    if os.environ.get(PG_ENV):
        pytest.fail(reason)
    pytest.skip(reason)


def _pg(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))


def backend_url(kind: str, folder: Path) -> Iterator[str]:
    """A URL for an empty database of this kind: a file in ``folder``, or a fresh PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'data' / 'inspector.db'}"
        return
    reason = pg_unreachable()
    if reason:
        require_pg(reason)
    base = os.environ[PG_ENV]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    eng = _pg(base)
    with eng.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with eng.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from backend_url(request.param, tmp_path)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like ``db_url``, shared by a module's read-only tests."""
    yield from backend_url(request.param, tmp_path_factory.mktemp("shared"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'inspector.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = open_database(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def start_run(sessions: sessionmaker[Session]) -> int:
    with sessions() as s, s.begin():
        model = ModelRepo.get_or_create(s, "tiny", "/models/tiny.pt", "ab" * 32, ["scratch", "dent", "hole"])
        return RunRepo.start(s, "folder:parts", '{"conf": 0.5}', "default", model.id, "line-1", "folder").id


@pytest.fixture
def run_id(sessions: sessionmaker[Session]) -> int:
    return start_run(sessions)


def box(label: str = "scratch", cls: int = 0, conf: float = 0.9) -> Detection:
    return Detection(cls=cls, label=label, confidence=conf, x1=1.0, y1=2.0, x2=11.0, y2=12.0)


def inspection(seq: int, verdict: Verdict = Verdict.PASS, labels: tuple[str, ...] = (), seconds: float | None = None,
               image: object = None) -> Inspection:
    """A finished inspection ``seconds`` (default: seq) after T0 with one box per label."""
    dets = None if verdict is Verdict.NOT_INSPECTED else Detections(tuple(box(lb) for lb in labels), 64, 48,
                                                                     inference_ms=3.0, model_sha256="ab" * 32)
    return Inspection(seq=seq, source="folder:parts", verdict=verdict, reasons=(f"because {seq}",), detections=dets,
                      started_at=T0 + dt.timedelta(seconds=seq if seconds is None else seconds), latency_ms=4.5,
                      frame_name=f"part_{seq:04d}.png", model_sha256="ab" * 32, image=image)  # type: ignore[arg-type]


def raw_execute(url: str, engine: Engine, sql: str) -> None:
    """Tamper with the database behind the repositories' back (sqlite3 itself for SQLite files)."""
    if url.startswith("sqlite"):
        import sqlite3

        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        con.execute(sql)
        con.commit()
        con.close()
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)


class Helpers:
    """Builders for the tests, handed out by the ``mk`` fixture (conftest modules are not imported by name)."""

    T0 = T0
    box = staticmethod(box)
    start_run = staticmethod(start_run)
    inspection = staticmethod(inspection)
    raw_execute = staticmethod(raw_execute)


@pytest.fixture(scope="session")
def mk() -> type[Helpers]:
    return Helpers


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    """A fresh schema on the PostgreSQL test server; skips with the reason when there is none."""
    yield from backend_url("postgresql", tmp_path)


PG_BIN = Path(os.environ.get("INSPECTOR_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb + pg_ctl in a temporary folder, a free port), so that
    stopping it disturbs no other test. As root the server runs as the ``postgres`` user."""

    def __init__(self) -> None:
        import tempfile

        self.folder = Path(tempfile.mkdtemp(prefix="inspector-pg-"))
        self.folder.chmod(0o777)  # the postgres user writes here
        self.data = self.folder / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres:s3cret@127.0.0.1:{self.port}/postgres"
        self._pg(["initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"])
        self.start()

    def _pg(self, args: list[str], check: bool = True) -> None:
        import subprocess

        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {r.stderr.strip() or r.stdout.strip()}")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg(["pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.folder / "log"), "-w", "start"])

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: the server dies as in a power cut (connections cut, no goodbye)."""
        self._pg(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def close(self) -> None:
        import shutil

        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL server; skipped without its binaries unless INSPECTOR_TEST_PG_URL is set (CI)."""
    if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "pg_ctl").is_file():
        require_pg(f"no PostgreSQL server binaries in {PG_BIN} (install postgresql or set INSPECTOR_TEST_PG_BIN)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        require_pg("psycopg2 is not installed (pip install psycopg2-binary)")
    server = PrivatePostgres()
    try:
        yield server
    finally:
        server.close()


def hold_lock(db: Path, seconds: float) -> threading.Thread:
    """Another program holding the SQLite file's write lock for ``seconds`` (a real second connection)."""
    ready = threading.Event()

    def hold() -> None:
        con = sqlite3.connect(db, isolation_level=None)
        con.execute("BEGIN EXCLUSIVE")
        ready.set()
        time.sleep(seconds)
        con.execute("ROLLBACK")
        con.close()

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert ready.wait(5)
    return t

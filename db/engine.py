"""Building the database engine (SQLite by default, PostgreSQL by URL) and opening a database at schema head.

Called from a composition root (``inspector/cli``, ``ui/app.py``), never at import time.
"""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from db.failures import is_locked, mask_url, parse_url, sqlite_path, storage_error
from inspector.core.errors import StorageError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
WRITING = "inspector_writing"  # execution option: an SQLite transaction that takes the write lock at its BEGIN


def make_engine(url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, echo: bool = False) -> Engine:
    """An engine for ``url``, checked by one connection. SQLite files get WAL, ``synchronous=FULL``,
    foreign keys and a busy timeout on every connection; their folder is created.

    Raises StorageError (one sentence naming the URL, password masked) when the URL is invalid, the
    driver is missing or the database cannot be opened.
    """
    u = parse_url(url)
    backend = u.get_backend_name()
    try:
        if backend == "sqlite":
            engine = _sqlite_engine(u, url, busy_timeout_ms, echo)
        elif backend == "postgresql":
            u = _pg_driver(u)
            # a server that is down should be reported in seconds, not after the TCP time-out
            args = {} if "connect_timeout" in u.query else {"connect_timeout": 10}
            engine = create_engine(u, pool_pre_ping=True, echo=echo, connect_args=args, hide_parameters=True)
        else:
            raise StorageError(f"The database address {mask_url(url)} uses {backend!r}, which Inspector does not "
                               "support; use sqlite:///path/to/inspector.db or postgresql://user:password@host/name.")
    except (NoSuchModuleError, ImportError) as e:
        raise StorageError(f"The database address {mask_url(url)} needs a driver that is not installed ({e}); "
                           "install it (for PostgreSQL: pip install psycopg2-binary) or use an SQLite file.") from e
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as e:
        engine.dispose()
        raise storage_error(e, url, "Opening the database") from e
    log.info("database engine for %s", mask_url(url))
    return engine


def _pg_driver(u: URL) -> URL:
    """A bare ``postgresql://`` means psycopg2 (the project's driver; SQLAlchemy 2.1 would pick psycopg 3)."""
    if u.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is not None:
        return u.set(drivername="postgresql+psycopg2")
    return u


def _sqlite_engine(u: URL, url: str, busy_timeout_ms: int, echo: bool) -> Engine:
    path = sqlite_path(url)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": busy_timeout_ms / 1000}}
    if path is None:  # in memory: one shared connection, or every session sees an empty database
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        _prepare_file(path, url)
    engine = create_engine(u, echo=echo, hide_parameters=True, **kwargs)
    _configure_sqlite(engine, busy_timeout_ms, in_memory=path is None)
    return engine


def _prepare_file(path: Path, url: str) -> None:
    where = mask_url(url)
    if path.is_dir():
        raise StorageError(f"The database path {where} is a folder, not a file; name a file such as "
                           f"{path / 'inspector.db'}.")
    try:
        path.absolute().parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"Cannot create the folder for the database {where} ({e.strerror or e}); "
                           "choose a location that exists and can be written.") from e


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling starts no transaction before a SELECT; take control so that
        # a read and the write that depends on it share one transaction (SQLAlchemy's documented recipe).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal" and not in_memory:
                log.warning("SQLite refused WAL mode (journal_mode=%s); is the file on a network share?", mode)
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # a write transaction takes the lock first (waiting up to the busy timeout) so that no commit of the
        # line can slip between its reads and its writes; a deferred one would fail at once ("database is locked")
        writing = conn.get_execution_options().get(WRITING)
        if writing and not in_memory:
            wait_s = busy_timeout_ms / 1000 if writing is True else min(float(writing), busy_timeout_ms / 1000)
            try:
                begin_immediate(conn.connection.driver_connection, wait_s, busy_timeout_ms)
            except sqlite3.OperationalError as e:
                raise OperationalError("BEGIN IMMEDIATE", None, e) from e
        else:
            conn.exec_driver_sql("BEGIN")


POLL_S = 0.002


def begin_immediate(dbapi_conn: Any, wait_s: float, busy_timeout_ms: int) -> None:
    """``BEGIN IMMEDIATE`` on an SQLite connection, tried every few milliseconds for up to ``wait_s``.

    SQLite's own busy handler sleeps up to 100 ms between tries; a line that commits back to back holds the
    write lock most of the time and frees it for a millisecond or two, so such sparse tries could miss every gap
    for seconds. Raises the driver's "database is locked" after ``wait_s``.
    """
    deadline = time.monotonic() + wait_s
    dbapi_conn.execute("PRAGMA busy_timeout = 1")
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as e:
                text = str(e).lower()
                if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                    raise
                time.sleep(POLL_S)
    finally:
        dbapi_conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")


def for_writing(engine: Engine, wait_s: float | None = None) -> Engine:
    """``engine`` whose transactions are write transactions: on SQLite ``BEGIN IMMEDIATE``, which waits for the
    write lock (up to ``wait_s``, at most the busy timeout) instead of failing when another writer commits
    between a read and a write."""
    want: float | bool = True if wait_s is None else max(0.001, float(wait_s))
    if engine.get_execution_options().get(WRITING) == want:
        return engine
    return engine.execution_options(**{WRITING: want})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for repositories; callers own the transaction with ``with session.begin():``."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def open_database(url: str, *, lock_wait_s: float = 3.0, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """``make_engine`` and then bring the schema to alembic head (backing up an SQLite file first).

    A database locked by another program is retried for about ``lock_wait_s`` seconds, then refused
    with StorageError.
    """
    from db.migrate import upgrade_to_head  # alembic is only needed here

    engine = make_engine(url, busy_timeout_ms=busy_timeout_ms)
    try:
        if engine.dialect.name == "sqlite":
            _wait_for_write_lock(engine, url, lock_wait_s, busy_timeout_ms)
        upgrade_to_head(engine, url)
    except StorageError:
        engine.dispose()
        raise
    except SQLAlchemyError as e:
        engine.dispose()
        raise storage_error(e, url, "Opening the database") from e
    return engine


def open_read_only(url: str) -> Engine:
    """An SQLite file that this process cannot write (a read-only copy, a write-protected medium), opened to be
    read as it is: no lock, no WAL change, no migration. StorageError when it is not at the schema this version
    writes (it cannot be upgraded in place) or cannot be read."""
    from urllib.parse import quote

    from db.migrate import current_revision, head_revision

    path = sqlite_path(url)
    if path is None:
        raise StorageError(f"Only an SQLite file can be opened read-only, not {mask_url(url)}.")
    uri = f"sqlite:///file:{quote(path.absolute().as_posix())}?mode=ro&immutable=1&uri=true"
    engine = create_engine(uri, hide_parameters=True)
    try:
        rev = current_revision(engine)
    except SQLAlchemyError as e:
        engine.dispose()
        raise storage_error(e, url, "Opening the database read-only") from e
    if rev != head_revision():
        engine.dispose()
        raise StorageError(f"The read-only database {mask_url(url)} is at schema {rev or 'none'}, not {head_revision()}"
                           "; copy it to a folder that can be written and open it there to upgrade it.")
    log.info("database %s opened read-only", mask_url(url))
    return engine


def _wait_for_write_lock(engine: Engine, url: str, wait_s: float, busy_timeout_ms: int) -> None:
    """Check that the file can be written, trying every few milliseconds while another program (or this
    station's line) holds the lock, for up to ``wait_s`` seconds."""
    raw = engine.raw_connection()
    conn: Any = raw.driver_connection
    try:
        begin_immediate(conn, wait_s, busy_timeout_ms)
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as e:
        err = OperationalError("BEGIN IMMEDIATE", None, e)
        if not is_locked(err):
            raise storage_error(err, url, "Opening the database") from e
        raise StorageError(f"The database {mask_url(url)} is locked by another program; close the "
                           "other Inspector (or the program holding it) and try again.") from e
    finally:
        raw.close()

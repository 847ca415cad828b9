"""Every write to the database goes through ``write``: one transaction, retried with the same back-off while
another writer holds the lock (SQLite), then one clear StorageError sentence, never a traceback on screen.

SQLite answers "database is locked" at once, without waiting for its busy timeout, when a transaction that has
read must write after another connection committed; only running the whole transaction again helps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.engine import for_writing
from db.failures import is_locked, mask_url, storage_error

log = logging.getLogger(__name__)

T = TypeVar("T")

LOCK_WAIT_S = 20.0
FIRST_DELAY_S = 0.05
MAX_DELAY_S = 0.8


def url_of(sessions: sessionmaker[Session]) -> str:
    bind: Any = sessions.kw.get("bind")
    return bind.url.render_as_string(hide_password=False) if bind is not None else "(unknown)"


def retrying(fn: Callable[[], T], url: str, doing: str, wait_s: float | None = None) -> T:
    """``fn()``, run again with back-off (50 ms doubling to 0.8 s) while the database is locked, for up to
    ``wait_s`` seconds; any database failure then becomes StorageError ("<doing> failed: ...")."""
    deadline = time.monotonic() + (LOCK_WAIT_S if wait_s is None else wait_s)
    delay = FIRST_DELAY_S
    while True:
        try:
            return fn()
        except SQLAlchemyError as e:
            if is_locked(e) and time.monotonic() + delay < deadline:
                log.info("%s: the database %s is locked; trying again in %.2f s", doing, mask_url(url), delay)
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            err = storage_error(e, url, doing)
            log.info("%s", err, exc_info=True)  # the log file keeps the traceback; the caller shows the sentence
            raise err from e


def write(sessions: sessionmaker[Session], fn: Callable[[Session], T], doing: str, wait_s: float | None = None) -> T:
    """``fn(session)`` in one write transaction (on SQLite ``BEGIN IMMEDIATE``: it holds the write lock from its
    first statement, so keep slow work such as password hashing outside ``fn``), committed; retried as a whole
    while the database is locked."""
    bind: Any = sessions.kw.get("bind")
    writing = for_writing(bind, LOCK_WAIT_S if wait_s is None else wait_s) if bind is not None else None

    def once() -> T:
        with (sessions(bind=writing) if writing is not None else sessions()) as s, s.begin():
            return fn(s)
    return retrying(once, url_of(sessions), doing, wait_s)

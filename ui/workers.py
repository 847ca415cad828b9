"""Run a function on a thread pool; its result or its exception comes back as a queued signal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from inspector.core.errors import InspectorError

log = logging.getLogger(__name__)


def operator_message(e: BaseException) -> str:
    """One sentence for the screen: an InspectorError says what to do; anything else points to the log."""
    if isinstance(e, InspectorError):
        return str(e)
    if isinstance(e, OSError):
        return f"{e.strerror or e} ({e.filename or 'file system'}); check the disk and the folder's permissions."
    from db.failures import safe_text

    return f"Unexpected error: {type(e).__name__}: {safe_text(e)}. The details are in the log file."


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(object)  # the exception


class Job(QRunnable):
    """``fn()`` on a pool thread; ``signals.done(result)`` or ``signals.failed(exception)`` afterwards."""

    def __init__(self, fn: Callable[[], Any], name: str = "job") -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python keeps it alive until it reported (see run_job)
        self.fn = fn
        self.name = name
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as e:  # noqa: BLE001 - every failure becomes a signal the window shows
            if isinstance(e, InspectorError):
                log.warning("%s failed: %s", self.name, e)
            else:
                log.exception("%s failed", self.name)
            self.signals.failed.emit(e)
            return
        self.signals.done.emit(result)


_alive: set[Job] = set()


def run_job(pool: QThreadPool, fn: Callable[[], Any], on_done: Callable[[Any], None],
            on_failed: Callable[[BaseException], None], name: str = "job") -> Job:
    """Start ``fn`` on ``pool``; the callbacks run in the thread that called this (the GUI thread)."""
    job = Job(fn, name)
    _alive.add(job)

    def done(result: Any) -> None:
        _alive.discard(job)
        on_done(result)

    def failed(e: BaseException) -> None:
        _alive.discard(job)
        on_failed(e)

    job.signals.done.connect(done)
    job.signals.failed.connect(failed)
    pool.start(job)
    return job


class CountedJobs:
    """Jobs one widget starts on its pool, counted while in flight (its ``idle`` and the tests read it)."""

    def __init__(self, pool: QThreadPool) -> None:
        self.pool = pool
        self.in_flight = 0

    def run(self, fn: Callable[[], Any], done: Callable[[Any], None], failed: Callable[[BaseException], None],
            name: str) -> None:
        self.in_flight += 1

        def ok(result: Any) -> None:
            self.in_flight -= 1
            done(result)

        def bad(e: BaseException) -> None:
            self.in_flight -= 1
            failed(e)

        run_job(self.pool, fn, ok, bad, name)

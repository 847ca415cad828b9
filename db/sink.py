"""The one database writer of a run: images first (temporary name, fsync, rename), then the rows in one
transaction. Nothing is half-written: when the transaction fails, the images it would have named go again.

With an outbox (a database server), a write whose connection fails goes to the local outbox instead, images
kept, and the backlog is forwarded in order before anything newer once the server answers (``db.outbox``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from db.engine import for_writing
from db.failures import free_mb, mask_url
from db.outbox import Outbox, unreachable
from db.repositories.inspections import InspectionRepo, Rows, inspection_rows
from db.writes import retrying, url_of
from inspector.core.errors import StorageError
from inspector.core.types import Inspection

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_RETRY_WAIT_S = 30.0
IMAGE_WRITERS = 8  # a batch's images are written (and fsynced) at once: each waits on the disk, not on the CPU


class ImageStore(Protocol):
    """Saves an inspection's frame durably and returns its path relative to ``root`` (None: not kept)."""

    root: Path

    def save(self, inspection: Inspection) -> str | None: ...

    def delete(self, rel: str) -> None: ...


class WriteBlocked(Exception):
    """A database call did not come back within its deadline (or an earlier one still has not)."""


class Deadline:
    """Database calls on one helper thread, each with a deadline, so that a database that hangs (a server whose
    processes are stopped answers nothing, and no TCP time-out fires while its host is up; a file locked by
    another program) never holds the line's writer unseen. One call at a time: while one has not come back,
    the next is refused at once. The helper is a daemon thread: a call hung for good never holds the exit."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._since: float | None = None  # when the call now running began

    def blocked_s(self) -> float:
        """How long the call now running is past its deadline (0: none is)."""
        since = self._since
        return 0.0 if since is None else max(0.0, time.monotonic() - since - self.seconds)

    def call(self, fn: Callable[[], T], keep_waiting: bool = False) -> T:
        """``fn()`` on the helper thread. Past the deadline: WriteBlocked, or with ``keep_waiting`` a warning and
        the wait goes on (for a database with no outbox, whose own lock wait bounds it, ``db.writes``)."""
        if self._since is not None:
            raise WriteBlocked(f"an earlier write to {self.what} has not come back for "
                               f"{time.monotonic() - self._since:.0f} s")
        done = threading.Event()
        box: dict[str, Any] = {}
        self._since = time.monotonic()
        self._jobs.put((fn, box, done))
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="inspector-db-call", daemon=True)
            self._thread.start()
        if not done.wait(self.seconds):
            if not keep_waiting:
                raise WriteBlocked(f"{self.what} has not answered for {self.seconds:g} s")
            log.warning("%s has not taken the records for %g s (locked by another program?): the station is not "
                        "ready and parts wait in a bounded queue; pictures a camera sends meanwhile are counted as "
                        "gaps", self.what, self.seconds)
            done.wait()
            log.warning("%s takes records again after %.1f s", self.what, time.monotonic() - box["began"])
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _work(self) -> None:
        while True:
            fn, box, done = self._jobs.get()
            box["began"] = self._since or time.monotonic()
            try:
                box["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                box["error"] = e
            finally:
                self._since = None
                done.set()


class DbWriter:
    """Writes finished inspections of one run; used by the runner's single writer thread."""

    def __init__(self, session_factory: sessionmaker[Session], run_id: int, image_store: ImageStore | None,
                 outbox: Outbox | None = None, retry_every_s: float = 2.0, recipe_sha256: str = "",
                 deadline_s: float = 5.0) -> None:
        self.session_factory = session_factory
        self.run_id = run_id
        self.recipe_sha256 = recipe_sha256
        self.image_store = image_store
        self.outbox = outbox
        self.retry_every_s = retry_every_s
        self._url = url_of(session_factory)
        self._engine = for_writing(session_factory.kw["bind"])
        self._next_try = 0.0
        self._wait_s = retry_every_s
        self._pool = None  # image writers, made at the first batch with more than one image
        self.deadline = Deadline(deadline_s, f"the database {mask_url(self._url)}")

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` (a database write) under the write deadline: WriteBlocked past it with an outbox; without
        one the wait goes on, bounded by the lock wait of ``db.writes``, with the station shown not ready."""
        return self.deadline.call(fn, keep_waiting=self.outbox is None)

    def blocked_s(self) -> float:
        """How long the record has been blocked past its deadline (0: it is not)."""
        return self.deadline.blocked_s()

    def backlog(self) -> int:
        """Records waiting in the outbox for the database server."""
        return self.outbox.size() if self.outbox is not None else 0

    def record(self, inspection: Inspection) -> None:
        """The ``Sink`` verb: one inspection, committed before returning."""
        self.write_batch([inspection])

    def write_batch(self, inspections: list[Inspection]) -> list[int]:
        """Save the images, then insert all rows in one transaction and commit; returns the new ids.

        Raises StorageError (disk full, read-only folder, locked database, ...) with nothing left behind.
        Returns 0 as the id of an inspection that went to the outbox (it has no id on the server yet).
        """
        if not inspections:
            return []
        paths = self._save_images(inspections)
        entries = [inspection_rows(self.run_id, insp, path, uuid.uuid4().hex, self.recipe_sha256)
                   for insp, path in zip(inspections, paths, strict=True)]
        if self.outbox is not None and self.outbox.size() and not self.forward():
            return self._to_outbox(entries)  # after what waits already: the order is kept
        try:
            return self.call(lambda: retrying(lambda: self._commit(entries), self._url,
                                              f"Saving {len(inspections)} inspection record(s)"))
        except WriteBlocked as e:  # a server that hangs: like one that cannot be reached (outbox only here)
            self._later()
            if not self.outbox.size():  # type: ignore[union-attr]
                log.warning("%s; records go to the outbox until it answers", e)
            return self._to_outbox(entries)
        except Exception as e:
            if self.outbox is not None and unreachable(e):
                self._later()
                return self._to_outbox(entries)
            # The transaction did not commit: the images go, so that no file is left without its row.
            self._delete([p for p in paths if p])
            raise

    def _commit(self, entries: list[Rows]) -> list[int]:
        # a Core connection in its own transaction: the same statements and seals as through a Session, with
        # less work per part (this runs once per batch on the line's writer thread)
        with self._engine.begin() as conn:
            return InspectionRepo.add_rows(conn, entries, info=self.session_factory.kw.get("info") or {})

    def _to_outbox(self, entries: list[Rows]) -> list[int]:
        assert self.outbox is not None
        first = self.outbox.size() == 0
        self.outbox.put(self.run_id, entries)
        if first:
            log.warning("the database %s cannot be reached: records wait in the outbox %s and are sent when it "
                        "answers again", mask_url(self._url), self.outbox.path)
        return [0] * len(entries)

    def forward(self, force: bool = False) -> bool:
        """Send the outbox's backlog (once its back-off has passed, or now with ``force``); True when it is empty."""
        if self.outbox is None or not self.outbox.size():
            return True
        if not force and time.monotonic() < self._next_try:
            return False
        try:
            self.call(lambda: self.outbox.forward(self.session_factory))  # type: ignore[union-attr]
        except WriteBlocked as e:
            self._later()
            log.info("%s; %d record(s) wait in the outbox", e, self.outbox.size())
            return False
        except SQLAlchemyError as e:
            self._later()
            if not unreachable(e):
                raise StorageError(f"Forwarding the outbox {self.outbox.path} to {mask_url(self._url)} failed "
                                   f"({type(e).__name__}); see the log for details.") from e
            log.info("the database %s still cannot be reached; %d record(s) wait", mask_url(self._url),
                     self.outbox.size())
            return False
        self._wait_s = self.retry_every_s
        return True

    def _later(self) -> None:
        """The next try after a back-off (``retry_every_s`` doubling to 30 s), so that a server that cannot be
        reached at all (a connection time-out each try) does not hold the line's writer most of the time."""
        self._next_try = time.monotonic() + self._wait_s
        self._wait_s = min(self._wait_s * 2, MAX_RETRY_WAIT_S)

    def _save_images(self, inspections: list[Inspection]) -> list[str | None]:
        store = self.image_store
        if store is None:
            return [None] * len(inspections)
        if len(inspections) > 1 and self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(IMAGE_WRITERS, thread_name_prefix="inspector-images")
        # every image of the batch durably written (each fsynced and renamed) before any row names it; the
        # writes overlap, so a batch waits for the disk about once, not once per image
        futures = [self._pool.submit(store.save, insp) for insp in inspections] if len(inspections) > 1 else None
        paths: list[str | None] = []
        failed: tuple[Inspection, BaseException] | None = None
        for i, insp in enumerate(inspections):
            try:
                paths.append(futures[i].result() if futures else store.save(insp))
            except (OSError, StorageError) as e:
                paths.append(None)
                failed = failed or (insp, e)
        if failed is None:
            return paths
        self._delete([p for p in paths if p])
        insp, e = failed
        if isinstance(e, StorageError):
            raise e
        free = free_mb(Path(store.root))
        room = f" ({free:.1f} MB free there)" if free is not None else ""
        reason = getattr(e, "strerror", None) or str(e)
        raise StorageError(f"Saving the image of part {insp.seq} in {store.root} failed ({reason}){room}; "
                           "free some space or choose a writable image folder.") from e

    def _delete(self, paths: list[str]) -> None:
        if not paths or self.image_store is None:
            return
        for rel in paths:
            try:
                self.image_store.delete(rel)
            except OSError:
                log.warning("could not remove the image %s of a failed write", rel, exc_info=True)
        log.info("removed %d image(s) of a write that did not commit", len(paths))

"""Shadow mode: a challenger model judges a share of the live parts beside the active model, on its own thread.

The active model's verdict is committed, shown and sent to the line first; only then (from the writer's
``on_committed``) is a copy of the part offered here, without waiting: when the challenger falls behind, parts are
skipped (counted), never queued against the line. The challenger's verdicts go to ``shadow_results`` only: never
a part's verdict, never to the line's outputs. Its thread asks the OS for a lower priority where it can, and its
model runs on one inference thread (the core the line does not need).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from inspector.pipeline import Pipeline
from inspector.types import Frame, Inspection

log = logging.getLogger(__name__)

FLUSH_S = 1.0
FLUSH_PARTS = 32


def lower_thread_priority(niceness: int = 10) -> bool:
    """Lower the calling thread's scheduling priority where the OS allows it per thread (Linux); False elsewhere."""
    setprio = getattr(os, "setpriority", None)
    if setprio is None or not hasattr(threading, "get_native_id"):
        return False
    try:
        setprio(os.PRIO_PROCESS, threading.get_native_id(), niceness)  # on Linux: this thread only
        return True
    except OSError:
        return False


class Picker:
    """Every part whose running count crosses a multiple of 1/share: ``share`` of the parts, evenly spread."""

    def __init__(self, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"expected a share in (0, 1], got {share!r}")
        self.share, self.n = share, 0

    def take(self) -> bool:
        before = int(self.n * self.share)
        self.n += 1
        return int(self.n * self.share) > before


class Shadow:
    """The challenger beside a running station. ``offer`` is called on the writer thread and never blocks."""

    def __init__(self, sessions, station: str, run_id: int, pipeline_factory: Callable[[], Pipeline], share: float,
                 queue_size: int = 4) -> None:
        self.sessions, self.station, self.run_id = sessions, station, run_id
        self.pipeline_factory = pipeline_factory
        self.picker = Picker(share)
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inspector-shadow", daemon=True)
        self.judged = 0
        self.skipped = 0  # picked while the challenger was busy: not judged
        self.lost = 0  # judged, but the database did not take them
        self.lost_warned = False
        self.error: Exception | None = None
        self.model_sha = ""
        self._ready = threading.Event()  # parts are picked once the challenger is loaded

    def start(self) -> None:
        self._thread.start()

    def offer(self, items: list[tuple[int, Inspection]]) -> None:
        """Committed parts (id, inspection): a share of those with a picture is handed over, if there is room."""
        if not self._ready.is_set():
            return
        for iid, insp in items:
            if insp.image is None or not self.picker.take():
                continue
            try:
                self._queue.put_nowait((iid, insp))
            except queue.Full:
                self.skipped += 1

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the part in hand, record what was judged, stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        lowered = lower_thread_priority()
        try:
            pipeline = self.pipeline_factory()  # the challenger is loaded in the thread that runs it
        except Exception as e:  # noqa: BLE001 - a challenger that cannot load must not touch the line
            self.error = e
            log.error("shadow model not started: %s", e)
            return
        self.model_sha = getattr(pipeline.detector, "sha256", "")
        self._ready.set()
        log.info("shadow model %s judges a %.0f%% share of the parts%s", self.model_sha[:12],
                 self.picker.share * 100, " at a lower priority" if lowered else "")
        pending: list[dict] = []
        last_flush = time.monotonic()
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                iid, insp = self._queue.get(timeout=0.2)
            except queue.Empty:
                iid = None
            if iid is not None:
                pending.append(self._judge(pipeline, iid, insp))
            if pending and (len(pending) >= FLUSH_PARTS or time.monotonic() - last_flush > FLUSH_S
                            or self._stop.is_set()):
                self._flush(pending)
                pending, last_flush = [], time.monotonic()
        if pending:
            self._flush(pending)

    def _judge(self, pipeline: Pipeline, iid: int, active: Inspection) -> dict:
        frame = Frame(active.image, active.seq, active.source, time.time(), active.frame_name)
        mine = pipeline.inspect(frame)
        self.judged += 1
        return {"station": self.station, "run_id": self.run_id, "inspection_id": iid or None, "seq": active.seq,
                "created_at": dt.datetime.now(dt.timezone.utc), "model_sha256": mine.model_sha256 or self.model_sha,
                "verdict": mine.verdict.value, "active_sha256": active.model_sha256,
                "active_verdict": active.verdict.value, "reasons": list(mine.reasons),
                "latency_ms": round(mine.latency_ms, 2)}

    def _flush(self, rows: list[dict]) -> None:
        from db import ShadowRepo
        from db.writes import write

        try:
            write(self.sessions, lambda s: ShadowRepo.add(s, rows), "Recording shadow verdicts", wait_s=2.0)
            self.lost_warned = False
        except Exception as e:  # noqa: BLE001 - shadow records are expendable; the line's are not
            self.lost += len(rows)
            if not self.lost_warned:  # once per outage
                log.warning("%d shadow verdict(s) not recorded (shadow verdicts are not kept for later): %s",
                            len(rows), e)
            self.lost_warned = True

"""Shadow mode: a challenger model judges a share of the live parts beside the active model, in a process of its own.

The active model's verdict is committed, shown and sent to the line first; only then (from the writer's
``on_committed``) is a copy of the part offered here, without waiting: when the challenger falls behind, parts are
skipped (counted), never queued against the line. The challenger's verdicts go to ``shadow_results`` only: never
a part's verdict, never to the line's outputs.

The challenger runs in its own process (started with ``spawn``, as on Windows) at the lowest priority the OS
gives, every thread of it, once its model is loaded: the cores go to the line first and the challenger gets what
the line leaves (a thread in the station's own process shared Python's lock with the line and cost it 14 % of
its parts/s). It loads only the file whose hash the station checked.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import queue
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from inspector.core.config import ModelConfig, QualityConfig, RecipeConfig
from inspector.core.types import Inspection

log = logging.getLogger(__name__)

FLUSH_S = 1.0
FLUSH_PARTS = 32
STOP_WAIT_S = 10.0


def lower_process_priority() -> bool:
    """Every thread of this process to the lowest priority (Linux: each thread's nice 19, and the threads made
    later inherit it; elsewhere with POSIX: the process; Windows: below normal). False where it cannot."""
    if sys.platform == "win32":
        try:
            import ctypes

            below_normal = 0x00004000
            k32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            return bool(k32.SetPriorityClass(k32.GetCurrentProcess(), below_normal))
        except Exception:  # noqa: BLE001 - a priority is a courtesy, not a requirement
            return False
    setprio = getattr(os, "setpriority", None)
    if setprio is None:
        return False
    tasks = Path("/proc/self/task")
    try:
        tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]
    except OSError:
        tids = [0]
    done = False
    for tid in tids:
        try:
            setprio(os.PRIO_PROCESS, tid, 19)
            done = True
        except OSError:
            continue
    return done


@dataclass(frozen=True)
class ChallengerSpec:
    """What the challenger's process needs to build its pipeline (picklable): the model as configured (one
    inference thread), the recipe and quality gate of the line, and the hash the station checked."""

    model: ModelConfig
    sha256: str
    recipe: RecipeConfig
    quality: QualityConfig
    min_side_px: int
    timeout_s: float


def _build(spec: ChallengerSpec):
    from inspector.core.errors import ModelError
    from inspector.detection.card import load_card
    from inspector.detection.detector import load_detector
    from inspector.detection.registry import ModelRegistry
    from inspector.detection.tiling import tiled_for_recipe
    from inspector.inspection.pipeline import Pipeline, TimedDetector
    from inspector.inspection.rules import Recipe

    recipe = Recipe(spec.recipe)
    detector = load_detector(spec.model, recipe.detector_floor, ModelRegistry({spec.sha256: "shadow challenger"}))
    # only the very file the station checked: one swapped since then, even for another trusted (shipped) one, is
    # refused (the detector carries the hash of the bytes it loaded)
    if detector.sha256 != spec.sha256:
        raise ModelError(f"refusing to load {detector.path}: it is not the file the station checked for the shadow "
                         "model (it changed after the run started)")
    recipe.check_classes(detector.classes, Path(spec.model.path or "").name)
    # tile by tile where the recipe tiles, as the station judges (refused in one sentence for a model not trained so)
    path = Path(detector.path)
    judged = tiled_for_recipe(TimedDetector(detector, spec.timeout_s), recipe.cfg, load_card(path), path.name)
    return Pipeline(judged, recipe, spec.quality, spec.min_side_px)


def _orphaned() -> NoReturn:
    """End the challenger at once when its station is gone: nothing of it is kept, and an orderly exit (the
    runtime's tear-down, which trims the heap) took minutes of CPU at the lowest priority on a busy machine."""
    os._exit(0)


def challenger_main(spec: ChallengerSpec, jobs, results) -> None:
    """The challenger's process: load, report ready, judge the parts handed over until ``None``."""
    from inspector.core.types import Frame

    try:
        pipeline = _build(spec)
    except Exception as e:  # noqa: BLE001 - reported to the station as one sentence, the line goes on
        results.put(("error", f"{type(e).__name__}: {e}"))
        return
    parent = multiprocessing.parent_process()
    if parent is not None and not parent.is_alive():  # the station was killed while the model loaded
        _orphaned()
    lowered = lower_process_priority()  # after loading: a slow start would only delay the challenger's first part
    results.put(("ready", pipeline.detector.sha256, lowered))
    while True:
        try:
            item = jobs.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():  # the station was killed: no orphan left behind
                _orphaned()
            continue
        if item is None:
            break
        token, seq, source, name, image = item
        try:
            mine = pipeline.inspect(Frame(image, seq, source, time.time(), name))
            results.put(("judged", token, mine.verdict.value, list(mine.reasons), round(mine.latency_ms, 2),
                         mine.model_sha256))
        except Exception as e:  # noqa: BLE001 - one part the challenger could not judge is not recorded
            results.put(("failed", token, f"{type(e).__name__}: {e}"))
    results.put(("done",))


class Picker:
    """Each part is taken with probability ``share``, independently: ``share`` of the parts on average, never a
    fixed period, so that on a periodic line (a multi-cavity mould, an index table) the challenger sees every
    position and not always the same one. ``rng``: a seeded ``random.Random`` for tests."""

    def __init__(self, share: float, rng: random.Random | None = None) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"expected a share in (0, 1], got {share!r}")
        self.share, self.n, self.taken = share, 0, 0
        self.rng = rng or random.SystemRandom()

    def take(self) -> bool:
        self.n += 1
        took = self.share >= 1 or self.rng.random() < self.share
        self.taken += took
        return took


class Shadow:
    """The challenger beside a running station. ``offer`` is called on the writer thread and never blocks."""

    def __init__(self, sessions, station: str, run_id: int, spec: ChallengerSpec, share: float,
                 queue_size: int = 4) -> None:
        self.sessions, self.station, self.run_id = sessions, station, run_id
        self.picker = Picker(share)
        ctx = multiprocessing.get_context("spawn")  # as on Windows: no fork of a process with running threads
        self._jobs = ctx.Queue(maxsize=queue_size)
        self._results = ctx.Queue()
        self._process = ctx.Process(target=challenger_main, args=(spec, self._jobs, self._results),
                                    name="inspector-shadow", daemon=True)
        self._thread = threading.Thread(target=self._run, name="inspector-shadow", daemon=True)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[int, Inspection]] = {}  # token -> (id, the active model's part)
        self._token = 0
        self.judged = 0
        self.skipped = 0  # picked while the challenger was busy: not judged
        self.lost = 0  # judged, but the database did not take them
        self.lost_warned = False
        self.error: Exception | str | None = None
        self._done = False  # the challenger said it had finished the parts handed over
        self.model_sha = ""
        self.lowered = False
        self._ready = threading.Event()  # parts are picked once the challenger is loaded

    def start(self) -> None:
        """Start the challenger's process (once; a second call does nothing)."""
        if self._thread.is_alive() or self._process.pid is not None:
            return
        if sys.platform.startswith("linux"):
            # a process inherits the nice value of the thread that starts it (per thread on Linux): started from a
            # thread at the lowest priority, the challenger's imports and model load take only what the line leaves
            starter = threading.Thread(target=self._start_lowered, name="inspector-shadow-start", daemon=True)
            starter.start()
            starter.join()
        else:
            self._process.start()
        self._thread.start()

    def _start_lowered(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # this helper thread only
        except OSError:
            pass
        self._process.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the challenger is loaded and judging (False: not within ``timeout``, or it failed)."""
        return self._ready.wait(timeout) and self.error is None

    def offer(self, items: list[tuple[int, Inspection]]) -> None:
        """Committed parts (id, inspection): a share of those with a picture is handed over, if there is room."""
        if not self._ready.is_set() or self._stop.is_set() or self.error is not None:
            return
        for iid, insp in items:
            if insp.image is None or not self.picker.take():
                continue
            with self._lock:
                self._token += 1
                token = self._token
                self._waiting[token] = (iid, insp)
            try:
                self._jobs.put_nowait((token, insp.seq, insp.source, insp.frame_name, insp.image))
            except queue.Full:
                with self._lock:
                    self._waiting.pop(token, None)
                self.skipped += 1

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        """Let the challenger finish the parts handed over, record what was judged, stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout + 2)
        if self._process.is_alive():
            self._process.join(1.0)
        terminated = self._process.is_alive()
        if terminated:
            self._process.terminate()
            self._process.join(2.0)
        if not (self._done or terminated or self.error is not None) and self._process.exitcode not in (0, None):
            self._ended()  # it ended by itself just before the stop (killed, say), unnoticed until now
        for q in (self._jobs, self._results):
            q.cancel_join_thread()
            q.close()

    def _run(self) -> None:
        pending: list[dict] = []
        last_flush = time.monotonic()
        stop_sent: float | None = None
        while True:
            if self._stop.is_set() and stop_sent is None:
                stop_sent = time.monotonic()
                try:
                    self._jobs.put(None, timeout=1.0)
                except queue.Full:  # the challenger is stuck or gone: stop() tells which
                    break
            try:
                msg = self._results.get(timeout=0.2)
            except queue.Empty:
                msg = None
                if not self._process.is_alive() and self._results.empty():
                    if stop_sent is None and self.error is None:  # an end after the stop: stop() tells which
                        self._ended()
                    break
                if stop_sent is not None and time.monotonic() - stop_sent > STOP_WAIT_S:
                    break
            if msg is not None:
                if msg[0] == "done":
                    self._done = True
                    break
                row = self._message(msg)
                if row is not None:
                    pending.append(row)
            if pending and (len(pending) >= FLUSH_PARTS or time.monotonic() - last_flush > FLUSH_S):
                self._flush(pending)
                pending, last_flush = [], time.monotonic()
        if pending:
            self._flush(pending)

    def _ended(self) -> None:
        self.error = f"the challenger's process ended (exit code {self._process.exitcode})"
        log.error("shadow model stopped: %s; the line goes on without it", self.error)

    def _message(self, msg: tuple) -> dict | None:
        kind = msg[0]
        if kind == "ready":
            self.model_sha, self.lowered = msg[1], bool(msg[2])
            self._ready.set()
            log.info("shadow model %s judges a %.0f%% share of the parts%s", self.model_sha[:12],
                     self.picker.share * 100, " at the lowest priority" if self.lowered else "")
            return None
        if kind == "error":
            self.error = msg[1]
            log.error("shadow model not started: %s", msg[1])
            return None
        with self._lock:
            waiting = self._waiting.pop(msg[1], None)
        if waiting is None:
            return None
        if kind == "failed":
            log.warning("the shadow model could not judge a part: %s", msg[2])
            return None
        _, _, verdict, reasons, latency_ms, sha = msg
        iid, active = waiting
        self.judged += 1
        return {"station": self.station, "run_id": self.run_id, "inspection_id": iid or None, "seq": active.seq,
                "created_at": dt.datetime.now(dt.timezone.utc), "model_sha256": sha or self.model_sha,
                "verdict": verdict, "active_sha256": active.model_sha256, "active_verdict": active.verdict.value,
                "reasons": reasons, "latency_ms": latency_ms}

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

"""Threads around the pure pipeline: capture -> bounded queue -> inference -> bounded queue -> writer.

Decoding the next frame, inference on this one and writing the last one overlap; with a queued
detector (OpenVINO) the next frame already waits inside the runtime while Python finishes this one,
so the model's core never idles between frames. In ``part`` mode nothing is dropped (a full queue
slows the source); in ``stream`` mode the newest frame wins and every dropped frame is counted as
skipped. A source that waits to be read (a folder, a video) is read only as far ahead as the model can
take: its queue depth (at least two frames between the read and the verdict) plus ``read_ahead`` (one,
to ride out a moment the reading thread is not scheduled), so that a part's verdict never waits behind
a queue of parts read long before it (the latency counts from the read to the committed verdict).
Listeners hear about an inspection only after it is committed, so whatever was reported survives a crash.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from inspector.core.config import RunMode
from inspector.core.day import DayContext
from inspector.core.errors import InspectorError
from inspector.core.ports import BatchSink, FrameSource
from inspector.core.types import Frame, Gap, Inspection, Trigger, Verdict
from inspector.inspection.pipeline import Pipeline
from inspector.line.desk import TriggerDesk

log = logging.getLogger(__name__)

_END = object()


@dataclass(frozen=True)
class RunStats:
    frames: int
    inspected: int
    counts: dict[str, int]
    skipped: int
    elapsed_s: float
    fps: float
    camera_fps: float
    inference_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    first_verdict_s: float | None
    outbox: int = 0  # records waiting for the database server (store-and-forward), set by the station
    setup: str = ""  # the inference configuration running and whether ``inspector tune`` chose it, set by the station
    record_blocked_s: float = 0.0  # how long the record has been blocked past its write deadline, set by the station

    def status_line(self) -> str:
        """The live metrics in one line (status bar, log)."""
        waiting = f", {self.outbox} record(s) waiting for the database" if self.outbox else ""
        if self.record_blocked_s:
            waiting += f", the record BLOCKED for {self.record_blocked_s:.0f} s past its deadline: not ready"
        return (f"camera {self.camera_fps:.1f} fps, inspected {self.fps:.1f}/s, skipped "
                f"{self.skipped / self.elapsed_s:.1f}/s, inference {self.inference_ms:.1f} ms, "
                f"latency p50 {self.latency_p50_ms:.0f} ms p99 {self.latency_p99_ms:.0f} ms{waiting}")


@dataclass
class _Meter:
    started: float = field(default_factory=time.perf_counter)
    frames_read: int = 0
    committed: int = 0
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {v.value: 0 for v in Verdict})
    infer_ms: deque = field(default_factory=lambda: deque(maxlen=50))
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    first_verdict: float | None = None
    ready_at: float | None = None
    ended_at: float | None = None  # the writer's last commit: the figures stop there


class Runner:
    """Runs a source through a pipeline into a sink on three threads; listeners get committed results."""

    def __init__(self, source: FrameSource, pipeline_factory: Callable[[], Pipeline], sink: BatchSink,
                 mode: RunMode = RunMode.PART, queue_size: int = 8, max_frames: int | None = None,
                 on_committed: Callable[[list[tuple[int, Inspection]]], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None, batch_max: int = 64,
                 desk: TriggerDesk | None = None, read_ahead: int = 1) -> None:
        self.source = source
        self.desk = desk  # triggered acquisition: a picture per trigger, none without one
        self.pipeline_factory = pipeline_factory
        self.sink = sink
        self.mode = mode
        self.max_frames = max_frames
        self.on_committed = on_committed
        self.on_error = on_error
        self.batch_max = batch_max
        self._frames: queue.Queue = queue.Queue(maxsize=queue_size)
        # a source that is read when we like (not live, not triggered) is paced: a token is taken before each
        # read and given back when that frame's verdict is out of the model; the inference thread makes the
        # tokens (the model's depth is known there) before the capture thread starts reading
        self._paced = not getattr(source, "live", False) and desk is None and mode == RunMode.PART
        self._read_ahead = max(0, read_ahead)
        self._room: threading.Semaphore | None = None
        self._results: queue.Queue = queue.Queue(maxsize=queue_size * 4)
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._ready = threading.Event()
        # a failed thread: what the others wait on from it will not come (a failed capture ends with
        # its frames inspected and written; a failed writer, nothing more can be stored)
        self._infer_down = threading.Event()
        self._writer_down = threading.Event()
        self._captured = threading.Event()  # the capture thread is done: no more pictures
        self._last_seq = 0
        self._meter = _Meter()
        self._lock = threading.Lock()
        self.error: Exception | None = None
        self._threads: list[threading.Thread] = []
        self.context = DayContext()  # stamped on each inspection as it is finished (inference thread)
        self._switch: tuple[DayContext, Callable[[], Pipeline] | None] | None = None
        self.on_swap: Callable[[Pipeline], None] | None = None  # on the inference thread, after a new pipeline

    # control -------------------------------------------------------------------------------
    def start(self) -> None:
        self._meter = _Meter()
        threads = [(self._capture, "capture"), (self._infer, "inference"), (self._write, "writer")]
        if self.desk is not None:
            threads.append((self._answer_due, "triggers"))
        for target, name in threads:
            down = {"inference": self._infer_down, "writer": self._writer_down}.get(name)
            t = threading.Thread(target=self._guard(target, down), name=f"inspector-{name}", daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        """Stop reading; what was read is still inspected and written."""
        self._stop.set()
        self._paused.clear()

    def replace_pipeline(self, pipeline: Pipeline) -> None:
        """Judge the parts not yet begun with ``pipeline`` (its model already loaded and warmed up).

        The same hand-over as ``switch`` (the day's context pending with it is kept): the parts already at the
        old model are finished by it first, so no part is ever judged by a half-loaded model, and each keeps
        the hash of the one that judged it.
        """
        with self._lock:
            context = self._switch[0] if self._switch is not None else self.context
        self.switch(context, lambda: pipeline)

    def pause(self, paused: bool = True) -> None:
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    def switch(self, context: DayContext, pipeline_factory: Callable[[], Pipeline] | None = None) -> None:
        """From the next part on, stamp ``context`` (and judge with a new pipeline when given: the model is
        built on the inference thread, after the parts already begun are finished with the old one)."""
        with self._lock:  # a new pipeline still pending is kept: a lot set just after a product switch
            pending = self._switch[1] if self._switch is not None else None
            self._switch = (context, pipeline_factory or pending)
        if not self.running:
            self._take_switch()

    def _take_switch(self) -> Callable[[], Pipeline] | None:
        with self._lock:
            pending, self._switch = self._switch, None
        if pending is None:
            return None
        self.context = pending[0]
        if pending[1] is not None:
            self.pipeline_factory = pending[1]
        return pending[1]

    def join(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if end is None else max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def ready(self) -> bool:
        """The model is loaded and nothing has failed."""
        return self._ready.is_set() and self.error is None

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the model is loaded (or loading failed, see ``error``)."""
        return self._ready.wait(timeout)

    def _guard(self, fn: Callable[[], None], down: threading.Event | None = None) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - every failure must reach the user, not die in a thread
                if down is not None:
                    down.set()  # the threads that wait on this one stop waiting
                if not isinstance(e, InspectorError):
                    log.exception("worker %s failed", threading.current_thread().name)
                else:
                    log.error("%s", e)
                with self._lock:
                    if self.error is None:
                        self.error = e
                self._ready.set()
                self._stop.set()
                if self.on_error:
                    self.on_error(e)
        return run

    # threads -------------------------------------------------------------------------------
    def _put_frame(self, frame: Frame) -> None:
        if self.mode == RunMode.STREAM and self.desk is None:  # a triggered picture is a part: never dropped
            while True:
                try:
                    self._frames.put_nowait(frame)
                    return
                except queue.Full:
                    try:
                        self._frames.get_nowait()
                        with self._lock:
                            self._meter.skipped += 1
                    except queue.Empty:
                        pass
        while not (self._stop.is_set() and self.error is not None):
            try:
                self._frames.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def _capture(self) -> None:
        self._ready.wait()
        try:
            if self.desk is not None:
                self._capture_triggered()
                return
            n = 0
            while not self._stop.is_set() and self.error is None:
                if self._paused.is_set():
                    time.sleep(0.05)
                    continue
                if self.max_frames is not None and n >= self.max_frames:
                    break
                if not self._take_room():
                    break
                frame = self.source.read()
                if frame is None:
                    break
                if isinstance(frame, Gap):  # a live source without pictures for now: counted there
                    self._give_room()
                    continue
                n += 1
                with self._lock:
                    self._meter.frames_read += 1
                self._put_frame(frame)
        finally:
            self.source.close()
            self._captured.set()
            if self.desk is None:  # with triggers, the triggers thread ends the frames after the last answer
                self._end_frames()

    def _take_room(self) -> bool:
        """Wait until the model has taken the frames read ahead (paced sources); False when the run stops."""
        if self._room is None:
            return True
        while not self._room.acquire(timeout=0.1):
            if self._stop.is_set() or self.error is not None:
                return False
        return True

    def _give_room(self) -> None:
        if self._room is not None:
            self._room.release()

    def _end_frames(self) -> None:
        while True:
            try:
                self._frames.put(_END, timeout=0.1)
                break
            except queue.Full:
                if self.error is not None:
                    break

    def _capture_triggered(self) -> None:
        """A picture per trigger: a folder or video gives its next picture; a live source keeps capturing and
        a trigger takes the first picture taken after it (never one from before it)."""
        assert self.desk is not None
        live = bool(getattr(self.source, "live", False))
        n = 0
        while not self._stop.is_set() and self.error is None:
            if self._paused.is_set():
                time.sleep(0.05)
                continue
            if self.max_frames is not None and n >= self.max_frames:
                break
            if live:
                frame = self.source.read()
                if frame is None:
                    break
                if isinstance(frame, Gap):
                    continue
                trig = self.desk.claim(frame.timestamp)
                wait_s = getattr(self.source, "pair_window_s", 0.0)  # a camera fired by its own input: its frame
                if trig is None and wait_s > 0:  # may come before the line's trigger does; paired by order
                    trig = self.desk.take(wait_s)
                if trig is None:
                    continue  # no part in front of the camera: not inspected, not counted
            else:
                trig = self.desk.take(0.05)
                if trig is None:
                    continue
                frame = self.source.read()
                if frame is None:
                    self._put_missed(trig, "the source has no more pictures")
                    break
                if isinstance(frame, Gap):
                    self._put_missed(trig, f"no picture: {frame.reason}")
                    continue
            n += 1
            self._last_seq = frame.seq
            with self._lock:
                self._meter.frames_read += 1
            self._put_frame(dataclasses.replace(frame, trigger=trig))

    def _put_missed(self, trig: Trigger, reason: str) -> None:
        """A trigger without a picture becomes a part NOT_INSPECTED with ``reason``: recorded and answered."""
        name = f"part {trig.part_id}" if trig.part_id else "triggered part"
        self._put_frame(Frame(None, self._last_seq, self.source.name, trig.at, name, reason, trigger=trig))

    def _answer_due(self) -> None:
        """Triggers refused or timed out become NOT_INSPECTED parts; once capture ends, those still waiting
        too, and then the frames end."""
        assert self.desk is not None
        try:
            self._ready.wait()
            while not self._captured.is_set():
                for trig, why in self.desk.due(0.05):
                    self._put_missed(trig, why)
        finally:
            why = "the run ended before a picture was taken" if self.error is None else f"not inspected: {self.error}"
            for trig, reason in self.desk.close(why):
                self._put_missed(trig, reason)
            self._end_frames()

    def _infer(self) -> None:
        try:
            pipeline = self.pipeline_factory()  # the model is created in the thread that uses it
            if self._paced:  # frames between the read and the verdict: what the model holds, and one decoding
                self._room = threading.Semaphore(max(2, pipeline.depth) + self._read_ahead)
        finally:
            self._meter.ready_at = time.perf_counter()
            self._ready.set()
        live = bool(getattr(self.source, "live", False))
        stream = bool(getattr(self.source, "stream", False))  # decoded video: smears are caught (live ones: always)
        depth = pipeline.depth
        jobs: deque = deque()  # begun, not finished: the model works on the oldest while the next waits

        def finish_oldest() -> None:
            job = jobs.popleft()
            insp = pipeline.finish(job)
            insp = dataclasses.replace(insp, day=self.context.stamp(insp.started_at))
            with self._lock:
                if insp.detections is not None:
                    self._meter.infer_ms.append(insp.detections.inference_ms)
            self._put_result((insp, job.frame.timestamp))
            self._give_room()  # its verdict is out: the source may read the next one

        while True:
            if jobs and len(jobs) >= depth:
                finish_oldest()
                continue
            if jobs:  # with a frame at the model, never sit waiting for the next one: finish this one; a paced
                # source's next frame is on its way (its read was allowed), so take it as it comes or finish the
                # oldest once it is done, whichever is first (the model keeps a frame queued either way)
                paced = self._room is not None and not jobs[0].ready()
                try:
                    item = self._frames.get(timeout=0.002) if paced else self._frames.get_nowait()
                except queue.Empty:
                    if not paced:
                        finish_oldest()
                    continue
            else:
                item = self._next_frame()
            if item is _END:
                break
            if self._switch is not None:  # a changeover or a promotion: the parts begun are finished as begun
                while jobs:
                    finish_oldest()
                factory = self._take_switch()
                if factory is not None:
                    pipeline = factory()
                    depth = pipeline.depth
                    if self.on_swap is not None:
                        self.on_swap(pipeline)
            jobs.append(pipeline.begin(item, live=live, stream=stream))
        while jobs:
            finish_oldest()
        self._put_result(_END)

    def _next_frame(self):
        """The next frame, waiting for it; the end marker once another thread has failed."""
        while True:
            try:
                return self._frames.get(timeout=0.1)
            except queue.Empty:
                if self.error is not None:
                    return _END

    def _put_result(self, item) -> None:
        """Hand over to the writer; if the writer has failed, nothing more can be stored: give up."""
        while not self._writer_down.is_set():
            try:
                self._results.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _write(self) -> None:
        done = False
        while not done:
            try:
                item = self._results.get(timeout=0.1)
            except queue.Empty:
                if self._infer_down.is_set():
                    break
                continue
            batch = []
            while True:
                if item is _END:
                    done = True
                    break
                batch.append(item)
                if len(batch) >= self.batch_max:
                    break
                try:
                    item = self._results.get_nowait()
                except queue.Empty:
                    break
            if not batch:
                continue
            ids = self.sink.write_batch([i for i, _ in batch])
            now = time.perf_counter()
            wall = time.time()
            with self._lock:
                m = self._meter
                if m.first_verdict is None:
                    m.first_verdict = now - m.started
                for insp, read_at in batch:  # latency: from the read (capture) to the committed verdict
                    m.committed += 1
                    m.counts[insp.verdict.value] += 1
                    m.latency_ms.append(max(0.0, wall - read_at) * 1000)
            if self.on_committed:
                self.on_committed(list(zip(ids, [i for i, _ in batch], strict=True)))
        with self._lock:
            self._meter.ended_at = time.perf_counter()

    # figures -------------------------------------------------------------------------------
    def stats(self) -> RunStats:
        with self._lock:
            m = self._meter
            elapsed = max((m.ended_at or time.perf_counter()) - (m.ready_at or m.started), 1e-9)
            lat = sorted(m.latency_ms)
            pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0.0  # noqa: E731
            return RunStats(
                frames=m.frames_read, inspected=m.committed, counts=dict(m.counts), skipped=m.skipped,
                elapsed_s=elapsed, fps=m.committed / elapsed, camera_fps=m.frames_read / elapsed,
                inference_ms=sum(m.infer_ms) / len(m.infer_ms) if m.infer_ms else 0.0,
                latency_p50_ms=pct(0.5), latency_p99_ms=pct(0.99), first_verdict_s=m.first_verdict)

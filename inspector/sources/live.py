"""Live sources (OpenCV cameras and streams) with their own capture loop: reads happen on a thread of their
own with a timeout, a dropped camera is reconnected with back-off, and a gap is reported as a frame without
an image (which becomes NOT_INSPECTED), never filled with a substitute picture."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import cv2
import numpy as np

from inspector.core.config import CameraConfig
from inspector.core.errors import SourceError
from inspector.core.types import Frame, Gap
from inspector.sources.decoding import native_messages, tidy

log = logging.getLogger(__name__)


class Capture(Protocol):
    """What a live source needs of cv2.VideoCapture (a fake camera implements the same)."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class CameraState:
    state: str  # "connecting", "running", "reconnecting", "stopped"
    attempt: int = 0
    reason: str = ""
    reconnects: int = 0
    stalls: int = 0
    uptime_s: float = 0.0  # since the source was opened, when this state was reported
    gaps: int = 0  # times without pictures (a drop, a stall, garbage): events, not parts
    gap_s: float = 0.0  # their total duration (those that have ended)
    # GenICam cameras (``camera``): which camera, its frame rate, frames the station lost (ids that skipped, a
    # full queue), buffers that came incomplete, software triggers without their frame
    device: str = ""
    fps: float = 0.0
    dropped: int = 0
    incomplete: int = 0
    timeouts: int = 0
    dropped_s: float = 0.0  # the time spans over which dropped pictures came (those that have ended)

    def per_hour(self, count: int) -> float:
        """A count as a rate per hour of this camera's time (0 before any time has passed)."""
        return count * 3600.0 / self.uptime_s if self.uptime_s > 0 else 0.0

    def health(self) -> str:
        """'2 reconnects, 1 stall in 0:41:07 (2.9/h, 1.5/h); 3 gaps, 12.5 s without pictures': the
        watchdog's counts and rates."""
        if not (self.reconnects or self.stalls or self.gaps or self.dropped or self.incomplete or self.timeouts):
            return "no reconnects or stalls"
        t = int(self.uptime_s)
        text = (f"{self.reconnects} reconnect{'s' * (self.reconnects != 1)}, {self.stalls} "
                f"stall{'s' * (self.stalls != 1)} in {t // 3600}:{t // 60 % 60:02d}:{t % 60:02d} "
                f"({self.per_hour(self.reconnects):.1f}/h, {self.per_hour(self.stalls):.1f}/h)")
        if self.gaps:
            text += f"; {self.gaps} gap{'s' * (self.gaps != 1)}, {self.gap_s:.1f} s without pictures"
        if self.dropped or self.incomplete or self.timeouts:
            text += (f"; {self.dropped} frames lost" + (f" (over {self.dropped_s:.1f} s)" if self.dropped_s else "")
                     + f", {self.incomplete} incomplete, {self.timeouts} triggers without a frame")
        return text


def opencv_opener(target: str | int, cfg: CameraConfig) -> Callable[[], Capture]:
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000)]

    def open_() -> Capture:
        if isinstance(target, int):
            return cv2.VideoCapture(target, cv2.CAP_ANY, params)
        # one decoder thread: what FFmpeg reports on stderr belongs to the picture just read (LiveSource hears it)
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, [*params, cv2.CAP_PROP_N_THREADS, 1])

    open_.decodes = not isinstance(target, int)  # type: ignore[attr-defined]
    return open_


class _Shot(NamedTuple):
    """A picture as the reader thread got it, with when (``time.time()``): a trigger takes only a picture
    taken after it, however long the picture then waited in the buffer."""

    image: np.ndarray
    at: float
    error: str | None = None  # the decoder reported this picture damaged (or predicted from a damaged one)


def _is_picture(item) -> bool:
    """Not a notice (``str``) nor the end (None)."""
    return item is not None and not isinstance(item, str)


class _NewestFrames:
    """The capture buffer of a live source: at most ``size`` pictures (a new one pushes out the oldest
    picture), and every notice (a ``str``) kept in its place, up to a bound a sane camera never reaches."""

    MAX_NOTICES = 1000

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._drops: tuple[int, float, float] | None = None  # pictures pushed out since taken: (n, first, last)

    def take_drops(self) -> tuple[int, float, float] | None:
        """Pictures pushed out unread since the last call (count, first and last ``time.monotonic()``)."""
        with self._cond:
            drops, self._drops = self._drops, None
            return drops

    def put(self, item) -> None:
        with self._cond:
            items = self._items
            if _is_picture(item):
                pictures = [i for i, x in enumerate(items) if _is_picture(x)]
                if len(pictures) >= self.size:
                    del items[pictures[0]]
                    now = time.monotonic()  # a picture the line could not take: counted, never silent
                    n, first, _ = self._drops or (0, now, now)
                    self._drops = (n + 1, first, now)
            elif len(items) >= self.MAX_NOTICES:
                items.popleft()
            items.append(item)
            self._cond.notify()

    def get(self, timeout: float):
        with self._cond:
            if not self._cond.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            return self._items.popleft()

    def empty(self) -> bool:
        with self._cond:
            return not self._items


class LiveSource:
    """A camera or stream with a watchdog: timed reads off the caller's thread, reconnect with back-off.

    A free-running camera's gap (a drop, a stall, a garbage frame) is an event: counted, reported in
    the camera state and logged with its duration when pictures come back; ``read`` returns a ``Gap``
    while it lasts (so the caller can stop), never a part. ``close`` ends the reader thread and waits
    for it, so that no thread is inside FFmpeg when the interpreter exits."""

    live = True

    def __init__(self, name: str, opener: Callable[[], Capture], cfg: CameraConfig,
                 on_state: Callable[[CameraState], None] | None = None) -> None:
        self.name = name
        self._opener = opener
        self.cfg = cfg
        self._on_state = on_state
        # a stream FFmpeg decodes: its complaints on stderr mark the picture damaged (and those predicted from it,
        # up to the next keyframe), as for a video file
        self._hear = bool(getattr(opener, "decodes", False))
        self._damaged = False
        self._frames = _NewestFrames(2)
        self._stop = threading.Event()
        self._seq = 0
        self.reconnects = 0
        self.stalls = 0
        self.gaps = 0
        self.gap_s = 0.0
        self.dropped = 0
        self.dropped_s = 0.0
        self._gap: tuple[float, str] | None = None  # (since, why) of the gap in progress
        self._overrun: tuple[int, float, float] | None = None  # pictures pushed out while the line lagged
        self._last_picture = time.monotonic()
        self._openers: list[threading.Thread] = []
        self._opened_at = time.monotonic()
        self.state = CameraState("connecting")
        cap = self._open()
        if cap is None:
            self._join_openers()
            raise SourceError(f"cannot open camera/stream {name} within {cfg.open_timeout_s:g} s.")
        self._thread = threading.Thread(target=self._loop, args=(cap,), name=f"capture {name}", daemon=True)
        self._thread.start()

    def _set_state(self, state: str, attempt: int = 0, reason: str = "") -> None:
        self.state = CameraState(state, attempt, reason, self.reconnects, self.stalls,
                                 time.monotonic() - self._opened_at, self.gaps, self.gap_s, dropped=self.dropped,
                                 dropped_s=self.dropped_s)
        if self._on_state:
            self._on_state(self.state)

    def _open(self) -> Capture | None:
        box: list = []
        lock = threading.Lock()
        gave_up = threading.Event()

        def open_() -> None:
            try:
                cap = self._opener()
            except Exception as e:  # noqa: BLE001 - a driver that raises is a camera that did not open
                log.warning("camera %s: opening failed (%s)", self.name, type(e).__name__)
                return
            with lock:
                if not gave_up.is_set():
                    box.append(cap)
                    return
            cap.release()  # opened after its caller gave up waiting: nobody will read it

        t = threading.Thread(target=open_, name=f"open {self.name}", daemon=True)
        self._openers = [o for o in self._openers if o.is_alive()] + [t]
        t.start()
        t.join(self.cfg.open_timeout_s)
        with lock:
            if not box:
                gave_up.set()
        if not box or not box[0].isOpened():
            if box:
                box[0].release()
            return None
        self._set_state("running")
        return box[0]

    def _put(self, item, error: str | None = None) -> None:
        """Newest wins among pictures: a full buffer drops its oldest picture, never a notice (a drop,
        a reconnect, garbage), which must reach the record even when the camera floods frames after it."""
        self._frames.put(_Shot(item, time.time(), error) if isinstance(item, np.ndarray) else item)

    def _read(self, cap: Capture) -> tuple[bool, np.ndarray | None, str | None]:
        """One read; with a stream FFmpeg decodes, also why the picture is damaged (or None)."""
        if not self._hear:
            ok, img = cap.read()
            return ok, img, None
        with native_messages(exclusive=False) as msgs:  # a read may block: other decoders are not held up
            ok, img = cap.read()
        if not ok:
            return ok, img, None
        if msgs:
            log.warning("stream %s: the decoder reported %s", self.name, " | ".join(tidy(x) for x in msgs.lines))
            self._damaged = True
            return ok, img, f"stream picture damaged: the decoder reported {msgs.first!r}"
        if self._damaged:
            prop = getattr(cv2, "CAP_PROP_FRAME_TYPE", None)
            get = getattr(cap, "get", None)
            kind = int(get(prop)) if prop is not None and get is not None else 0
            if kind != ord("I"):
                return ok, img, "stream picture predicted from a damaged one (no keyframe since)"
            self._damaged = False
        return ok, img, None

    def _loop(self, cap: Capture) -> None:
        try:
            while not self._stop.is_set():
                ok, img, error = self._read(cap)
                if self._stop.is_set():
                    break
                if ok and isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3 \
                        and img.dtype == np.uint8:
                    self._put(img, error)
                    continue
                if ok:  # garbage from the driver: report it, keep going
                    self._put(f"unusable frame from camera ({getattr(img, 'shape', type(img).__name__)})")
                    continue
                cap.release()
                cap = self._reconnect("camera dropped")
                if cap is None:
                    return
        finally:
            if cap is not None:
                cap.release()

    def _reconnect(self, why: str) -> Capture | None:
        delay = self.cfg.reconnect_initial_s
        attempt = 0
        self._put(f"{why}: reconnecting")
        while not self._stop.is_set():
            attempt += 1
            if self.cfg.max_reconnects and attempt > self.cfg.max_reconnects:
                self._set_state("stopped", attempt - 1, f"{why}; gave up after {attempt - 1} attempts")
                self._put(None)
                return None
            self._set_state("reconnecting", attempt, why)
            if self._stop.wait(delay):
                break
            cap = self._open()
            if cap is not None:
                self.reconnects += 1
                self._damaged = False  # a new stream starts at a keyframe
                self._set_state("running")
                return cap
            delay = min(delay * 2, self.cfg.reconnect_max_s)
        return None

    def _begin_gap(self, why: str) -> None:
        if self._gap is None:
            self.gaps += 1
            self._gap = (self._last_picture, why)
            log.warning("camera %s: no pictures (%s)", self.name, why)

    def _end_gap(self, now: float, how: str = "pictures again") -> None:
        if self._gap is None:
            return
        since, why = self._gap
        self._gap = None
        self.gap_s += now - since
        log.warning("camera %s: %s after a gap of %.1f s (%s)", self.name, how, now - since, why)
        st = self.state
        self._set_state(st.state, st.attempt, st.reason)

    def read(self) -> Frame | Gap | None:
        while True:
            if self.state.state == "stopped" and self._frames.empty():
                self._end_gap(time.monotonic(), "stopped")
                return None
            try:
                item = self._frames.get(self.cfg.read_timeout_s)
            except queue.Empty:
                self.stalls += 1
                self._begin_gap(f"camera stall: no frame for {self.cfg.read_timeout_s:g} s")
                st = self.state
                self._set_state(st.state, st.attempt, st.reason)  # the screen's stall count and rate
                return Gap(self._gap[1] if self._gap else "camera stall", self._last_picture)
            if item is None:
                self._end_gap(time.monotonic(), "stopped")
                return None
            if isinstance(item, str):
                self._begin_gap(item)
                continue
            now = time.monotonic()
            self._end_gap(now)
            self._count_overrun(self._frames.take_drops())
            self._last_picture = now
            seq = self._seq
            self._seq += 1
            return Frame(item.image, seq, self.name, item.at, f"frame {seq}", item.error)

    def _count_overrun(self, drops: tuple[int, float, float] | None) -> None:
        """Pictures the camera sent while the line could not take them (a record that blocks, a model slower
        than the camera) are counted with the time span they came over, logged when the line takes pictures
        again: never dropped silently."""
        if drops is not None:
            n, first, last = drops
            if self._overrun is None:
                log.warning("camera %s: pictures arrive while the line cannot take them; they are not inspected, "
                            "and counted", self.name)
                self._overrun = (n, first, last)
            else:
                self._overrun = (self._overrun[0] + n, self._overrun[1], last)
            self.dropped += n
        elif self._overrun is not None:
            n, first, last = self._overrun
            self._overrun = None
            self.dropped_s += last - first
            log.warning("camera %s: the line takes pictures again; %d picture(s) over %.1f s were not inspected",
                        self.name, n, last - first)
        else:
            return
        st = self.state
        self._set_state(st.state, st.attempt, st.reason)

    def close(self) -> None:
        """Stop the reader and wait for it (and for a reconnect still opening), bounded by the timeouts."""
        self._stop.set()
        limit = self.cfg.read_timeout_s + self.cfg.open_timeout_s + 2.0
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(limit)
            if thread.is_alive():
                log.warning("camera %s: the reader did not stop within %.0f s", self.name, limit)
        self._join_openers()
        self._count_overrun(self._frames.take_drops())
        self._count_overrun(None)
        self._end_gap(time.monotonic(), "closed")
        self._set_state("stopped", reason="closed")

    def _join_openers(self) -> None:
        for t in self._openers:
            t.join(self.cfg.open_timeout_s + 1.0)

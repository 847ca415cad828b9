"""Frame sources behind one protocol: image folder, video file, camera index, stream URL, synthetic.

Live sources (camera, stream) own their capture loop: reads happen on a thread of their own with a
timeout, a dropped camera is reconnected with back-off, and a gap is reported as a frame without an
image (which becomes NOT_INSPECTED), never filled with a substitute picture.
"""

from __future__ import annotations

import logging
import queue
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import cv2
import numpy as np

from inspector.core.config import CameraConfig
from inspector.core.errors import SourceError, SourceIncomplete
from inspector.core.types import Frame, Gap
from inspector.sources.decoding import (
    JPEG_MAGIC,
    ReadAhead,
    dct_reduction,
    decode_bytes,
    jpeg_size,
    native_messages,
    tidy,
)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".wmv", ".mpg", ".mpeg", ".webm"}
EXACT_COUNT_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi"}  # containers that index every frame


def decode_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """Read an image file; return (image, None) or (None, reason). Never raises for bad content."""
    img, err, _ = read_image(path)
    return img, err


def read_image(path: Path) -> tuple[np.ndarray | None, str | None, bytes | None]:
    """``decode_image``, plus the file's bytes when the file is a JPEG (so that it can be stored as is).

    Only a regular file is opened: a folder, a broken link or a FIFO named like an image is a reason,
    never a read that blocks."""
    img, err, jpeg, _ = read_scaled(path, None)
    return img, err, jpeg


def read_scaled(path: Path, target_hw: tuple[int, int] | None) -> tuple[
        np.ndarray | None, str | None, bytes | None, tuple[int, int] | None]:
    """``read_image`` for a model whose input is ``target_hw`` (h, w): a JPEG larger than it needs is decoded
    at 1/2, 1/4 or 1/8 (libjpeg's DCT scaling), never below the model's input; its file bytes are kept as
    they are. The fourth value is the picture's full (width, height) when the image is such a reduced decode."""
    special = _not_a_file(path)
    if special:
        return None, special, None, None
    try:
        raw = path.read_bytes()
    except OSError as e:
        return None, f"cannot read {path.name}: {e.strerror or e}", None, None
    if not raw:
        return None, f"empty file {path.name}", None, None
    size = jpeg_size(raw) if target_hw else None
    reduce = dct_reduction(size[0], size[1], target_hw) if size else 1
    img, err = decode_bytes(raw, path.name, reduce)
    if img is None or raw[:3] != JPEG_MAGIC:
        return img, err, None, None
    full = None
    if reduce > 1 and size is not None:
        w, h = size  # as the frame header says; an EXIF orientation of 90/270 degrees turns the decoded picture
        full = (w, h) if img.shape[1] == -(-w // reduce) else (h, w)
    return img, err, raw, full


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` is not a regular file that can be read (without opening it), or None."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"{path.name} is a broken link or was removed" if path.is_symlink() else f"{path.name} was removed"
    except OSError as e:
        return f"cannot read {path.name}: {e.strerror or e}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{path.name} is a folder, not an image file"
    if stat.S_ISFIFO(mode):
        return f"{path.name} is a pipe (FIFO), not an image file"
    return f"{path.name} is not a regular file"


class FolderSource:
    """Every image file of a folder, sorted by name; each image is one part."""

    live = False

    def __init__(self, folder: Path | str, loop: bool = False, target_hw: tuple[int, int] | None = None) -> None:
        self.folder = Path(folder)
        # the model's input (h, w): a larger JPEG is decoded at the scale it needs (``read_scaled``)
        self.target_hw = target_hw
        if not self.folder.is_dir():
            raise SourceError(f"image folder not found: {self.folder}")
        # every entry named like an image, files or not: a folder, a broken link or a FIFO is a part
        # that could not be inspected, recorded with its reason
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"no image files in {self.folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
        self.name = str(self.folder)
        self.loop = loop
        self._i = 0
        self._ahead = ReadAhead()  # the next pictures decoded while this one is judged

    def __len__(self) -> int:
        return len(self.files)

    def read(self) -> Frame | None:
        if self._i >= len(self.files):
            if not self.loop:
                return None
        path = self.files[self._i % len(self.files)]
        seq = self._i
        self._i += 1
        n, target = len(self.files), self.target_hw
        img, err, jpeg, full = self._ahead.take(seq, lambda k: read_scaled(self.files[k % n], target), target,
                                                None if self.loop else n)
        # the full path, so a QC engineer can always find the part's original picture (a broken
        # link is named as it is, not as its missing target)
        where = path.resolve() if path.exists() else path.absolute()
        return Frame(img, seq, self.name, time.time(), where.as_posix(), err, jpeg, full_size=full)

    def decode_for(self, target_hw: tuple[int, int]) -> None:
        """Decode JPEGs for a model whose input is ``target_hw`` (h, w) from the next read on."""
        self.target_hw = target_hw

    def close(self) -> None:
        self._ahead.close()


class VideoSource:
    """Every frame of a video file; each frame is one part.

    The decoder runs on the reading thread (one decoder thread), so what it reports on stderr belongs
    to the frame just read: a frame it reports damaged is NOT_INSPECTED, and so is every frame after it
    until the next keyframe (they are predicted from the damaged one). A file that ends before the
    frames its container declares raises ``SourceIncomplete`` ("read N of M")."""

    live = False

    def __init__(self, path: Path | str, loop: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        self.name = str(self.path)
        self.loop = loop
        with native_messages() as msgs:
            self._cap = _open_video(self.path)
        if not self._cap.isOpened():
            raise SourceError(f"cannot open video {self.path}: unreadable or unsupported format.")
        self._container_notes = [tidy(x) for x in msgs.lines]
        if msgs:
            log.warning("video %s: the demuxer reported %s", self.path.name, " | ".join(self._container_notes))
        self.declared = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        # MP4/MOV/AVI index every frame; elsewhere (MKV, WebM, TS) the count is duration x rate, which a
        # variable frame rate makes too high: a shortfall there counts only when the file also complained
        self._exact_count = self.path.suffix.lower() in EXACT_COUNT_SUFFIXES
        self._complained = bool(msgs)
        self._seq = 0
        self._in_file = 0
        self._damaged = False  # a frame since the last keyframe was damaged: its successors are too

    def read(self) -> Frame | None:
        with native_messages() as msgs:
            ok, img = self._cap.read()
        if not ok:
            self._check_complete(msgs.first)
            if self.loop and self._in_file > 0:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self._in_file, self._damaged = 0, False
                with native_messages() as msgs:
                    ok, img = self._cap.read()
            if not ok:
                return None
        seq = self._seq
        self._seq += 1
        self._in_file += 1
        return Frame(img, seq, self.name, time.time(), f"frame {seq}", self._damage(msgs))

    def _damage(self, msgs) -> str | None:
        """Why this frame cannot be judged although it decoded, or None."""
        if msgs:
            log.warning("video %s frame %d: the decoder reported %s", self.path.name, self._in_file - 1,
                        " | ".join(msgs.lines))
            self._damaged = self._complained = True
            return f"video frame damaged: the decoder reported {msgs.first!r}"
        if self._damaged and self._frame_type() != "I":
            return "video frame predicted from a damaged frame (no keyframe since)"
        self._damaged = False
        return None

    def _frame_type(self) -> str:
        prop = getattr(cv2, "CAP_PROP_FRAME_TYPE", None)  # OpenCV >= 4.9; without it: never a keyframe
        code = int(self._cap.get(prop)) if prop is not None else 0
        return chr(code) if 0 < code < 128 else "?"

    def _check_complete(self, last_message: str) -> None:
        short = self.declared and self._in_file < self.declared
        if short and (self._exact_count or self._complained or last_message):
            notes = [*self._container_notes, last_message] if last_message else self._container_notes
            why = f" ({'; '.join(notes)})" if notes else ""
            raise SourceIncomplete(f"video {self.path.name} ended early: read {self._in_file} of the "
                                   f"{self.declared} frames its container declares; the file is damaged or "
                                   f"cut short{why}.")

    def close(self) -> None:
        self._cap.release()


def _open_video(path: Path) -> cv2.VideoCapture:
    """FFmpeg with one decoder thread (errors reported with their frame), else any backend."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    if cap.isOpened():
        return cap
    cap.release()
    return cv2.VideoCapture(str(path))


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

    def per_hour(self, count: int) -> float:
        """A count as a rate per hour of this camera's time (0 before any time has passed)."""
        return count * 3600.0 / self.uptime_s if self.uptime_s > 0 else 0.0

    def health(self) -> str:
        """'2 reconnects, 1 stall in 0:41:07 (2.9/h, 1.5/h); 3 gaps, 12.5 s without pictures': the
        watchdog's counts and rates."""
        if not (self.reconnects or self.stalls or self.gaps):
            return "no reconnects or stalls"
        t = int(self.uptime_s)
        text = (f"{self.reconnects} reconnect{'s' * (self.reconnects != 1)}, {self.stalls} "
                f"stall{'s' * (self.stalls != 1)} in {t // 3600}:{t // 60 % 60:02d}:{t % 60:02d} "
                f"({self.per_hour(self.reconnects):.1f}/h, {self.per_hour(self.stalls):.1f}/h)")
        if self.gaps:
            text += f"; {self.gaps} gap{'s' * (self.gaps != 1)}, {self.gap_s:.1f} s without pictures"
        return text


def opencv_opener(target: str | int, cfg: CameraConfig) -> Callable[[], Capture]:
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000)]

    def open_() -> Capture:
        if isinstance(target, int):
            return cv2.VideoCapture(target, cv2.CAP_ANY, params)
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)

    return open_


class _Shot(NamedTuple):
    """A picture as the reader thread got it, with when (``time.time()``): a trigger takes only a picture
    taken after it, however long the picture then waited in the buffer."""

    image: np.ndarray
    at: float


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

    def put(self, item) -> None:
        with self._cond:
            items = self._items
            if _is_picture(item):
                pictures = [i for i, x in enumerate(items) if _is_picture(x)]
                if len(pictures) >= self.size:
                    del items[pictures[0]]
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
        self._frames = _NewestFrames(2)
        self._stop = threading.Event()
        self._seq = 0
        self.reconnects = 0
        self.stalls = 0
        self.gaps = 0
        self.gap_s = 0.0
        self._gap: tuple[float, str] | None = None  # (since, why) of the gap in progress
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
                                 time.monotonic() - self._opened_at, self.gaps, self.gap_s)
        if self._on_state:
            self._on_state(self.state)

    def _open(self) -> Capture | None:
        box: list = []
        lock = threading.Lock()
        gave_up = threading.Event()

        def open_() -> None:
            cap = self._opener()
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

    def _put(self, item) -> None:
        """Newest wins among pictures: a full buffer drops its oldest picture, never a notice (a drop,
        a reconnect, garbage), which must reach the record even when the camera floods frames after it."""
        self._frames.put(_Shot(item, time.time()) if isinstance(item, np.ndarray) else item)

    def _loop(self, cap: Capture) -> None:
        try:
            while not self._stop.is_set():
                ok, img = cap.read()
                if self._stop.is_set():
                    break
                if ok and isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3 \
                        and img.dtype == np.uint8:
                    self._put(img)
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
            self._last_picture = now
            seq = self._seq
            self._seq += 1
            return Frame(item.image, seq, self.name, item.at, f"frame {seq}")

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
        self._end_gap(time.monotonic(), "closed")
        self._set_state("stopped", reason="closed")

    def _join_openers(self) -> None:
        for t in self._openers:
            t.join(self.cfg.open_timeout_s + 1.0)


class SyntheticSource:
    """Rendered parts, for tests and demos without a camera."""

    live = False

    def __init__(self, count: int, seed: int = 0) -> None:
        from inspector.sources.synth import generate

        self.name = f"synthetic(seed={seed})"
        self._it = generate(count, seed)
        self._seq = 0

    def read(self) -> Frame | None:
        try:
            stem, part = next(self._it)
        except StopIteration:
            return None
        seq = self._seq
        self._seq += 1
        return Frame(part.image, seq, self.name, time.time(), stem)

    def close(self) -> None:
        pass


def open_source(spec: str, cfg: CameraConfig | None = None, loop: bool = False,
                on_state: Callable[[CameraState], None] | None = None):
    """A source from what a user types: a folder, a video file, a camera index or a URL."""
    cfg = cfg or CameraConfig()
    if spec.isdigit():
        return LiveSource(f"camera {spec}", opencv_opener(int(spec), cfg), cfg, on_state)
    if "://" in spec:
        if not spec.lower().startswith(("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")):
            raise SourceError(f"unsupported stream URL {spec!r}: use rtsp://, http:// or https://.")
        return LiveSource(spec, opencv_opener(spec, cfg), cfg, on_state)
    p = Path(spec)
    if p.is_dir():
        return FolderSource(p, loop)
    if p.is_file():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            raise SourceError(f"{p} is a single image: give its folder as --source.")
        return VideoSource(p, loop)
    raise SourceError(f"source not found: {spec} (give an image folder, a video file, a camera index or a URL).")

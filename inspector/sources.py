"""Frame sources behind one protocol: image folder, video file, camera index, stream URL, synthetic.

Live sources (camera, stream) own their capture loop: reads happen on a thread of their own with a
timeout, a dropped camera is reconnected with back-off, and a gap is reported as a frame without an
image (which becomes NOT_INSPECTED), never filled with a substitute picture.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from inspector.config import CameraConfig
from inspector.errors import SourceError
from inspector.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".wmv", ".mpg", ".mpeg", ".webm"}
JPEG_MAGIC = b"\xff\xd8\xff"
MAX_PIXELS = 80_000_000  # larger images are refused as not inspectable rather than exhausting memory


def decode_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """Read an image file; return (image, None) or (None, reason). Never raises for bad content."""
    img, err, _ = read_image(path)
    return img, err


def read_image(path: Path) -> tuple[np.ndarray | None, str | None, bytes | None]:
    """``decode_image``, plus the file's bytes when the file is a JPEG (so that it can be stored as is)."""
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as e:
        return None, f"cannot read {path.name}: {e.strerror or e}", None
    if data.size == 0:
        return None, f"empty file {path.name}", None
    img, err = _decode(data, path)
    jpeg = data.tobytes() if img is not None and data[:3].tobytes() == JPEG_MAGIC else None
    return img, err, jpeg


def _decode(data: np.ndarray, path: Path) -> tuple[np.ndarray | None, str | None]:
    # check the header's size before decoding, so a tiny file claiming a huge picture is refused
    try:  # one decode: OpenCV checks the header's size against OPENCV_IO_MAX_IMAGE_PIXELS first
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error:  # OpenCV refuses absurd sizes and some malformed headers with an exception
        return None, f"cannot decode {path.name}: image too large (over {MAX_PIXELS // 1_000_000} megapixels) " \
                     "or malformed"
    if img is None:
        return None, f"cannot decode {path.name}: not an image or corrupt"
    return img, None


class FolderSource:
    """Every image file of a folder, sorted by name; each image is one part."""

    live = False

    def __init__(self, folder: Path | str, loop: bool = False) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SourceError(f"image folder not found: {self.folder}")
        self.files = sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"no image files in {self.folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
        self.name = str(self.folder)
        self.loop = loop
        self._i = 0

    def __len__(self) -> int:
        return len(self.files)

    def read(self) -> Frame | None:
        if self._i >= len(self.files):
            if not self.loop:
                return None
        path = self.files[self._i % len(self.files)]
        seq = self._i
        self._i += 1
        img, err, jpeg = read_image(path)
        # the full path, so a QC engineer can always find the part's original picture
        return Frame(img, seq, self.name, time.time(), path.resolve().as_posix(), err, jpeg)

    def close(self) -> None:
        pass


class VideoSource:
    """Every frame of a video file; each frame is one part."""

    live = False

    def __init__(self, path: Path | str, loop: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"video file not found: {self.path}")
        self.name = str(self.path)
        self.loop = loop
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise SourceError(f"cannot open video {self.path}: unreadable or unsupported format.")
        self._seq = 0
        self._in_file = 0

    def read(self) -> Frame | None:
        ok, img = self._cap.read()
        if not ok:
            if self.loop and self._in_file > 0:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self._in_file = 0
                ok, img = self._cap.read()
            if not ok:
                return None
        seq = self._seq
        self._seq += 1
        self._in_file += 1
        return Frame(img, seq, self.name, time.time(), f"frame {seq}")

    def close(self) -> None:
        self._cap.release()


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

    def per_hour(self, count: int) -> float:
        """A count as a rate per hour of this camera's time (0 before any time has passed)."""
        return count * 3600.0 / self.uptime_s if self.uptime_s > 0 else 0.0

    def health(self) -> str:
        """'2 reconnects, 1 stall in 0:41:07 (2.9/h, 1.5/h)': the watchdog's counts and rates."""
        if not (self.reconnects or self.stalls):
            return "no reconnects or stalls"
        t = int(self.uptime_s)
        return (f"{self.reconnects} reconnect{'s' * (self.reconnects != 1)}, {self.stalls} "
                f"stall{'s' * (self.stalls != 1)} in {t // 3600}:{t // 60 % 60:02d}:{t % 60:02d} "
                f"({self.per_hour(self.reconnects):.1f}/h, {self.per_hour(self.stalls):.1f}/h)")


def opencv_opener(target: str | int, cfg: CameraConfig) -> Callable[[], Capture]:
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(cfg.open_timeout_s * 1000),
              cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(cfg.read_timeout_s * 1000)]

    def open_() -> Capture:
        if isinstance(target, int):
            return cv2.VideoCapture(target, cv2.CAP_ANY, params)
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)

    return open_


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
            if isinstance(item, np.ndarray):
                pictures = [i for i, x in enumerate(items) if isinstance(x, np.ndarray)]
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
    """A camera or stream with a watchdog: timed reads off the caller's thread, reconnect with back-off."""

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
        self._opened_at = time.monotonic()
        self.state = CameraState("connecting")
        cap = self._open()
        if cap is None:
            raise SourceError(f"cannot open camera/stream {name} within {cfg.open_timeout_s:g} s.")
        self._thread = threading.Thread(target=self._loop, args=(cap,), name=f"capture {name}", daemon=True)
        self._thread.start()

    def _set_state(self, state: str, attempt: int = 0, reason: str = "") -> None:
        self.state = CameraState(state, attempt, reason, self.reconnects, self.stalls,
                                 time.monotonic() - self._opened_at)
        if self._on_state:
            self._on_state(self.state)

    def _open(self) -> Capture | None:
        box: list = []
        t = threading.Thread(target=lambda: box.append(self._opener()), daemon=True)
        t.start()
        t.join(self.cfg.open_timeout_s)
        if not box or not box[0].isOpened():
            if box:
                box[0].release()
            return None
        self._set_state("running")
        return box[0]

    def _put(self, item) -> None:
        """Newest wins among pictures: a full buffer drops its oldest picture, never a notice (a drop,
        a reconnect, garbage), which must reach the record even when the camera floods frames after it."""
        self._frames.put(item)

    def _loop(self, cap: Capture) -> None:
        while not self._stop.is_set():
            ok, img = cap.read()
            if self._stop.is_set():
                break
            if ok and isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8:
                self._put(img)
                continue
            if ok:  # garbage from the driver: report it, keep going
                self._put(f"unusable frame from camera ({getattr(img, 'shape', type(img).__name__)})")
                continue
            cap.release()
            cap = self._reconnect("camera dropped")
            if cap is None:
                return
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

    def read(self) -> Frame | None:
        if self.state.state == "stopped" and self._frames.empty():
            return None
        try:
            item = self._frames.get(self.cfg.read_timeout_s)
        except queue.Empty:
            self.stalls += 1
            item = f"camera stall: no frame for {self.cfg.read_timeout_s:g} s"
            st = self.state
            self._set_state(st.state, st.attempt, st.reason)  # the screen's stall count and rate
        if item is None:
            return None
        seq = self._seq
        self._seq += 1
        if isinstance(item, str):
            return Frame(None, seq, self.name, time.time(), f"frame {seq}", item)
        return Frame(item, seq, self.name, time.time(), f"frame {seq}")

    def close(self) -> None:
        self._stop.set()
        self._set_state("stopped", reason="closed")


class SyntheticSource:
    """Rendered parts, for tests and demos without a camera."""

    live = False

    def __init__(self, count: int, seed: int = 0) -> None:
        from inspector.synth import generate

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

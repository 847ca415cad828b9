"""A GenICam camera (GigE Vision, USB3 Vision) as a frame source, whatever SDK drives it.

The SDK's part is a ``Device`` (``pylon`` through pypylon, ``genicam`` through harvesters): it sets nodes,
fires the software trigger and hands over buffers as ``Grab`` values. This module owns the rest, the same
for both: the settings a plant needs in a fixed order, pixel formats converted to BGR, the three
acquisition modes, and the faults that make a part NOT_INSPECTED instead of a PASS:

- ``software``: each ``read`` fires the camera once and waits ``read_timeout_s`` for the frame that answers;
  frames left over from an earlier trigger are thrown away first, so a late frame is never the next part's.
- ``free`` and ``hardware``: a thread of its own takes the frames as the camera sends them. Free-running, the
  newest frames win (as with the OpenCV cameras). With the hardware trigger every frame is a part: the thread
  waits for room rather than drop one, and a frame id that skips (the camera or its driver lost frames) becomes
  one frame without a picture per missing id, so that the line's triggers stay paired by order.
- A buffer the camera marks incomplete is a frame without a picture, with why. A camera that stops answering
  (an error, or three triggers in a row without a frame) is closed and reopened with back-off; the gap is
  reported and counted in ``CameraState`` like the OpenCV cameras'.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from inspector.core.config import CameraConfig, CameraTrigger, FeatureValue
from inspector.core.errors import CameraError
from inspector.core.types import Frame, Gap
from inspector.sources.live import CameraState, _NewestFrames

log = logging.getLogger(__name__)

MAX_FILLED = 100  # frames without a picture made for one skip of the frame ids (a counter reset is not a skip)
LOST_AFTER = 3  # triggers in a row without their frame: the camera has stopped answering
QUEUE = 64  # frames waiting for the runner with the hardware trigger (the camera's own buffers hold more)
NEWEST = 2  # free-running: the newest frames waiting, as the OpenCV cameras keep them


@dataclass(frozen=True)
class CameraInfo:
    """One camera as discovery sees it (``inspector cameras``, the window's picker)."""

    sdk: str
    vendor: str
    model: str
    serial: str
    user_id: str
    interface: str
    reachable: bool
    note: str = ""

    def line(self) -> str:
        who = f"{self.vendor} {self.model}".strip()
        named = f" '{self.user_id}'" if self.user_id else ""
        state = "reachable" if self.reachable else f"not reachable{': ' + self.note if self.note else ''}"
        return f"{self.sdk:<8} {who:<34} serial {self.serial or '?':<14}{named} {self.interface:<10} {state}"

    def matches(self, wanted: str) -> bool:
        return not wanted or wanted in (self.serial, self.user_id)


@dataclass(frozen=True)
class Grab:
    """One buffer as the SDK delivered it: the pixels as an array (HxW or HxWxC, any depth), the camera's
    pixel format name, its frame id and timestamp (None when the camera gives none), or why it is unusable."""

    pixels: np.ndarray | None
    pixel_format: str
    frame_id: int | None = None
    timestamp: int | None = None
    error: str | None = None


class Device(Protocol):
    """An opened camera, its settings applied and acquisition started (``pylon``, ``genicam``). A camera that
    has gone raises ``CameraError``."""

    name: str

    def fire(self) -> None: ...

    def configure(self, items: list[tuple[str, FeatureValue]]) -> None: ...

    def grab(self, timeout_s: float) -> Grab | None: ...

    def close(self) -> None: ...


Setter = Callable[[str, FeatureValue], None]


def settings(cfg: CameraConfig) -> list[tuple[str, FeatureValue]]:
    """The nodes ``[camera]`` sets, in the order a camera accepts them: binning and region before the pixel
    format (they change what is allowed), offsets to 0 before the size, the trigger last but for the
    ``[camera.features]``, which come last in the order written."""
    out: list[tuple[str, FeatureValue]] = []
    if cfg.binning > 1:
        out += [("BinningHorizontal", cfg.binning), ("BinningVertical", cfg.binning)]
    if cfg.region is not None:
        x, y, w, h = cfg.region
        out += [("OffsetX", 0), ("OffsetY", 0), ("Width", w), ("Height", h), ("OffsetX", x), ("OffsetY", y)]
    if cfg.pixel_format:
        out.append(("PixelFormat", cfg.pixel_format))
    if cfg.exposure_us is not None:
        out += [("ExposureAuto", "Off"), ("ExposureTime", cfg.exposure_us)]
    if cfg.gain_db is not None:
        out += [("GainAuto", "Off"), ("Gain", cfg.gain_db)]
    if cfg.trigger == CameraTrigger.FREE:
        out += [("TriggerSelector", "FrameStart"), ("TriggerMode", "Off")]
    else:
        source = "Software" if cfg.trigger == CameraTrigger.SOFTWARE else cfg.hardware_line
        out += [("TriggerSelector", "FrameStart"), ("TriggerMode", "On"), ("TriggerSource", source)]
    return out + list(cfg.features.items())


OPTIONAL = {"ExposureAuto", "GainAuto", "TriggerSelector"}  # nodes a camera may lack without harm


def apply(cfg: CameraConfig, setter: Setter, has: Callable[[str], bool],
          items: list[tuple[str, FeatureValue]] | None = None) -> None:
    """Set every node of ``settings`` (or ``items``) through the SDK's ``setter``; the first one refused stops
    with one sentence (``CameraError``)."""
    for name, value in settings(cfg) if items is None else items:
        if name in OPTIONAL and not has(name):
            continue
        if name == "TriggerMode" and value == "Off" and not has(name):
            continue  # a camera without triggers is free-running already
        if not has(name):
            raise CameraError(f"the camera has no node {name} (set by [camera] {_origin(cfg, name)}): remove it or "
                              f"use the name the camera's documentation gives.")
        try:
            setter(name, value)
        except Exception as e:  # noqa: BLE001 - each SDK raises its own kinds; the user needs the one sentence
            why = sdk_reason(e)
            raise CameraError(f"the camera refused {name} = {value!r} (set by [camera] {_origin(cfg, name)}): "
                              f"{why}.") from e


def sdk_reason(e: BaseException) -> str:
    """An SDK's exception as a reason: GenICam's "Feature 'X' : cannot convert ... : XException thrown in node
    'X' while calling ... (file 'Enumeration.cpp', line 92)" without the part meant for its developers."""
    parts = [p.strip().rstrip(".") for p in str(e).split(" : ") if "thrown" not in p and "(file '" not in p]
    return ": ".join(p for p in parts if p) or type(e).__name__


def _origin(cfg: CameraConfig, node: str) -> str:
    if node in cfg.features:
        return f"features.{node}"
    return {"PixelFormat": "pixel_format", "ExposureTime": "exposure_us", "Gain": "gain_db",
            "TriggerMode": "trigger", "TriggerSource": "trigger / hardware_line", "BinningHorizontal": "binning",
            "BinningVertical": "binning"}.get(node, "region")


_BAYER = {"RG": cv2.COLOR_BayerBG2BGR, "BG": cv2.COLOR_BayerRG2BGR,  # OpenCV names the pattern one pixel
          "GR": cv2.COLOR_BayerGB2BGR, "GB": cv2.COLOR_BayerGR2BGR}  # further on than GenICam does
_COLOR = {"RGB": cv2.COLOR_RGB2BGR, "RGBA": cv2.COLOR_RGBA2BGR, "BGRA": cv2.COLOR_BGRA2BGR, "BGR": None}


def _to8(a: np.ndarray, bits: int) -> np.ndarray:
    """A deeper picture scaled to 8 bits by its format's depth (Mono12: 0..4095 -> 0..255)."""
    if a.dtype == np.uint8 and bits <= 8:
        return a
    return (a.astype(np.uint32) >> max(0, bits - 8)).clip(0, 255).astype(np.uint8)


def to_bgr(pixels: np.ndarray, pixel_format: str) -> np.ndarray:
    """An SDK's pixels as the HxWx3 uint8 BGR picture the model takes: Mono and Bayer 8 to 16 bits scaled to 8
    bits (Bayer demosaiced), RGB/BGR/RGBA/BGRA converted. Raises ``CameraError`` naming a format it cannot."""
    fmt = pixel_format.replace("Packed", "").replace("RGBa", "RGBA").replace("BGRa", "BGRA")
    digits = "".join(c for c in fmt if c.isdigit())
    bits = int(digits) if digits else 8
    if fmt.startswith("Mono") and fmt[4:].isdigit():
        a = pixels if pixels.ndim == 2 else pixels[..., 0]
        return cv2.cvtColor(_to8(a, bits), cv2.COLOR_GRAY2BGR)
    if fmt.startswith("Bayer") and fmt[5:7] in _BAYER and fmt[7:].isdigit():
        a = pixels if pixels.ndim == 2 else pixels[..., 0]
        return cv2.cvtColor(np.ascontiguousarray(_to8(a, bits)), _BAYER[fmt[5:7]])
    letters = fmt.rstrip("0123456789")
    if letters in _COLOR and pixels.ndim == 3 and pixels.shape[2] == len(letters):
        bits = bits // len(letters) if bits > 16 else bits  # "RGB8" is 8 bits a channel; "RGB24" would be 24 a pixel
        a = _to8(pixels, bits)
        code = _COLOR[letters]
        return np.ascontiguousarray(a) if code is None else cv2.cvtColor(a, code)
    raise CameraError(f"pixel format {pixel_format} is not supported: set [camera] pixel_format to Mono8, Mono12, a "
                      f"Bayer 8 to 16 bit format, RGB8 or BGR8.")


@dataclass
class _Counts:
    frames: int = 0
    dropped: int = 0  # frames lost on the way (the frame ids skipped)
    incomplete: int = 0  # buffers the camera marked incomplete or that could not be converted
    timeouts: int = 0  # software triggers without their frame


class GenICamSource:
    """A GenICam camera, opened through ``opener`` (the SDK's), in the mode ``[camera] trigger`` says."""

    def __init__(self, opener: Callable[[], Device], cfg: CameraConfig,
                 on_state: Callable[[CameraState], None] | None = None) -> None:
        self.cfg = cfg
        self._opener = opener
        self._on_state = on_state
        self.live = cfg.trigger != CameraTrigger.SOFTWARE  # software: each read fires; else frames come by themselves
        # hardware: the camera and the PLC see the part at once, and the camera's frame may beat the PLC's message
        self.pair_window_s = cfg.pair_window_s if cfg.trigger == CameraTrigger.HARDWARE else 0.0
        self.counts = _Counts()
        self.reconnects = self.stalls = self.gaps = 0
        self.gap_s = 0.0
        self._gap_since: float | None = None
        self._seq = 0
        self._last_id: int | None = None
        self._missed_in_row = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fps: deque[float] = deque(maxlen=30)
        self._opened_at = time.monotonic()
        self._queue: queue.Queue | _NewestFrames = _NewestFrames(NEWEST) if cfg.trigger == CameraTrigger.FREE \
            else queue.Queue(QUEUE)
        self._reconnecting: threading.Thread | None = None
        self.state = CameraState("connecting")
        self._device: Device | None = opener()  # the first opening's fault is the user's to fix: raised
        self.name = self._device.name
        self._set_state("running")
        self._thread: threading.Thread | None = None
        if self.live:
            self._thread = threading.Thread(target=self._loop, name=f"capture {self.name}", daemon=True)
            self._thread.start()

    # state ----------------------------------------------------------------------------------
    def _set_state(self, state: str, attempt: int = 0, reason: str = "") -> None:
        fps = (len(self._fps) - 1) / (self._fps[-1] - self._fps[0]) if len(self._fps) > 1 and \
            self._fps[-1] > self._fps[0] else 0.0
        c = self.counts
        self.state = CameraState(state, attempt, reason, self.reconnects, self.stalls,
                                 time.monotonic() - self._opened_at, self.gaps, self.gap_s,
                                 device=getattr(self, "name", ""), fps=fps, dropped=c.dropped,
                                 incomplete=c.incomplete, timeouts=c.timeouts)
        if self._on_state:
            self._on_state(self.state)

    def _begin_gap(self, why: str) -> None:
        if self._gap_since is None:
            self.gaps += 1
            self._gap_since = time.monotonic()
            log.warning("camera %s: no pictures (%s)", self.name, why)

    def _end_gap(self) -> None:
        if self._gap_since is not None:
            took = time.monotonic() - self._gap_since
            self.gap_s += took
            self._gap_since = None
            log.warning("camera %s: pictures again after a gap of %.1f s", self.name, took)

    def set_features(self, features: dict[str, FeatureValue]) -> None:
        """Set ``features`` on the camera now (a product changeover) and after every reconnect; a node the camera
        lacks or refuses raises one sentence (``CameraError``), the nodes before it stay set."""
        dev = self._device
        if dev is not None:
            dev.configure(list(features.items()))
        self.cfg = self.cfg.model_copy(update={"features": dict(features)})  # refused: a reconnect keeps the old
        log.info("camera %s: %s", self.name, ", ".join(f"{k} = {v!r}" for k, v in features.items()) or "no features")

    # frames ---------------------------------------------------------------------------------
    def _frames_of(self, g: Grab, at: float) -> list[Frame]:
        """The frames one buffer makes: a frame without a picture per frame id skipped since the last, then the
        buffer's own (without a picture when it is incomplete or cannot be converted)."""
        out: list[Frame] = []
        # software: the frames of triggers that timed out may be the ids missing; only more than those is a loss
        explained = self._missed_in_row if self.cfg.trigger == CameraTrigger.SOFTWARE else 0
        if g.frame_id is not None and self._last_id is not None and g.frame_id > self._last_id + 1 + explained:
            lost = g.frame_id - self._last_id - 1 - explained
            self.counts.dropped += lost
            log.warning("camera %s: frame ids skipped from %d to %d (%d lost)", self.name, self._last_id, g.frame_id,
                        lost)
            fill = 0 if self.cfg.trigger == CameraTrigger.FREE else min(lost, MAX_FILLED)  # free: no part was lost
            for fid in range(self._last_id + 1, self._last_id + 1 + fill):
                out.append(self._frame(None, at, fid, None, f"camera frame {fid} lost: the camera's frame ids "
                                                            f"skipped from {self._last_id} to {g.frame_id}"))
        if g.frame_id is not None:
            self._last_id = g.frame_id
        error, image = g.error, None
        if error is None and g.pixels is not None:
            try:
                image = to_bgr(g.pixels, g.pixel_format)
            except CameraError as e:
                error = str(e)
        elif error is None:
            error = "the camera sent a buffer without pixels"
        if error is not None:
            self.counts.incomplete += 1
        self.counts.frames += 1
        self._fps.append(time.monotonic())
        out.append(self._frame(image, at, g.frame_id, g.timestamp, error))
        return out

    def _frame(self, image: np.ndarray | None, at: float, frame_id: int | None, stamp: int | None,
               error: str | None) -> Frame:
        seq = self._seq
        self._seq += 1
        name = f"camera frame {frame_id if frame_id is not None else '?'}"
        if stamp:
            name += f", camera time {stamp}"
        return Frame(image, seq, self.name, at, name, error)

    # software trigger -------------------------------------------------------------------------
    def read(self) -> Frame | Gap | None:
        if self._stop.is_set():
            return None
        if self.live:
            return self._read_queued()
        dev = self._device
        if dev is None:
            return Gap(f"camera {self.name} is not connected ({self.state.state})", time.monotonic())
        try:
            for g in iter(lambda: dev.grab(0.0), None):  # left over from an earlier trigger: not this part's
                log.warning("camera %s: a frame came after its trigger's timeout (frame id %s): discarded", self.name,
                            g.frame_id)
                if g.frame_id is not None:
                    self._last_id = g.frame_id
            at = time.time()
            dev.fire()
            g = dev.grab(self.cfg.read_timeout_s)
        except Exception as e:  # noqa: BLE001 - whatever the SDK raises, the part is answered and the camera reopened
            if not isinstance(e, CameraError):
                log.exception("camera %s: the SDK failed", self.name)
            self._lost(str(e))
            return Gap(f"camera lost: {e}", time.monotonic())
        if g is None:
            self.counts.timeouts += 1
            self._missed_in_row += 1
            self.stalls += 1
            if self._missed_in_row >= LOST_AFTER:
                self._lost(f"{LOST_AFTER} software triggers in a row without a frame")
            else:
                self._set_state(self.state.state, self.state.attempt, self.state.reason)
            return Gap(f"no frame within {self.cfg.read_timeout_s:g} s of the software trigger", time.monotonic())
        frames = self._frames_of(g, at)
        self._missed_in_row = 0
        self._set_state("running")
        # after a skip, the trigger's own frame may be good but a frame before it was lost: the part is not judged
        return frames[-1] if len(frames) == 1 else Frame(None, frames[-1].seq, self.name, at, frames[-1].name,
                                                         frames[0].error)

    # free-running and hardware trigger -------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            dev = self._device
            if dev is None:
                if self._stop.wait(0.05):
                    break
                continue
            try:
                g = dev.grab(0.2)
            except Exception as e:  # noqa: BLE001 - whatever the SDK raises, this thread must go on
                if not isinstance(e, CameraError):
                    log.exception("camera %s: the SDK failed", self.name)
                self._put(f"camera lost: {e}")
                self._lost(str(e))
                continue
            if g is None:
                continue
            at = time.time()
            for f in self._frames_of(g, at):
                self._put(f)

    def _put(self, item: Frame | str | None) -> None:
        """Free-running, the newest pictures win (a notice is never pushed out); with the hardware trigger nothing
        is dropped here: the thread waits, and what the camera loses meanwhile shows as skipped frame ids."""
        if isinstance(self._queue, _NewestFrames):
            self._queue.put(item)
            return
        while not self._stop.is_set() or item is None:
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                if item is None:
                    return  # the reader sees the stop once the queue is empty

    def _read_queued(self) -> Frame | Gap | None:
        try:
            item = self._queue.get(self.cfg.read_timeout_s) if isinstance(self._queue, _NewestFrames) else \
                self._queue.get(timeout=self.cfg.read_timeout_s)
        except queue.Empty:
            if self._stop.is_set():
                return None
            if self.cfg.trigger == CameraTrigger.HARDWARE:  # no part at the light barrier: no stall
                return Gap("waiting for the camera's hardware trigger", time.monotonic())
            self.stalls += 1
            self._begin_gap(f"camera stall: no frame for {self.cfg.read_timeout_s:g} s")
            self._set_state(self.state.state, self.state.attempt, self.state.reason)
            return Gap(f"camera stall: no frame for {self.cfg.read_timeout_s:g} s", time.monotonic())
        if isinstance(item, str):
            self._begin_gap(item)
            return Gap(item, time.monotonic())
        self._end_gap()
        return item

    # losing and finding the camera ------------------------------------------------------------
    def _lost(self, why: str) -> None:
        """Close the camera and reopen it with back-off on a thread of its own; reads meanwhile are gaps."""
        with self._lock:
            dev, self._device = self._device, None
            if dev is None or self._stop.is_set():
                return
        self._begin_gap(why)
        log.warning("camera %s lost (%s): reconnecting", self.name, why)
        try:
            dev.close()
        except Exception:  # noqa: BLE001 - a gone camera may fail to close; it is gone either way
            log.debug("closing the lost camera %s failed", self.name, exc_info=True)
        self._set_state("reconnecting", 0, why)
        self._reconnecting = threading.Thread(target=self._reconnect, args=(why,), name=f"reconnect {self.name}",
                                              daemon=True)
        self._reconnecting.start()

    def _reconnect(self, why: str) -> None:
        delay, attempt = self.cfg.reconnect_initial_s, 0
        while not self._stop.wait(delay):
            attempt += 1
            if self.cfg.max_reconnects and attempt > self.cfg.max_reconnects:
                self._set_state("stopped", attempt - 1, f"{why}; gave up after {attempt - 1} attempts")
                self._put_end()
                return
            self._set_state("reconnecting", attempt, why)
            try:
                dev = self._opener()
            except CameraError as e:
                log.info("camera %s: reconnect attempt %d failed: %s", self.name, attempt, e)
                delay = min(delay * 2, self.cfg.reconnect_max_s)
                continue
            with self._lock:
                if self._stop.is_set():
                    dev.close()
                    return
                self._device = dev
            self.reconnects += 1
            self._missed_in_row = 0
            self._last_id = None  # a reopened camera counts its frames afresh
            self._end_gap()
            self._set_state("running")
            return

    def _put_end(self) -> None:
        self._stop.set()
        if self.live:
            self._put(None)

    def close(self) -> None:
        """Stop acquisition and close the camera (also one being reopened), waiting for the threads."""
        self._stop.set()
        for t in (self._thread, self._reconnecting):
            if t is not None and t is not threading.current_thread():
                t.join(self.cfg.read_timeout_s + self.cfg.open_timeout_s + 1.0)
        with self._lock:
            dev, self._device = self._device, None
        if dev is not None:
            try:
                dev.close()
                log.info("camera %s closed", self.name)
            except Exception:  # noqa: BLE001 - closing must not hide the run's own outcome
                log.warning("closing camera %s failed", self.name, exc_info=True)
        self._end_gap()
        self._set_state("stopped", reason="closed")

"""From the runner's threads to the GUI thread: callbacks become queued Qt signals carrying frozen values.

The runner calls ``on_committed``/``on_error``/``on_camera`` on its own threads. The bridge turns each
call into immutable values (a ``LiveResult`` holds a detached ``QImage``, which is safe to build off the
GUI thread, unlike a ``QPixmap``) and emits them; slots in the GUI thread receive them queued. Per
committed batch only the newest part and the failures are converted, so the GUI thread never gets
more work than the screen can show.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from inspector.core.alarms import Alarm
from inspector.core.heatmaps import overlay_bgra
from inspector.core.types import Detection, Inspection, Verdict
from inspector.sources.live import CameraState

log = logging.getLogger(__name__)

MAX_FRAME_SIDE = 1280  # larger frames are scaled down (on the runner's thread) before the screen sees them
THUMB_HEIGHT = 88
MAX_FAIL_PICTURES_PER_BATCH = 50  # as many as the banner queues; FAILs beyond go without their picture, never dropped


@dataclass(frozen=True)
class LiveResult:
    """One committed inspection as the screen shows it: boxes are in the pixel coordinates of ``image``."""

    record_id: int
    seq: int
    frame_name: str
    verdict: Verdict
    reasons: tuple[str, ...]
    boxes: tuple[Detection, ...]
    image: QImage | None  # detached copy, never modified
    thumb: QImage | None  # only for failures (the strip)
    latency_ms: float
    model_sha256: str = ""  # the model that judged it (a promotion changes it between two parts)
    heat: QImage | None = None  # an anomaly model's heat map as a coloured overlay the size of ``image``


def to_qimage(image: np.ndarray, fit: tuple[int, int] | None = None,
              max_side: int = MAX_FRAME_SIDE) -> tuple[QImage, float]:
    """A detached QImage of ``image`` ready to blit (RGB32), scaled to fit ``fit`` (the canvas size) and at most
    ``max_side``; returns it and the scale used.

    Runs on the runner's thread so painting does not scale. The pixel work is done by OpenCV, which
    releases the GIL (QImage.scaled does not, and would stall the GUI thread for its duration).
    """
    h, w = image.shape[:2]
    scale = 1.0
    if fit is not None and fit[0] > 0 and fit[1] > 0:
        scale = min(fit[0] / w, fit[1] / h)
    scale = min(scale, max_side / max(w, h))
    if abs(scale - 1.0) > 1e-3:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    else:
        scale = 1.0
    bgra = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)  # the byte order of QImage.Format_RGB32 on little-endian
    q = QImage(bgra.data, bgra.shape[1], bgra.shape[0], bgra.strides[0], QImage.Format.Format_RGB32)
    return q.copy(), scale  # the copy owns its pixels


def thumbnail(image: np.ndarray, height: int = THUMB_HEIGHT) -> QImage:
    h, w = image.shape[:2]
    return to_qimage(image, (max(1, round(w * height / h)), height))[0]


def _scaled_box(d: Detection, s: float) -> Detection:
    if s == 1.0:
        return d
    return Detection(d.cls, d.label, d.confidence, d.x1 * s, d.y1 * s, d.x2 * s, d.y2 * s)


def live_result(record_id: int, insp: Inspection, with_thumb: bool = False,
                fit: tuple[int, int] | None = None) -> LiveResult:
    """Convert one inspection for the screen (runs on the runner's writer thread)."""
    image = thumb = None
    boxes: tuple[Detection, ...] = ()
    if insp.image is not None:
        image, s = to_qimage(insp.image, fit)
        if insp.detections is not None:  # boxes are in the picture's own pixels; ``image`` may be a reduced decode
            s *= insp.image.shape[1] / insp.detections.image_width
            boxes = tuple(_scaled_box(d, s) for d in insp.detections)
        if with_thumb:
            thumb = thumbnail(insp.image)
    heat = None
    if image is not None and insp.detections is not None and insp.detections.heatmap is not None:
        heat = heat_qimage(insp.detections.heatmap, image.width(), image.height())
    return LiveResult(record_id, insp.seq, insp.frame_name, insp.verdict, tuple(insp.reasons), boxes, image, thumb,
                      float(insp.latency_ms), insp.model_sha256, heat)


def heat_qimage(heat: np.ndarray, width: int, height: int) -> QImage:
    """A detached QImage (ARGB32) of the heat map's coloured overlay at ``width`` x ``height`` (off the GUI
    thread: the resize and colour map are OpenCV's)."""
    bgra = np.ascontiguousarray(overlay_bgra(heat, width, height))  # the byte order of Format_ARGB32 (little-endian)
    q = QImage(bgra.data, bgra.shape[1], bgra.shape[0], bgra.strides[0], QImage.Format.Format_ARGB32)
    return q.copy()


def without_picture(record_id: int, insp: Inspection) -> LiveResult:
    """A part for the screen without its picture (cheap): a FAIL of a burst past what the banner can queue."""
    return LiveResult(record_id, insp.seq, insp.frame_name, insp.verdict, tuple(insp.reasons), (), None, None,
                      float(insp.latency_ms), insp.model_sha256)


@dataclass(frozen=True)
class AlarmEvent:
    """An alarm raised on the station, as the screen shows it (``alarm_id`` 0: it could not be recorded)."""

    alarm_id: int
    rule: str
    message: str


class RunnerBridge(QObject):
    """Pass its methods as the Station's callbacks; connect to its signals (queued) in the GUI thread."""

    results = Signal(object)  # tuple[LiveResult, ...]: the failures of a batch, then its newest part
    error = Signal(object)  # the exception that stopped the runner
    camera = Signal(object)  # CameraState
    alarm = Signal(object)  # AlarmEvent

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fit: tuple[int, int] | None = None  # the canvas size, set from the GUI thread (a tuple: atomic)

    def on_committed(self, items: list[tuple[int, Inspection]]) -> None:
        if not items:
            return
        fit = self.fit
        try:
            out = []
            # every FAIL of the batch reaches the banner's queue and the strip (issue 26: the extras of a burst
            # were dropped); past what the banner can queue, without its picture (the screen names them)
            fails = [(rid, i) for rid, i in items if i.verdict == Verdict.FAIL]
            for n, (rid, insp) in enumerate(fails):
                out.append(live_result(rid, insp, True, fit) if n < MAX_FAIL_PICTURES_PER_BATCH
                           else without_picture(rid, insp))
            last_id, last = items[-1]
            if not out or out[-1].record_id != last_id:
                out.append(live_result(last_id, last, False, fit))
            self.results.emit(tuple(out))
        except Exception:  # noqa: BLE001 - a display problem must never stop the writer thread
            log.exception("could not prepare a result for the screen")

    def on_error(self, e: Exception) -> None:
        self.error.emit(e)

    def on_camera(self, state: CameraState) -> None:
        self.camera.emit(state)

    def on_alarm(self, alarm_id: int, alarm: Alarm) -> None:
        self.alarm.emit(AlarmEvent(alarm_id, alarm.rule, alarm.message))

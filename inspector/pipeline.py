"""``Pipeline.inspect(frame) -> Inspection``: synchronous and pure apart from the model call.

Frames that cannot be judged (no image, black, blank, frozen, model error) become NOT_INSPECTED
with their reason: never a silent PASS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time

import cv2
import numpy as np

from inspector.config import QualityConfig
from inspector.errors import ModelError
from inspector.ports import Detector, Rule
from inspector.types import Frame, Inspection, Verdict

log = logging.getLogger(__name__)


def frame_problem(image: np.ndarray, q: QualityConfig) -> str | None:
    """Why this frame cannot be judged, or None. Cheap: runs on a small thumbnail."""
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    mean, std = cv2.meanStdDev(grey)
    if float(mean[0][0]) < q.min_brightness:
        return f"black frame (brightness {float(mean[0][0]):.1f} below {q.min_brightness:g})"
    if float(std[0][0]) < q.min_contrast:
        return f"blank frame (contrast {float(std[0][0]):.1f} below {q.min_contrast:g})"
    return None


class TimedDetector:
    """Bounds each inference: a call slower than ``timeout_s`` raises ModelError (-> NOT_INSPECTED).

    Python cannot stop a running call, so while a timed-out inference is still running, later frames
    are refused at once ("model busy") rather than queued behind it: the line sees NOT_INSPECTED, never
    a stale or silent PASS.
    """

    def __init__(self, inner: Detector, timeout_s: float) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.inner = inner
        self.timeout_s = timeout_s
        self.classes, self.sha256, self.name = inner.classes, inner.sha256, inner.name
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inspector-model")
        self._busy = None

    def __getattr__(self, item):
        return getattr(self.inner, item)

    def detect(self, image: np.ndarray):
        from concurrent.futures import TimeoutError as FutureTimeout

        if self._busy is not None and not self._busy.done():
            raise ModelError(f"model busy: an earlier inference ran over {self.timeout_s:g} s and has not finished")
        fut = self._pool.submit(self.inner.detect, image)
        try:
            return fut.result(timeout=self.timeout_s)
        except FutureTimeout:
            self._busy = fut
            raise ModelError(f"model timeout: no answer within {self.timeout_s:g} s") from None


class Pipeline:
    """One part at a time: quality gate, detector, recipe."""

    def __init__(self, detector: Detector, rule: Rule, quality: QualityConfig | None = None) -> None:
        self.detector = detector
        self.rule = rule
        self.quality = quality or QualityConfig()
        self._last_digest: bytes | None = None
        self._repeats = 0

    def _frozen(self, frame: Frame) -> bool:
        if self.quality.frozen_frames <= 0 or frame.image is None:
            return False
        digest = hashlib.blake2b(frame.image[::4, ::4].tobytes(), digest_size=16).digest()
        self._repeats = self._repeats + 1 if digest == self._last_digest else 0
        self._last_digest = digest
        return self._repeats >= self.quality.frozen_frames

    def _not_inspected(self, frame: Frame, reason: str, t0: float, started: dt.datetime) -> Inspection:
        return Inspection(frame.seq, frame.source, Verdict.NOT_INSPECTED, (reason,), None, started,
                          (time.perf_counter() - t0) * 1000, frame.name, getattr(self.detector, "sha256", ""),
                          frame.image)

    def inspect(self, frame: Frame, live: bool = False) -> Inspection:
        t0 = time.perf_counter()
        started = dt.datetime.now(dt.timezone.utc)
        if frame.image is None:
            return self._not_inspected(frame, frame.error or "no image", t0, started)
        problem = frame_problem(frame.image, self.quality)
        if problem is None and live and self._frozen(frame):
            problem = f"frozen stream (same picture {self._repeats + 1} times in a row)"
        if problem:
            return self._not_inspected(frame, problem, t0, started)
        try:
            detections = self.detector.detect(frame.image)
        except ModelError as e:
            log.error("model error on frame %s: %s", frame.seq, e)
            return self._not_inspected(frame, f"model error: {e}", t0, started)
        verdict, reasons = self.rule.evaluate(detections)
        return Inspection(frame.seq, frame.source, verdict, reasons, detections, started,
                          (time.perf_counter() - t0) * 1000, frame.name, detections.model_sha256, frame.image)

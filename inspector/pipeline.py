"""``Pipeline.inspect(frame) -> Inspection``: synchronous and pure apart from the model call.

``begin``/``finish`` split the same work in two, so that a runner can hand the next frame to a
queued detector before it takes this frame's result (``inspect`` is ``finish(begin(frame))``).

Frames that cannot be judged (no image, black, blank, frozen, model error) become NOT_INSPECTED
with their reason: never a silent PASS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass

import cv2
import numpy as np

from inspector.config import QualityConfig
from inspector.errors import ModelError
from inspector.ports import AsyncDetector, Detector, PendingDetections, Ready, Rule
from inspector.types import Detections, Frame, Inspection, Verdict

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

    @property
    def depth(self) -> int:
        return int(getattr(self.inner, "depth", 1))

    def submit(self, image: np.ndarray) -> PendingDetections:
        """Queued inference (when the inner detector has it), each result bounded by ``timeout_s``."""
        if self.depth <= 1:
            return Ready(self.detect(image))
        return _Bounded(self.inner.submit(image), self.timeout_s)


class _Bounded:
    def __init__(self, inner: PendingDetections, timeout_s: float) -> None:
        self.inner, self.timeout_s = inner, timeout_s

    def done(self) -> bool:
        return self.inner.done()

    def result(self, timeout_s: float | None = None) -> Detections:
        return self.inner.result(self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s))


@dataclass
class Job:
    """A frame between ``Pipeline.begin`` and ``Pipeline.finish``: judged already, or at the model."""

    frame: Frame
    t0: float
    started: dt.datetime
    done: Inspection | None = None
    pending: PendingDetections | None = None


class Pipeline:
    """One part at a time: quality gate, detector, recipe."""

    def __init__(self, detector: Detector, rule: Rule, quality: QualityConfig | None = None) -> None:
        self.detector = detector
        self.rule = rule
        self.quality = quality or QualityConfig()
        # how many frames may be between ``begin`` and ``finish`` at once (the detector's queue)
        self.depth = max(1, int(detector.depth)) if isinstance(detector, AsyncDetector) else 1
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
                          frame.image, frame.jpeg)

    def inspect(self, frame: Frame, live: bool = False) -> Inspection:
        return self.finish(self.begin(frame, live))

    def begin(self, frame: Frame, live: bool = False) -> Job:
        """Judge what can be judged without the model; hand the rest to it (queued when it can).

        Call ``finish`` on the jobs in the order they were begun, at most ``depth`` open at once.
        """
        t0 = time.perf_counter()
        job = Job(frame, t0, dt.datetime.now(dt.timezone.utc))
        if frame.image is None:
            job.done = self._not_inspected(frame, frame.error or "no image", t0, job.started)
            return job
        problem = frame_problem(frame.image, self.quality)
        if problem is None and live and self._frozen(frame):
            problem = f"frozen stream (same picture {self._repeats + 1} times in a row)"
        if problem:
            job.done = self._not_inspected(frame, problem, t0, job.started)
            return job
        try:
            if self.depth > 1:
                job.pending = self.detector.submit(frame.image)  # type: ignore[attr-defined]
            else:
                job.done = self._judge(job, self.detector.detect(frame.image))
        except ModelError as e:
            job.done = self._model_error(job, e)
        return job

    def finish(self, job: Job) -> Inspection:
        if job.done is not None:
            return job.done
        assert job.pending is not None
        try:
            return self._judge(job, job.pending.result())
        except ModelError as e:
            return self._model_error(job, e)

    def _judge(self, job: Job, detections: Detections) -> Inspection:
        verdict, reasons = self.rule.evaluate(detections)
        f = job.frame
        return Inspection(f.seq, f.source, verdict, reasons, detections, job.started,
                          (time.perf_counter() - job.t0) * 1000, f.name, detections.model_sha256, f.image, f.jpeg)

    def _model_error(self, job: Job, e: ModelError) -> Inspection:
        log.error("model error on frame %s: %s", job.frame.seq, e)
        return self._not_inspected(job.frame, f"model error: {e}", job.t0, job.started)

"""``Pipeline.inspect(frame) -> Inspection``: synchronous and pure apart from the model call.

``begin``/``finish`` split the same work in two, so that a runner can hand the next frame to a
queued detector before it takes this frame's result (``inspect`` is ``finish(begin(frame))``).

Frames that cannot be judged (no image, damaged, too small, black, blank, frozen, model error)
become NOT_INSPECTED with their reason: never a silent PASS.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

import cv2
import numpy as np

from inspector.core.config import QualityConfig
from inspector.core.errors import ModelError
from inspector.core.ports import AsyncDetector, Detector, PendingDetections, Ready, Rule
from inspector.core.types import Detections, Frame, Inspection, Verdict

log = logging.getLogger(__name__)


DEFAULT_MIN_SIDE_PX = 80  # a quarter of the default model input (320 px)


def thumbnail(image: np.ndarray) -> np.ndarray:
    """The 64x64 grey picture the quality checks look at."""
    return cv2.cvtColor(cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)


def local_contrast(image: np.ndarray, tile_px: int) -> float:
    """The highest grey-level spread among the picture's ``tile_px`` squares (16x16 thumbnail cells each)."""
    h, w = image.shape[:2]
    cols, rows = max(1, -(-w // tile_px)), max(1, -(-h // tile_px))
    g = cv2.cvtColor(cv2.resize(image, (cols * 16, rows * 16), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return float(g.reshape(rows, 16, cols, 16).std(axis=(1, 3)).max())


def frame_problem(image: np.ndarray, q: QualityConfig, grey: np.ndarray | None = None,
                  min_side_px: int = 0, size: tuple[int, int] | None = None, tile_px: int = 0) -> str | None:
    """Why this frame cannot be judged, or None. Cheap: runs on a small thumbnail. ``size`` is the picture's
    (width, height) as captured when ``image`` is a reduced decode of it. ``tile_px`` (a tiled detector's
    tiles): a picture is blank only when every tile-sized square of it is, not when a small part lies on a
    large plain background."""
    w, h = size or (image.shape[1], image.shape[0])
    if min(h, w) < min_side_px:
        return f"image too small ({w}x{h} px, the shorter side must be at least {min_side_px} px)"
    grey = thumbnail(image) if grey is None else grey
    mean, std = cv2.meanStdDev(grey)
    if float(mean[0][0]) < q.min_brightness:
        return f"black frame (brightness {float(mean[0][0]):.1f} below {q.min_brightness:g})"
    contrast = float(std[0][0])
    if contrast < q.min_contrast and tile_px:
        contrast = max(contrast, local_contrast(image, tile_px))
    if contrast < q.min_contrast:
        return f"blank frame (contrast {contrast:.1f} below {q.min_contrast:g})"
    return None


SMEAR_BLOCK = 8
SMEAR_SIDE = 640  # pictures are looked at with their longer side at most this (a smear survives the reduction)


def smeared_share(image: np.ndarray) -> float:
    """The share of 8x8 blocks whose rows repeat down the block although it has detail across it: what a video
    decoder leaves where it hides damage by smearing the rows above. A camera's picture never has it (sensor
    noise changes every row), nor a part's texture (measured on real steel, tile and part pictures: at most 2 %
    of blocks, where streaks run down the picture)."""
    h, w = image.shape[:2]
    if max(h, w) > SMEAR_SIDE:
        f = SMEAR_SIDE / max(h, w)
        image = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    g = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    b = SMEAR_BLOCK
    h, w = (g.shape[0] // b) * b, (g.shape[1] // b) * b
    if h == 0 or w == 0:
        return 0.0
    g = g[:h, :w].astype(np.int16)
    down = np.abs(np.diff(g, axis=0, append=g[-1:])).reshape(h // b, b, w // b, b).mean(axis=(1, 3))
    across = np.abs(np.diff(g, axis=1, append=g[:, -1:])).reshape(h // b, b, w // b, b).mean(axis=(1, 3))
    return float(((down < 0.15 * across) & (across > 1.0)).mean())


def _evened(grey: np.ndarray) -> np.ndarray:
    """A thumbnail with its brightness and contrast evened out (mean 128, spread 40): a picture that only
    flickers stays the same picture."""
    g = grey.astype(np.float32)
    return (g - g.mean()) * (40.0 / max(float(g.std()), 1.0)) + 128.0


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
        self.classes, self.sha256, self.name, self.setup = inner.classes, inner.sha256, inner.name, inner.setup
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

    def ready(self) -> bool:
        """``Pipeline.finish`` would not wait for the model."""
        return self.done is not None or self.pending is None or self.pending.done()


class Pipeline:
    """One part at a time: quality gate, detector, recipe."""

    def __init__(self, detector: Detector, rule: Rule, quality: QualityConfig | None = None,
                 min_side_px: int | None = None) -> None:
        self.detector = detector
        self.rule = rule
        self.quality = quality or QualityConfig()
        # smaller pictures are not judged: the model would upscale a few pixels into a confident PASS
        self.min_side_px = min_side_px if min_side_px is not None else (self.quality.min_side_px
                                                                        or DEFAULT_MIN_SIDE_PX)
        # how many frames may be between ``begin`` and ``finish`` at once (the detector's queue)
        self.depth = max(1, int(detector.depth)) if isinstance(detector, AsyncDetector) else 1
        tiling = getattr(detector, "tiling", None)  # a tiled detector: blank means blank in every tile
        self._tile_px = int(getattr(tiling, "size", 0) or 0)
        # the pictures a live stream showed lately (evened thumbnails, newest last) and how many pictures in a
        # row showed one of them again; which ones they matched (one: frozen; several: a loop)
        self._seen: list[tuple[int, np.ndarray]] = []  # (serial, evened thumbnail)
        self._serial = 0
        self._repeats = 0
        self._matched: set[int] = set()

    def _frozen(self, grey: np.ndarray) -> bool:
        """The same content (within ``frozen_diff`` after brightness and contrast are evened out: encoder
        noise and a flicker are not a change) ``frozen_frames`` times in a row, where the same means one of
        the last ``loop_frames`` different pictures (a loop of a few pictures is as frozen as one); compared
        with the picture each still run began with, so a slow drift is not taken for a still scene frame by
        frame."""
        q = self.quality
        if q.frozen_frames <= 0:
            return False
        g = _evened(grey)
        hit = next((n for n, seen in reversed(self._seen) if float(np.abs(g - seen).mean()) <= q.frozen_diff), None)
        if hit is None:
            self._serial += 1
            self._seen = [*self._seen, (self._serial, g)][-max(1, q.loop_frames):]
            self._repeats, self._matched = 0, set()
        else:
            self._repeats += 1
            self._matched.add(hit)
        return self._repeats >= q.frozen_frames

    def _frozen_reason(self) -> str:
        if len(self._matched) > 1:
            return (f"looped stream ({self._repeats + 1} pictures in a row repeat {len(self._matched)} pictures it "
                    f"showed before, within {self.quality.frozen_diff:g} grey levels)")
        return (f"frozen stream (the same picture {self._repeats + 1} times in a row, within "
                f"{self.quality.frozen_diff:g} grey levels)")

    def _not_inspected(self, frame: Frame, reason: str, t0: float, started: dt.datetime) -> Inspection:
        return Inspection(frame.seq, frame.source, Verdict.NOT_INSPECTED, (reason,), None, started,
                          (time.perf_counter() - t0) * 1000, frame.name, self.detector.sha256,
                          frame.image, frame.jpeg, frame.trigger)

    def inspect(self, frame: Frame, live: bool = False, stream: bool = False) -> Inspection:
        return self.finish(self.begin(frame, live, stream))

    def begin(self, frame: Frame, live: bool = False, stream: bool = False) -> Job:
        """Judge what can be judged without the model; hand the rest to it (queued when it can).

        ``live``: a camera or stream (frozen and looped pictures are caught); ``stream``: a decoded video or
        stream (smeared pictures are caught); a live source is both. Call ``finish`` on the jobs in the order
        they were begun, at most ``depth`` open at once.
        """
        t0 = time.perf_counter()
        job = Job(frame, t0, dt.datetime.now(dt.timezone.utc))
        if frame.image is None or frame.error:  # a gap, or a picture its decoder reported damaged
            job.done = self._not_inspected(frame, frame.error or "no image", t0, job.started)
            return job
        grey = thumbnail(frame.image)
        problem = frame_problem(frame.image, self.quality, grey, self.min_side_px, frame.size, self._tile_px)
        if problem is None and (live or stream) and self.quality.max_smeared > 0:
            share = smeared_share(frame.image)
            if share > self.quality.max_smeared:
                problem = (f"smeared picture ({share:.0%} of its blocks repeat their rows down the block, above "
                           f"{self.quality.max_smeared:.0%}: a decoder hiding damage)")
        if problem is None and live and self._frozen(grey):
            problem = self._frozen_reason()
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
        f = job.frame
        if f.full_size is not None:  # a reduced decode: boxes in the pixels of the picture as captured
            detections = detections.scaled_to(*f.full_size)
        verdict, reasons = self.rule.evaluate(detections)
        return Inspection(f.seq, f.source, verdict, reasons, detections, job.started,
                          (time.perf_counter() - job.t0) * 1000, f.name, detections.model_sha256, f.image, f.jpeg,
                          f.trigger)

    def _model_error(self, job: Job, e: ModelError) -> Inspection:
        log.error("model error on frame %s: %s", job.frame.seq, e)
        return self._not_inspected(job.frame, f"model error: {e}", job.t0, job.started)

"""The values that flow through Inspector: small, typed, immutable, validated on creation.

``Frame`` -> ``Detections`` -> ``Inspection`` (with a ``Verdict``). Vendor types (Ultralytics
``Results``, tensors) never appear here.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from inspector.core.day import PartDay


class Verdict(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    REVIEW = "REVIEW"
    NOT_INSPECTED = "NOT_INSPECTED"


def _need(cond: bool, what: str, got: object) -> None:
    if not cond:
        raise ValueError(f"expected {what}, got {got!r}")


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured image (BGR, uint8, HxWx3) or, with ``image=None``, a gap with its reason.

    An image with an ``error`` decoded but its decoder reported it damaged: kept for the record, never
    judged."""

    image: np.ndarray | None
    seq: int
    source: str
    timestamp: float
    name: str = ""
    error: str | None = None
    # the picture's file bytes when it arrived as a JPEG file: stored as they came, never re-encoded
    jpeg: bytes | None = field(default=None, repr=False, compare=False)
    trigger: Trigger | None = None  # the line's trigger this picture was taken for (triggered acquisition)
    # (width, height) of the picture as captured when ``image`` is a reduced decode of it (a JPEG decoded at
    # the scale the model needs); None when ``image`` is the picture at its own size
    full_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        _need(isinstance(self.seq, int) and self.seq >= 0, "a sequence number >= 0", self.seq)
        if self.full_size is not None:
            _need(self.image is not None and len(self.full_size) == 2
                  and all(isinstance(v, int) and v > 0 for v in self.full_size), "a full (width, height) of a "
                  "picture", self.full_size)
        if self.image is None:
            _need(bool(self.error), "an error reason for a frame without an image", self.error)
        else:
            _need(isinstance(self.image, np.ndarray) and self.image.dtype == np.uint8
                  and self.image.ndim == 3 and self.image.shape[2] == 3 and self.image.size > 0,
                  "a non-empty HxWx3 uint8 image", getattr(self.image, "shape", type(self.image)))
            self.image.setflags(write=False)

    @property
    def ok(self) -> bool:
        return self.image is not None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the picture as captured (that of ``image`` unless it is a reduced decode)."""
        if self.full_size is not None:
            return self.full_size
        if self.image is None:
            return (0, 0)
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True, eq=False)
class Trigger:
    """One part announced by the line (a PLC): take the first picture after ``at`` (``time.time()``).

    ``part_id`` is the PLC's name for the part (None when the trigger gave none); ``extra`` holds the
    trigger message's other keys, kept with the record; ``via`` is the protocol it came by; ``sent_at`` the
    PLC's own time of the trigger (``time.time()`` scale) when it gave one: age and latency count from it."""

    part_id: str | None
    at: float
    extra: dict = field(default_factory=dict)
    via: str = ""
    sent_at: float | None = None

    def __post_init__(self) -> None:
        _need(self.part_id is None or (isinstance(self.part_id, str) and 0 < len(self.part_id) <= 200),
              "a part_id of 1 to 200 characters or None", self.part_id)
        _need(isinstance(self.extra, dict), "a dict of extra trigger keys", type(self.extra))


@dataclass(frozen=True)
class Gap:
    """A live source without a picture for now (a stall, a drop, a reconnect): an event, not a part.

    ``since`` is when the last picture came (``time.monotonic()``); the source counts and logs the gap."""

    reason: str
    since: float


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels of one picture, x1 < x2 and y1 < y2: the one box type. The engine's detections, the
    database's, the reports', the data sets' ground truth, the corpus' and the review canvas' boxes each give theirs
    as ``.box`` (``BoxCorners``)."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        corners = (self.x1, self.y1, self.x2, self.y2)
        _need(all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in corners),
              "finite box coordinates", corners)
        _need(self.x1 < self.x2 and self.y1 < self.y2, "x1 < x2 and y1 < y2", corners)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    def scaled(self, sx: float, sy: float) -> Box:
        """The same box in a picture scaled by ``sx`` x ``sy``."""
        return Box(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0 when apart)."""
        w = min(self.x2, other.x2) - max(self.x1, other.x1)
        h = min(self.y2, other.y2) - max(self.y1, other.y1)
        inter = w * h if w > 0 and h > 0 else 0.0
        return inter / (self.area + other.area - inter)


class BoxCorners:
    """A value with corners ``x1, y1, x2, y2`` in pixels (its own fields) that converts to the one ``Box``."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def box(self) -> Box:
        """The corners as a ``Box``; ValueError (one sentence) for a box without area."""
        return Box(self.x1, self.y1, self.x2, self.y2)


@dataclass(frozen=True)
class Detection(BoxCorners):
    """One box in pixel coordinates of the frame, with its class and confidence. A box without area (an edge
    clipped to the frame) is kept, as the model drew it; ``box`` is its ``Box`` where it has an area."""

    cls: int
    label: str
    confidence: float
    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        _need(isinstance(self.cls, int) and self.cls >= 0, "a class index >= 0", self.cls)
        _need(0.0 <= self.confidence <= 1.0, "a confidence in [0, 1]", self.confidence)
        _need(all(math.isfinite(v) for v in (self.x1, self.y1, self.x2, self.y2)), "finite box coordinates",
              (self.x1, self.y1, self.x2, self.y2))
        _need(self.x2 >= self.x1 and self.y2 >= self.y1, "x2 >= x1 and y2 >= y1", (self.x1, self.y1, self.x2, self.y2))

    @property
    def area(self) -> float:
        return (self.x2 - self.x1) * (self.y2 - self.y1)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    @classmethod
    def from_box(cls, index: int, label: str, confidence: float, box: Box) -> Detection:
        return cls(index, label, confidence, box.x1, box.y1, box.x2, box.y2)


@dataclass(frozen=True)
class Detections:
    """What a detector saw in one frame: boxes plus the time it took."""

    items: tuple[Detection, ...]
    image_width: int
    image_height: int
    inference_ms: float = 0.0
    model_sha256: str = ""
    # an anomaly model's picture score in [0, 1] (0.5 at its threshold) and its heat map (h x w, same scale)
    score: float | None = None
    heatmap: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _need(isinstance(self.items, tuple), "a tuple of Detection", type(self.items))
        _need(self.score is None or 0.0 <= self.score <= 1.0, "an anomaly score in [0, 1] or None", self.score)
        _need(self.image_width > 0 and self.image_height > 0, "a positive image size",
              (self.image_width, self.image_height))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def scaled_to(self, width: int, height: int) -> Detections:
        """The same boxes in the pixels of the same picture at ``width`` x ``height`` (a reduced decode's
        boxes on the picture as captured)."""
        if (width, height) == (self.image_width, self.image_height):
            return self
        sx, sy = width / self.image_width, height / self.image_height
        items = tuple(Detection(d.cls, d.label, d.confidence, d.x1 * sx, d.y1 * sy, d.x2 * sx, d.y2 * sy)
                      for d in self.items)
        return Detections(items, width, height, self.inference_ms, self.model_sha256, self.score, self.heatmap)


RUN_PRECISIONS = ("f32", "bf16", "int8")


@dataclass(frozen=True)
class RunSetup:
    """What a detector runs on, fixed when it is built: the backend, the inference precision, the threads (0: the
    library's own choice) and OpenVINO's streams; ``tune`` is what this machine's tune chose, or why none applies
    (None: no tune was consulted)."""

    backend: str
    precision: str = "f32"
    threads: int = 0
    streams: int = 1
    tune: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _need(isinstance(self.backend, str) and bool(self.backend), "a backend name", self.backend)
        _need(self.precision in RUN_PRECISIONS, f"a precision in {RUN_PRECISIONS}", self.precision)
        _need(isinstance(self.threads, int) and self.threads >= 0, "threads >= 0", self.threads)
        _need(isinstance(self.streams, int) and self.streams >= 1, "streams >= 1", self.streams)

    @property
    def running(self) -> dict[str, Any]:
        """The set-up as the health panel and a run's summary show it."""
        return {"backend": self.backend, "precision": self.precision, "threads": self.threads,
                "streams": self.streams}

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision} x{self.threads}" + (f" {self.streams} streams"
                                                                     if self.streams > 1 else "")


@dataclass(frozen=True)
class Inspection:
    """The judgement of one part: verdict, reasons, detections and timings."""

    seq: int
    source: str
    verdict: Verdict
    reasons: tuple[str, ...]
    detections: Detections | None
    started_at: dt.datetime
    latency_ms: float
    frame_name: str = ""
    model_sha256: str = ""
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    jpeg: bytes | None = field(default=None, repr=False, compare=False)  # see Frame.jpeg
    trigger: Trigger | None = None  # see Frame.trigger
    day: PartDay | None = None  # product, lot, work order, shift and recipe, stamped by the runner

    def __post_init__(self) -> None:
        _need(isinstance(self.verdict, Verdict), "a Verdict", self.verdict)
        _need(isinstance(self.reasons, tuple) and len(self.reasons) > 0, "at least one reason", self.reasons)
        _need(self.latency_ms >= 0, "a latency >= 0", self.latency_ms)
        if self.verdict in (Verdict.PASS, Verdict.FAIL, Verdict.REVIEW):
            _need(self.detections is not None, f"detections for a {self.verdict.value} verdict", None)

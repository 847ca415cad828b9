"""The stage interfaces: one verb each. Implementations live beside the engine, fakes in the tests."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from inspector.core.types import Detections, Frame, Gap, Inspection, RunSetup, Verdict


@runtime_checkable
class FrameSource(Protocol):
    """Yields frames; ``read()`` returns None at the end of a finite source, and a live source returns
    a ``Gap`` while it has no picture (an event it counts, not a part: the caller reads on)."""

    name: str
    live: bool  # a camera or stream (frames can be dropped, the content can freeze), not a folder/file

    def read(self) -> Frame | Gap | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Detector(Protocol):
    """Finds defects in one BGR image; raises ModelError on failure. ``setup`` is what it runs on, fixed when it
    was built."""

    classes: tuple[str, ...]
    sha256: str
    name: str
    setup: RunSetup

    def detect(self, image: np.ndarray) -> Detections: ...


class PendingDetections(Protocol):
    """An image handed to an ``AsyncDetector``; ``result`` waits for its detections."""

    def done(self) -> bool: ...

    def result(self, timeout_s: float | None = None) -> Detections: ...


class Ready:
    """A ``PendingDetections`` answered already (a detector without a queue answers when submitted)."""

    def __init__(self, detections: Detections) -> None:
        self._detections = detections

    def done(self) -> bool:
        return True

    def result(self, timeout_s: float | None = None) -> Detections:  # noqa: ARG002 - nothing to wait for
        return self._detections


@runtime_checkable
class AsyncDetector(Detector, Protocol):
    """A detector that takes the next image while it still works on this one, so that the runtime
    never waits for Python between two frames. ``depth`` is how many images it holds at once;
    results come back in the order the images went in."""

    depth: int

    def submit(self, image: np.ndarray) -> PendingDetections: ...


class Rule(Protocol):
    """Turns detections into a verdict with human-readable reasons."""

    def evaluate(self, detections: Detections) -> tuple[Verdict, tuple[str, ...]]: ...


class Sink(Protocol):
    """Receives finished inspections (the database writer, the live screen, a test list)."""

    def record(self, inspection: Inspection) -> None: ...


class BatchSink(Protocol):
    """Stores finished inspections durably, in order; returns their record ids once committed."""

    def write_batch(self, inspections: list[Inspection]) -> list[int]: ...

"""Fakes that behave like the hardware they stand for, faults included."""

from __future__ import annotations

import threading
import time

import numpy as np


class FakeCamera:
    """Behaves like cv2.VideoCapture on a camera; a script of steps says what each read does.

    Steps: "frame" (a good frame), "drop" (read fails: the camera is gone), "hang:S" (read blocks
    S seconds), "hang" (read blocks until the test sets ``unhang``; ``hanging`` is set meanwhile),
    "garbage" (read succeeds with a wrong-shaped array), "closed" (opening fails).
    """

    def __init__(self, script: list[str], size=(240, 320), seed: int = 0) -> None:
        self.script = list(script)
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.opened = True
        self.reads = 0
        self.lock = threading.Lock()
        self.hanging = threading.Event()
        self.unhang = threading.Event()

    def isOpened(self) -> bool:  # noqa: N802
        return self.opened

    def read(self):
        with self.lock:
            step = self.script.pop(0) if self.script else "frame"
            self.reads += 1
        if step.startswith("hang:"):
            time.sleep(float(step.split(":")[1]))
            step = "frame"
        elif step == "hang":
            self.hanging.set()
            self.unhang.wait(60)  # bounded: a test that forgets to release still ends
            step = "frame"
        if step == "drop":
            self.opened = False
            return False, None
        if step == "garbage":
            return True, np.zeros((7,), np.float32)
        img = self.rng.integers(60, 200, (*self.size, 3), dtype=np.uint8)
        return True, img

    def release(self) -> None:
        self.opened = False


class FakeCameraDevice:
    """Hands out FakeCamera connections: each open() takes the next behaviour from a list."""

    def __init__(self, connections: list[list[str] | None]) -> None:
        self.connections = list(connections)
        self.opens = 0
        self.cameras: list[FakeCamera] = []  # every connection handed out, oldest first

    def __call__(self) -> FakeCamera:
        self.opens += 1
        script = self.connections.pop(0) if self.connections else []
        cam = FakeCamera(script or [], seed=self.opens)
        if script is None:
            cam.opened = False
        self.cameras.append(cam)
        return cam


class ListSink:
    """In-memory BatchSink; optionally slow, to test back-pressure."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.items = []
        self.delay_s = delay_s

    def write_batch(self, inspections):
        if self.delay_s:
            time.sleep(self.delay_s * len(inspections))
        start = len(self.items)
        self.items.extend(inspections)
        return list(range(start + 1, start + 1 + len(inspections)))


class QueuedDetector:
    """A detector with an inference queue, like OpenVINO's: ``submit`` returns at once, one worker
    answers in order after ``delay_s``; more than ``depth`` images in flight is refused, as the real one
    refuses. ``stall`` makes the n-th image hang for that many seconds. Counts what was in flight."""

    def __init__(self, delay_s: float = 0.005, depth: int = 2, stall: dict[int, float] | None = None,
                 classes=("scratch", "dent", "stain", "crack", "chip")) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.delay_s, self.depth, self.stall = delay_s, depth, dict(stall or {})
        self.classes, self.sha256, self.name = tuple(classes), "0" * 64, "queued"
        from inspector.core.types import RunSetup

        self.setup = RunSetup("queued", streams=depth, threads=depth)
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._lock = threading.Lock()

    def _answer(self, image, n: int):
        from inspector.core.types import Detections

        time.sleep(self.stall.get(n, self.delay_s))
        with self._lock:
            self.in_flight -= 1
        return Detections((), image.shape[1], image.shape[0], self.delay_s * 1000, self.sha256)

    def detect(self, image):
        return self.submit(image).result()

    def submit(self, image):
        from inspector.core.errors import ModelError

        with self._lock:
            if self.in_flight >= self.depth:
                raise ModelError("model busy: more images in flight than the queue holds")
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            n = self.calls
            self.calls += 1
        return _FuturePending(self._pool.submit(self._answer, image.copy(), n))


class _FuturePending:
    def __init__(self, fut) -> None:
        self.fut = fut

    def done(self) -> bool:
        return self.fut.done()

    def result(self, timeout_s: float | None = None):
        from concurrent.futures import TimeoutError as FutureTimeout

        from inspector.core.errors import ModelError

        try:
            return self.fut.result(timeout_s)
        except FutureTimeout:
            raise ModelError(f"model timeout: no answer within {timeout_s:g} s") from None

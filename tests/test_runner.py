"""The threaded runner: part mode loses nothing, stream mode counts what it skips exactly."""

import time

import numpy as np

from inspector.core.config import RecipeConfig, RunMode
from inspector.core.types import Frame, Verdict
from inspector.inspection.pipeline import Pipeline
from inspector.inspection.rules import Recipe
from inspector.inspection.runner import Runner
from tests.conftest import ScriptedDetector
from tests.fakes import ListSink, QueuedDetector
from tests.timing import loose


class CountingSource:
    live = False

    def __init__(self, n, image, delay_s=0.0):
        self.n, self.image, self.delay_s, self.i = n, image, delay_s, 0
        self.name = "counting"

    def read(self):
        if self.i >= self.n:
            return None
        if self.delay_s:
            time.sleep(self.delay_s)
        self.i += 1
        return Frame(self.image, self.i - 1, self.name, time.time(), f"f{self.i - 1}")

    def close(self):
        pass


class SlowDetector(ScriptedDetector):
    def __init__(self, delay_s):
        super().__init__([[]])
        self.delay_s = delay_s

    def detect(self, image):
        time.sleep(self.delay_s)
        return super().detect(image)


def wait_until(pred, timeout_s: float = 30.0) -> None:
    """A bounded poll: returns as soon as ``pred()`` holds, fails after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < end, f"not within {timeout_s:g} s"
        time.sleep(0.01)


def run(source, detector, sink, mode, **kw):
    committed = []
    r = Runner(source, lambda: Pipeline(detector, Recipe(RecipeConfig())), sink, mode, queue_size=4,
               on_committed=committed.extend, **kw)
    r.start()
    assert r.join(timeout=30)
    return r, committed


def test_part_mode_slow_sink_loses_nothing(part_image):
    sink = ListSink(delay_s=0.01)
    r, committed = run(CountingSource(60, part_image), ScriptedDetector([[]]), sink, RunMode.PART)
    assert [i.seq for i in sink.items] == list(range(60))
    assert r.stats().skipped == 0 and r.stats().inspected == 60
    assert [insp.seq for _, insp in committed] == list(range(60))


def test_stream_mode_counts_skips_exactly_and_latency_stays_bounded(part_image):
    src = CountingSource(200, part_image, delay_s=0.001)
    r, _ = run(src, SlowDetector(0.02), ListSink(), RunMode.STREAM)
    s = r.stats()
    assert s.frames == 200
    assert s.inspected + s.skipped == 200
    assert s.skipped > 100
    assert s.latency_p99_ms < loose(500), s


def test_max_frames_and_stop(part_image):
    r, _ = run(CountingSource(100, part_image), ScriptedDetector([[]]), ListSink(), RunMode.PART, max_frames=7)
    assert r.stats().inspected == 7
    src = CountingSource(10_000, part_image, delay_s=0.001)
    sink = ListSink()
    runner = Runner(src, lambda: Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig())), sink, RunMode.PART)
    runner.start()
    wait_until(lambda: len(sink.items) >= 3)  # running: stop it mid-stream
    runner.stop()
    assert runner.join(timeout=10)
    assert len(sink.items) == runner.stats().frames > 0  # everything read was inspected and written


def test_model_that_fails_to_load_reports_error(part_image):
    from inspector.core.errors import ModelError

    def factory():
        raise ModelError("cannot load model x.pt")

    errors = []
    r = Runner(CountingSource(5, part_image), factory, ListSink(), RunMode.PART, on_error=errors.append)
    r.start()
    assert r.join(timeout=10)
    assert isinstance(r.error, ModelError) and errors


def test_black_frames_counted_apart(part_image):
    black = np.zeros_like(part_image)
    sink = ListSink()
    run(CountingSource(3, black), ScriptedDetector([[]]), sink, RunMode.PART)
    assert {i.verdict for i in sink.items} == {Verdict.NOT_INSPECTED}


def test_queued_detector_keeps_the_next_frame_waiting_and_the_order(part_image):
    """With a queued detector the runner hands over the next frame before taking this one's result,
    never more than the queue holds, and commits in order without losing any."""
    det = QueuedDetector(delay_s=0.005)
    sink = ListSink()
    r, committed = run(CountingSource(80, part_image), det, sink, RunMode.PART)
    assert r.error is None
    assert [i.seq for i in sink.items] == list(range(80))
    assert det.max_in_flight == det.depth == 2, "the next frame should wait at the model"
    assert all(i.verdict == Verdict.PASS for i in sink.items)


def test_queued_result_is_not_held_back_by_a_slow_source(part_image):
    """A camera slower than the model: each result is committed when ready, not when the next
    frame arrives (latency stays near the model's time, not the frame interval)."""
    det = QueuedDetector(delay_s=0.005)
    r, _ = run(CountingSource(8, part_image, delay_s=0.25), det, ListSink(), RunMode.STREAM)
    st = r.stats()
    assert st.inspected == 8
    assert st.latency_p99_ms < loose(150), st


def test_queued_timeout_is_not_inspected_then_busy_then_recovers(part_image):
    from inspector.inspection.pipeline import TimedDetector

    det = TimedDetector(QueuedDetector(delay_s=0.001, depth=2, stall={0: 0.8}), timeout_s=0.2)
    p = Pipeline(det, Recipe(RecipeConfig()))
    jobs = [p.begin(Frame(part_image, i, "t", 0.0, f"f{i}")) for i in range(2)]
    first, second = (p.finish(j) for j in jobs)
    assert first.verdict == Verdict.NOT_INSPECTED and "timeout" in first.reasons[0]
    assert second.verdict == Verdict.NOT_INSPECTED and "timeout" in second.reasons[0]  # queued behind it
    third = p.inspect(Frame(part_image, 2, "t", 0.0, "f2"))
    assert third.verdict == Verdict.NOT_INSPECTED and "busy" in third.reasons[0]
    wait_until(lambda: det.inner.in_flight == 0)  # the stalled image is answered at last
    assert p.inspect(Frame(part_image, 3, "t", 0.0, "f3")).verdict == Verdict.PASS


def test_writer_failure_ends_the_run_instead_of_hanging(part_image):
    """The database writer dies while the queues are full: every thread ends, the error is kept."""
    from inspector.core.errors import StorageError

    class DyingSink:
        def write_batch(self, items):
            time.sleep(0.5)  # the queues fill up meanwhile
            raise StorageError("the disk is full")

    r = Runner(CountingSource(500, part_image), lambda: Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig())),
               DyingSink(), RunMode.PART, queue_size=4)
    r.start()
    assert r.join(timeout=10), "a thread hung after the writer failed"
    assert isinstance(r.error, StorageError)


def test_source_failure_still_writes_what_was_read(part_image):
    """A camera that fails mid-run: the run ends with its error, and every frame read before it is
    inspected and committed (nothing completed is thrown away)."""
    from inspector.core.errors import SourceError

    class FailingSource(CountingSource):
        def read(self):
            if self.i == 30:
                raise SourceError("camera unplugged")
            return super().read()

    sink = ListSink(delay_s=0.005)
    r = Runner(FailingSource(100, part_image), lambda: Pipeline(QueuedDetector(), Recipe(RecipeConfig())),
               sink, RunMode.PART, queue_size=4)
    r.start()
    assert r.join(timeout=10)
    assert isinstance(r.error, SourceError)
    assert [i.seq for i in sink.items] == list(range(30))

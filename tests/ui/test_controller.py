"""The controller over a station made of fakes (scripted detector, a sink whose disk fills up): the window's
error and stop paths without a model or a database."""

from __future__ import annotations

import threading
import time

from inspector.core.config import RecipeConfig
from inspector.core.errors import StorageError
from inspector.inspection.pipeline import Pipeline
from inspector.inspection.rules import Recipe
from inspector.inspection.runner import Runner
from inspector.sources.synthetic import SyntheticSource
from tests.conftest import ScriptedDetector
from tests.fakes import ListSink


class FullDiskSink(ListSink):
    """Stores ``room`` inspections, then fails as a full disk does."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write_batch(self, inspections):
        if len(self.items) + len(inspections) > self.room:
            raise StorageError("No space left on the device for /data/images (0 MB free); free some space.")
        return super().write_batch(inspections)


class FakeStation:
    """What ``Station`` offers the window, over fakes; records how the run was ended."""

    def __init__(self, spec, on_committed=None, on_error=None, on_camera=None, sink=None, count=30, build_s=0.0,
                 on_alarm=None):
        time.sleep(build_s)  # a slow camera open or database migration
        self.built_on = threading.current_thread()
        self.sink = sink or ListSink()
        script = [[("scratch", 0.9, (10, 10, 50, 40))], [], []]
        self.runner = Runner(SyntheticSource(count, seed=1), lambda: Pipeline(ScriptedDetector(script),
                             Recipe(RecipeConfig())), self.sink, on_committed=on_committed, on_error=on_error)
        self.run_id, self.model_name, self.model_sha = 1, "scripted", "0" * 64
        self.ended: list[str] = []

    def start(self):
        self.runner.start()

    def stop(self):
        self.runner.stop()

    def stats(self):
        return self.runner.stats()

    def finish(self, reason):
        self.ended.append(reason)


def window_over(qtbot, tmp_path, make_spec, factory):
    from ui.controller import LiveController
    from ui.main_window import MainWindow

    stations = []

    def make(spec, **kw):
        s = factory(spec, **kw)
        stations.append(s)
        return s

    w = MainWindow(LiveController(make), make_spec(tmp_path, None), tmp_path / "s.toml")
    qtbot.addWidget(w)
    w.show()
    return w, stations


def test_a_run_reaches_the_screen_and_ends_finished(qtbot, tmp_path, make_spec):
    w, stations = window_over(qtbot, tmp_path, make_spec, FakeStation)
    w.start()
    qtbot.waitUntil(lambda: w.controller.idle, timeout=30_000)
    (st,) = stations
    assert st.built_on is not threading.main_thread()
    assert st.ended == ["finished"]
    assert w.live.counters.value("inspected") == "30" == str(len(st.sink.items))
    assert w.live.counters.value("fail") == "10" and len(w.live.strip.results()) == 10


def test_a_full_disk_is_shown_and_the_run_ends_as_an_error(qtbot, tmp_path, make_spec):
    w, stations = window_over(qtbot, tmp_path, make_spec,
                              lambda spec, **kw: FakeStation(spec, sink=FullDiskSink(room=5), count=200, **kw))
    w.start()
    qtbot.waitUntil(lambda: w.controller.idle and bool(stations[0].ended), timeout=30_000)
    assert "No space left" in w.live.error.message
    assert stations[0].ended[0].startswith("error: No space left")
    assert w.actions_by_name["start"].isEnabled()
    assert int(w.live.counters.value("inspected")) <= 5


def test_stop_while_the_station_is_being_built_ends_it_once_built(qtbot, tmp_path, make_spec):
    w, stations = window_over(qtbot, tmp_path, make_spec,
                              lambda spec, **kw: FakeStation(spec, count=10_000, build_s=0.5, **kw))
    w.start()
    assert w.controller.state == "starting"
    w.stop()
    qtbot.waitUntil(lambda: w.controller.idle and bool(stations and stations[0].ended), timeout=30_000)
    assert stations[0].ended == ["stopped"]


def test_closing_during_the_build_waits_then_closes(qtbot, tmp_path, make_spec):
    w, stations = window_over(qtbot, tmp_path, make_spec,
                              lambda spec, **kw: FakeStation(spec, count=10_000, build_s=0.5, **kw))
    w.start()
    w.close()
    assert w.isVisible()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=30_000)
    assert stations[0].ended == ["stopped"]

"""The real window over the real Station and a real (tiny) model: start, stop, close, errors, counters vs database."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.core.types import Verdict
from tests.conftest import trust_models
from tests.ui.conftest import db_rows, run_until_idle

pytestmark = pytest.mark.model


def db_file(spec) -> Path:
    return Path(spec.db_url[len("sqlite:///"):])


def counts_in_db(db: Path) -> dict[str, int]:
    return dict(db_rows(db, "select verdict, count(*) from inspections group by verdict"))


def counters(window) -> dict[str, int]:
    c = window.live.counters
    return {v.value: int(c.value(k).replace(",", "")) for k, v in
            (("pass", Verdict.PASS), ("fail", Verdict.FAIL), ("review", Verdict.REVIEW),
             ("not_inspected", Verdict.NOT_INSPECTED))}


def test_a_folder_runs_to_the_end_and_the_counters_match_the_database(qtbot, open_window, make_spec, parts,
                                                                      tiny_model):
    spec = make_spec(parts, tiny_model)
    w = open_window(spec)
    ends = []
    w.controller.finished.connect(ends.append)
    assert w.start()
    assert w.controller.state == "starting" and not w.actions_by_name["start"].isEnabled()
    run_until_idle(qtbot, w)
    assert ends[0].reason == "finished"
    db = db_file(spec)
    in_db = counts_in_db(db)
    assert sum(in_db.values()) == 12
    shown = counters(w)
    assert {k: v for k, v in shown.items() if v} == in_db
    assert w.live.counters.value("inspected") == "12"
    assert db_rows(db, "select end_reason from runs") == [("finished",)]
    sha = db_rows(db, "select sha256 from model_versions")[0][0]
    assert w.live.health.value("model").endswith(sha[:12])
    # the line has stopped: the banner says so, and shows the last verdict only as "last part"
    assert w.live.banner.title.text() == "STOPPED"
    assert "last part: run 1 part 12 " in w.live.banner.reasons.text()
    assert w.live.canvas.result is not None and w.live.canvas.result.image is not None
    assert w.actions_by_name["start"].isEnabled()


def test_stop_keeps_every_finished_inspection(qtbot, open_window, make_spec, tiny_model):
    from station import DEFAULT_SOURCE

    spec = make_spec(DEFAULT_SOURCE, tiny_model, loop=True)
    w = open_window(spec)
    w.start()
    qtbot.waitUntil(lambda: w.live.last is not None, timeout=60_000)
    w.actions_by_name["pause"].trigger()
    assert w.controller.state == "paused" and w.actions_by_name["pause"].text() == "Resume"
    w.actions_by_name["pause"].trigger()
    assert w.controller.state == "running"
    qtbot.wait(300)
    w.actions_by_name["stop"].trigger()
    run_until_idle(qtbot, w)
    db = db_file(spec)
    assert db_rows(db, "select end_reason from runs") == [("stopped",)]
    assert sum(counts_in_db(db).values()) == int(w.live.counters.value("inspected").replace(",", "")) > 0


def test_closing_the_window_stops_the_run_first(qtbot, open_window, make_spec, tiny_model):
    from station import DEFAULT_SOURCE

    spec = make_spec(DEFAULT_SOURCE, tiny_model, loop=True)
    w = open_window(spec)
    w.start()
    qtbot.waitUntil(lambda: w.live.last is not None, timeout=60_000)
    w.close()
    assert w.isVisible()  # not yet: the last parts are being written
    assert w.live.banner.title.text() == "STOPPING"
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=60_000)
    db = db_file(spec)
    assert db_rows(db, "select end_reason from runs") == [("stopped",)]
    assert sum(counts_in_db(db).values()) == int(w.live.counters.value("inspected").replace(",", ""))


def test_a_bad_model_file_is_shown_and_the_window_stays_usable(qtbot, open_window, make_spec, parts, tmp_path,
                                                               tiny_model):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    w = open_window(make_spec(parts, bad, trusted=False))
    w.start()
    run_until_idle(qtbot, w)
    assert "not in the model registry" in w.live.error.message
    assert w.actions_by_name["start"].isEnabled()
    trust_models(f"sqlite:///{(tmp_path / 't.db').as_posix()}", tiny_model)
    w.set_model(tiny_model)  # pick another (trusted on the station) and start again
    w.start()
    qtbot.waitUntil(lambda: w.live.last is not None, timeout=60_000)
    assert w.live.error.message == ""
    run_until_idle(qtbot, w)


def test_a_camera_that_cannot_be_opened_is_shown(qtbot, open_window, make_spec, tiny_model):
    w = open_window(make_spec("97", tiny_model))
    w.start()
    run_until_idle(qtbot, w, 30_000)
    assert "cannot open camera/stream camera 97" in w.live.error.message
    assert w.actions_by_name["start"].isEnabled()


def test_a_camera_that_drops_shows_reconnecting_then_stopped(qtbot, open_window, make_spec, tiny_model,
                                                             monkeypatch):
    import station.core as station_mod
    from inspector.core.config import CameraConfig
    from inspector.sources.live import LiveSource
    from tests.fakes import FakeCameraDevice

    def fake_camera(spec, cfg, loop, on_state):  # the line's camera: 5 frames, then it drops for good
        device = FakeCameraDevice([["frame"] * 5 + ["drop"], None, None, None])
        fast = CameraConfig(open_timeout_s=1, read_timeout_s=1, reconnect_initial_s=0.05, reconnect_max_s=0.1,
                            max_reconnects=2)
        return LiveSource("fake camera", device, fast, on_state)

    monkeypatch.setattr(station_mod, "open_source", fake_camera)
    w = open_window(make_spec("fake", tiny_model))
    seen = []
    w.controller.camera.connect(lambda s: seen.append(w.live.health.value("camera")))
    w.start()
    # wait on what is asserted (the banner), not on the run going idle first: under load the banner's
    # queued signal can arrive after the controller is idle
    qtbot.waitUntil(lambda: "Camera stopped" in w.live.error.message, timeout=60_000)
    run_until_idle(qtbot, w, 60_000)
    assert "reconnecting, attempt 1 (camera dropped)" in seen
    assert w.live.health.value("camera").startswith("stopped: camera dropped; gave up after 2 attempts")
    assert "1 gap" in w.live.health.value("camera")  # the outage is an event on the health panel...
    assert "Camera stopped: camera dropped; gave up after 2 attempts" in w.live.error.message
    counts = {k: int(w.live.counters.value(k)) for k in ("inspected", "pass", "fail", "review", "not_inspected")}
    # ...not a part: counts and yield stay true (the newest pictures of the flood were judged)
    assert counts["not_inspected"] == 0 and counts["inspected"] >= 1, counts
    assert counts["pass"] + counts["fail"] + counts["review"] == counts["inspected"], counts


def test_choosing_a_source_while_running_restarts_with_it(qtbot, open_window, make_spec, parts, tiny_model):
    from station import DEFAULT_SOURCE

    spec = make_spec(DEFAULT_SOURCE, tiny_model, loop=True)
    w = open_window(spec)
    started = []
    w.controller.started.connect(started.append)
    w.start()
    qtbot.waitUntil(lambda: w.live.last is not None, timeout=60_000)
    w.set_source(str(parts))
    qtbot.waitUntil(lambda: len(started) == 2, timeout=60_000)
    assert started[1].source == str(parts)
    run_until_idle(qtbot, w)
    db = db_file(spec)
    assert db_rows(db, "select id, end_reason from runs order by id") == [(1, "stopped"), (2, "finished")]
    assert db_rows(db, "select count(*) from inspections where run_id = 2") == [(12,)]

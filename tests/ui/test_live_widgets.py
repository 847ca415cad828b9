"""The live screen's widgets driven through the controller's signals: no model, no database."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from inspector.core.types import Verdict
from inspector.inspection.runner import RunStats
from inspector.sources.live import CameraState
from tests.ui.conftest import make_inspection
from ui import theme
from ui.bridge import RunnerBridge, live_result
from ui.controller import LiveController, RunInfo
from ui.health import camera_text
from ui.main_window import ACTIONS, MainWindow


@pytest.fixture
def window(qtbot, tmp_path, make_spec):
    def never(*_a, **_k):
        raise AssertionError("these tests start no station")

    w = MainWindow(LiveController(never), make_spec(tmp_path, None), tmp_path / "settings.toml")
    qtbot.addWidget(w)
    w.resize(1280, 860)
    w.show()
    return w


def info(**kw) -> RunInfo:
    base = dict(run_id=3, source="parts", live=False, mode="part", model_name="parts-v1", model_sha="ab" * 32,
                recipe_name="default", db_url="sqlite:///x.db", roi=(0.1, 0.1, 0.9, 0.9))
    return RunInfo(**{**base, **kw})


@pytest.mark.parametrize("verdict, title, reasons", [
    (Verdict.PASS, "PASS", ("no defect at or above 0.25 confidence",)),
    (Verdict.FAIL, "FAIL", ("scratch 0.91 at or above fail 0.50", "dent 0.62 at or above fail 0.50")),
    (Verdict.REVIEW, "REVIEW", ("stain 0.31 between review 0.25 and fail 0.50",)),
    (Verdict.NOT_INSPECTED, "NOT INSPECTED", ("camera stall: no frame for 5 s",)),
])
def test_banner_shows_each_verdict_in_its_colour_with_reasons(window, verdict, title, reasons):
    boxes = [(0, "scratch", 0.91, (10, 10, 60, 40))] if verdict == Verdict.FAIL else []
    insp = make_inspection(4, verdict, boxes, reasons)
    window.controller.results.emit((live_result(11, insp, verdict == Verdict.FAIL),))
    banner = window.live.banner
    assert banner.title.text() == title
    assert banner.reasons.text() == " · ".join(reasons)
    assert theme.VERDICT_COLOURS[verdict][0] in banner.styleSheet()
    assert window.live.canvas.result.verdict == verdict
    assert len(window.live.strip.results()) == (1 if verdict == Verdict.FAIL else 0)


def test_failure_thumbnail_opens_the_part_with_boxes_and_reasons(window, qtbot):
    window.controller.started.emit(info())
    fail = make_inspection(7, Verdict.FAIL, [(1, "dent", 0.8, (100, 50, 160, 120))], ("dent 0.80 at or above 0.50",))
    window.controller.results.emit((live_result(21, fail, True), live_result(22, make_inspection(8, Verdict.PASS))))
    assert window.live.banner.title.text() == "FAIL"  # held for its time before the newest part (issue 26)
    strip = window.live.strip
    assert [r.record_id for r in strip.results()] == [21]
    qtbot.mouseClick(strip.button(0), Qt.MouseButton.LeftButton)
    dialog = window.live.dialog
    assert dialog is not None and dialog.isVisible()
    assert "dent 0.80" in dialog.reasons.text()
    assert dialog.canvas.result.boxes[0].label == "dent"
    assert dialog.canvas.roi == (0.1, 0.1, 0.9, 0.9)
    dialog.canvas.grab()  # paints the image, the boxes and the ROI


def test_failure_strip_keeps_only_the_last_ones(window):
    from ui.failures import MAX_THUMBS

    for i in range(MAX_THUMBS + 5):
        window.controller.results.emit((live_result(i, make_inspection(i, Verdict.FAIL), True),))
    assert [r.record_id for r in window.live.strip.results()] == list(range(MAX_THUMBS + 4, 4, -1))


def test_counters_and_health_follow_the_stats(window):
    window.controller.started.emit(info())
    st = RunStats(frames=50, inspected=48, counts={"PASS": 40, "FAIL": 4, "REVIEW": 2, "NOT_INSPECTED": 2},
                  skipped=3, elapsed_s=2.0, fps=24.0, camera_fps=25.0, inference_ms=11.5, latency_p50_ms=40,
                  latency_p99_ms=90, first_verdict_s=0.4)
    window.controller.stats.emit(st)
    c = window.live.counters
    assert [c.value(k) for k in ("inspected", "pass", "fail", "review", "not_inspected")] == ["48", "40", "4", "2", "2"]
    assert c.value("yield") == "87.0 %"  # 40 of the 46 judged
    h = window.live.health
    assert h.value("fps").startswith("24.0") and h.value("inference") == "11.5 ms" and h.value("skipped") == "3"
    assert h.value("model") == "parts-v1 · " + "ab" * 6
    assert h.value("mode").startswith("part")
    assert h.value("outbox") == "0"


def test_health_shows_the_records_waiting_for_the_database(window):
    window.controller.started.emit(info())
    st = RunStats(frames=50, inspected=48, counts={"PASS": 48}, skipped=0, elapsed_s=2.0, fps=24.0, camera_fps=25.0,
                  inference_ms=11.5, latency_p50_ms=40, latency_p99_ms=90, first_verdict_s=0.4, outbox=1234)
    window.controller.stats.emit(st)
    assert window.live.health.value("outbox") == "1,234 in the outbox"
    assert "1234 record(s) waiting for the database" in st.status_line()


@pytest.mark.parametrize("state, text", [
    (CameraState("running"), "running"),
    (CameraState("reconnecting", 3, "camera dropped"), "reconnecting, attempt 3 (camera dropped)"),
    (CameraState("stopped", 2, "camera dropped; gave up after 2 attempts"),
     "stopped: camera dropped; gave up after 2 attempts"),
    (CameraState("running", 0, "", 3, 1, 5400.0),
     "running\n3 reconnects, 1 stall in 1:30:00 (2.0/h, 0.7/h)"),
    (CameraState("reconnecting", 1, "camera dropped", 1, 0, 1800.0),
     "reconnecting, attempt 1 (camera dropped)\n1 reconnect, 0 stalls in 0:30:00 (2.0/h, 0.0/h)"),
    (CameraState("running", 0, "", 0, 0, 60.0, device="acA1300-60gm (24512345)", fps=9.96, dropped=2, incomplete=1),
     "running\nacA1300-60gm (24512345), 10.0 frames/s\n0 reconnects, 0 stalls in 0:01:00 (0.0/h, 0.0/h); 2 frames "
     "lost, 1 incomplete, 0 triggers without a frame"),
])
def test_camera_states_read_plainly(window, state, text):
    assert camera_text(state)[0] == text
    window.controller.started.emit(info(live=True))
    window.controller.camera.emit(state)
    assert window.live.health.value("camera") == text


def test_errors_show_in_the_window_and_can_be_dismissed(window):
    window.controller.failed.emit("cannot open camera/stream camera 9 within 1 s.")
    assert "camera 9" in window.live.error.message
    window.live.error.clear()
    assert window.live.error.message == ""


def test_every_control_has_its_shortcut(window):
    keys = {name: window.actions_by_name[name].shortcut().toString() for name in ACTIONS}
    assert keys == {"start": "F5", "stop": "Shift+F5", "pause": "Space", "folder": "Ctrl+O", "video": "Ctrl+Shift+O",
                    "camera": "Ctrl+K", "url": "Ctrl+U", "model": "Ctrl+M", "recipe": "Ctrl+R", "kiosk": "F11",
                    "settings": "Ctrl+,", "genicam": "Ctrl+Shift+K"}
    assert window.actions_by_name["start"].isEnabled() and not window.actions_by_name["stop"].isEnabled()


def test_kiosk_mode_hides_the_chrome_and_comes_back(window, qtbot):
    window.actions_by_name["kiosk"].trigger()
    qtbot.waitUntil(window.isFullScreen)
    assert window.toolbar.isHidden() and window.menuBar().isHidden() and window.statusBar().isHidden()
    window.actions_by_name["kiosk"].trigger()
    qtbot.waitUntil(lambda: not window.isFullScreen())
    assert not window.toolbar.isHidden()


def test_add_tab_plugs_a_screen_into_the_window(window):
    from PySide6.QtWidgets import QLabel

    i = window.add_tab(QLabel("review screen"), "Review")
    assert window.tabs.tabText(0) == "Live" and window.tabs.tabText(i) == "Review"


def test_canvas_repaints_are_throttled(window, qtbot):
    from ui.live_view import MAX_FPS

    canvas = window.live.canvas
    qtbot.wait(100)
    before = canvas.paints
    for i in range(200):  # far faster than the screen refreshes
        window.controller.results.emit((live_result(i, make_inspection(i, Verdict.PASS)),))
    qtbot.wait(300)
    assert canvas.paints - before <= MAX_FPS * 0.3 + 4


def test_bridge_scales_frames_to_the_canvas_off_the_gui_thread():
    bridge = RunnerBridge()
    bridge.fit = (640, 480)
    seen = []
    bridge.results.connect(seen.append)
    insp = make_inspection(0, Verdict.FAIL, [(0, "scratch", 0.9, (32, 24, 64, 48))])
    bridge.on_committed([(1, insp)])
    (r,) = seen[0]
    assert (r.image.width(), r.image.height()) == (640, 480)
    assert (r.boxes[0].x1, r.boxes[0].y1, r.boxes[0].x2, r.boxes[0].y2) == (64, 48, 128, 96)
    assert r.thumb is not None and r.thumb.height() == 88


def test_shortcut_keys_reach_their_actions(window, qtbot):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.settings is not None and window.settings.isVisible(), timeout=2000)
    window.settings.close()
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    qtbot.waitUntil(window.isFullScreen, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: not window.isFullScreen(), timeout=2000)


def test_health_shows_a_blocked_record_in_red(window):
    """Issue 25: a record past its write deadline (an SQLite file locked by another program) is never unseen."""
    from ui.health import BAD

    window.controller.started.emit(info())
    st = RunStats(frames=50, inspected=48, counts={"PASS": 48}, skipped=0, elapsed_s=2.0, fps=24.0, camera_fps=25.0,
                  inference_ms=11.5, latency_p50_ms=40, latency_p99_ms=90, first_verdict_s=0.4, record_blocked_s=7.2)
    window.controller.stats.emit(st)
    h = window.live.health
    assert h.value("outbox") == "BLOCKED 7 s: not ready" and BAD in h.values["outbox"].styleSheet()
    assert "BLOCKED for 7 s" in st.status_line()

"""The window on the screens plants mount, and one true rendering of each state of the line.

The screen tests run the real window (the shipped model on the built-in sample line) on a real X server
(Xvfb) at 1024x768, 1280x720 and 1920x1080 through ``tests/ui/screen_probe.py``, which reports from the
widget tree. Screenshots of every view are kept in ``INSPECTOR_SCREENS`` when it is set (to look at).
The state tests drive the live tab's real widgets through the controller's signals and a failing factory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QSize

from inspector.core.types import Verdict
from tests.ui.conftest import make_inspection
from ui import theme
from ui.bridge import live_result
from ui.controller import LiveController, RunEnd, RunInfo
from ui.elided import ElidedLabel
from ui.live_tab import letter_pixels
from ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[2]
SIZES = ("1024x768", "1280x720", "1920x1080")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_every_tab_fits_the_screen_with_nothing_clipped(tmp_path, size):
    if not shutil.which("xvfb-run"):
        pytest.skip("xvfb-run is not installed (apt-get install xvfb); CI installs it")
    out, shots = tmp_path / "probe.json", tmp_path / "shots"
    cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {size}x24", sys.executable, "-m", "tests.ui.screen_probe",
           "--db", f"sqlite:///{(tmp_path / 's.db').as_posix()}", "--out", str(out), "--shots", str(shots)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=_env(), cwd=ROOT)
    assert r.returncode == 0 and out.exists(), (r.stdout + r.stderr)[-3000:]
    found = json.loads(out.read_text())
    assert found["shown_parts"], "the window showed no part"
    sw, sh = (int(x) for x in size.split("x"))
    names = [v["name"] for v in found["views"]]
    assert names == ["tab-live", "tab-review", "tab-reports", "tab-models", "tab-plant", "alarm", "kiosk", "paused",
                     "stopped"]
    for v in found["views"]:
        x, y, w, h = v["window"]
        assert x >= 0 and y >= 0 and x + w <= sw and y + h <= sh, f"{v['name']}: window {v['window']} on {size}"
        assert v["clipped"] == [], f"{v['name']} at {size}: {v['clipped']}"
        assert Path(v["shot"]).stat().st_size > 10_000
    views = {v["name"]: v for v in found["views"]}
    review = views["tab-review"]
    assert review["rows"] > 0
    for col in ("Machine", "Final", "Defects", "Reviewed"):
        assert review["columns"][col]["visible"] or review["columns"][col]["reachable"], (col, size)
    if size != "1024x768":
        assert all(c["visible"] for c in review["columns"].values()), review["columns"]
    assert views["kiosk"]["letter_px"] >= 2.5 * views["tab-live"]["letter_px"]  # kiosk reads from afar
    assert views["alarm"]["alarm"].startswith("ALARM: ")  # the sample line's yield is under the probe's 80 %
    assert "acknowledged by local-admin" in views["alarm"]["acked"]
    assert views["tab-live"]["product"] == "bracket-A"  # the product picked, on the live screen
    assert views["paused"]["banner"] == "PAUSED" and "last part: run " in views["paused"]["banner_line"]
    assert views["stopped"]["banner"] == "STOPPED" and "last part: run " in views["stopped"]["banner_line"]
    keep = os.environ.get("INSPECTOR_SCREENS")
    if keep:
        dest = Path(keep) / size
        dest.mkdir(parents=True, exist_ok=True)
        for f in shots.glob("*.png"):
            shutil.copy(f, dest / f.name)


def test_kiosk_letters_are_large_enough_to_read_from_five_metres():
    # 24" 1080p: 0.277 mm a pixel; 5 m needs letters about 4 cm high (1 inch per 10 ft)
    assert letter_pixels(1080, kiosk=True) * 0.277 * 0.72 >= 35  # cap height ~72 % of the pixel size
    assert letter_pixels(768, kiosk=False) < letter_pixels(1080, kiosk=False) <= 84


def test_an_elided_label_keeps_its_text_and_says_so(qtbot):
    label = ElidedLabel("a rather long line that cannot fit in a narrow place at all")
    qtbot.addWidget(label)
    label.resize(80, 20)
    label.show()
    assert label.text().startswith("a rather long")  # the whole text, for code and the tooltip
    assert label.elided and label.toolTip() == label.text()
    assert label.minimumSizeHint().width() < 80 < label.sizeHint().width()
    label.resize(label.sizeHint().width() + 10, 20)
    assert not label.elided


# states of the line ----------------------------------------------------------------------------------


@pytest.fixture
def window(qtbot, tmp_path, make_spec):
    def refuse(*_a, **_k):
        raise ValueError("model file refused: its SHA-256 is not trusted on this station")

    w = MainWindow(LiveController(refuse), make_spec(tmp_path, None), tmp_path / "settings.toml")
    qtbot.addWidget(w)
    w.resize(1280, 720)
    w.show()
    return w


def info(**kw) -> RunInfo:
    base = dict(run_id=7, source="parts", live=False, mode="part", model_name="parts-v1", model_sha="ab" * 32,
                recipe_name="default", db_url="sqlite:///x.db", roi=None)
    return RunInfo(**{**base, **kw})


def running(w) -> None:
    w.controller._set_state("running")
    w.controller.started.emit(info())


def test_paused_and_stopped_lines_show_their_state_and_the_verdict_only_as_last_part(window):
    running(window)
    window.controller.results.emit((live_result(1, make_inspection(4, Verdict.PASS)),))
    banner = window.live.banner
    assert (banner.title.text(), banner.mark.text()) == ("PASS", theme.VERDICT_MARK[Verdict.PASS])
    window.controller._set_state("paused")
    assert banner.title.text() == "PAUSED" and banner.verdict is None
    assert "last part: run 7 part 5 ✔ PASS" in banner.reasons.text()
    assert theme.VERDICT_COLOURS[None][0] in banner.styleSheet()  # not green any more
    window.controller._set_state("running")
    assert banner.title.text() == "PASS"
    window.controller._set_state("stopping")
    assert banner.title.text() == "STOPPING"
    window.controller._set_state("idle")
    window.controller.finished.emit(RunEnd("stopped", None))
    assert banner.title.text() == "STOPPED" and "last part: run 7 part 5" in banner.reasons.text()
    assert not banner.mark.isVisible()


def test_a_run_that_ends_in_an_error_is_not_ready_with_the_reason(window):
    running(window)
    window.controller.results.emit((live_result(1, make_inspection(2, Verdict.FAIL)),))
    window.controller._set_state("idle")
    window.controller.finished.emit(RunEnd("error: camera 0 stopped: no frame for 5 s", None))
    banner = window.live.banner
    assert banner.title.text() == "NOT READY"
    assert banner.reasons.text().startswith("camera 0 stopped: no frame for 5 s")
    assert "last part: run 7 part 3 ✖ FAIL" in banner.reasons.text()


def test_a_refused_start_leaves_nothing_of_the_previous_run_on_screen(window, qtbot):
    running(window)
    st_counts = {"PASS": 9}
    from inspector.inspection.runner import RunStats

    window.controller.stats.emit(RunStats(frames=9, inspected=9, counts=st_counts, skipped=0, elapsed_s=1.0, fps=9.0,
                                          camera_fps=9.0, inference_ms=5.0, latency_p50_ms=5, latency_p99_ms=9,
                                          first_verdict_s=0.1))
    window.controller.results.emit((live_result(1, make_inspection(8, Verdict.PASS)),))
    window.controller._set_state("idle")
    window.controller.finished.emit(RunEnd("stopped", None))
    assert window.start()  # the factory refuses the model on the pool thread
    qtbot.waitUntil(lambda: window.controller.state == "idle", timeout=10_000)
    live = window.live
    assert live.banner.title.text() == "NOT READY"
    assert "model file refused" in live.banner.reasons.text()
    assert "Opening the database" not in live.banner.reasons.text()
    assert live.counters.value("inspected") == "0" and live.counters.value("pass") == "0"
    assert live.canvas.result is None and live.last is None
    assert live.health.value("model") == "not loaded"  # not the previous run's model
    assert live.health.value("state") == "stopped"
    assert "model file refused" in live.error.message


def test_a_fail_stays_up_for_its_hold_time_then_the_newest_part_shows(window, qtbot):
    window.live.banner.hold_s = 0.4
    running(window)
    emit = window.controller.results.emit
    emit((live_result(1, make_inspection(1, Verdict.FAIL)),))
    emit((live_result(2, make_inspection(2, Verdict.PASS)),))
    emit((live_result(3, make_inspection(3, Verdict.PASS, reasons=("newest",))),))
    banner = window.live.banner
    assert banner.title.text() == "FAIL"  # still readable
    assert window.live.canvas.result.record_id == 1  # with the failed part's picture under it
    started = time.monotonic()
    qtbot.waitUntil(lambda: banner.title.text() == "PASS", timeout=3000)
    assert time.monotonic() - started >= 0.2
    assert banner.reasons.text() == "newest" and window.live.canvas.result.record_id == 3
    emit((live_result(4, make_inspection(4, Verdict.FAIL, reasons=("a",))),))
    emit((live_result(5, make_inspection(5, Verdict.FAIL, reasons=("b",))),))
    assert banner.reasons.text() == "a"  # a newer FAIL waits for the first one's hold (issue 26)
    qtbot.waitUntil(lambda: banner.reasons.text() == "b", timeout=3000)
    assert window.live.canvas.result.record_id == 5


def test_every_fail_of_a_batch_is_held_in_turn_then_the_newest_part_shows(window, qtbot):
    """Parts come faster than the screen refreshes, so results arrive in batches (the bridge sends a batch's
    FAILs, then its newest part): each FAIL is on the banner, with its picture, for its own hold time."""
    from ui.bridge import RunnerBridge

    hold = 0.3
    window.live.banner.hold_s = hold
    running(window)
    bridge = RunnerBridge()
    bridge.results.connect(window.controller.results.emit)
    banner, canvas = window.live.banner, window.live.canvas
    seen: list[tuple[str, str, int, float]] = []
    banner.shown.connect(lambda r: seen.append((banner.title.text(), banner.reasons.text(), r.record_id,
                                                time.monotonic())))
    # one FAIL among 40 parts of one batch, then two batches with FAILs at 101 and 201 among PASSes
    batch = [(i, make_inspection(i, Verdict.FAIL if i == 17 else Verdict.PASS, reasons=(f"part {i}",)))
             for i in range(1, 41)]
    bridge.on_committed(batch)
    assert (banner.title.text(), canvas.result.record_id) == ("FAIL", 17)
    bridge.on_committed([(i, make_inspection(i, Verdict.FAIL if i in (101, 103) else Verdict.PASS,
                                             reasons=(f"part {i}",))) for i in range(41, 121)])
    bridge.on_committed([(i, make_inspection(i, Verdict.FAIL if i == 201 else Verdict.PASS,
                                             reasons=(f"part {i}",))) for i in range(121, 260)])
    assert banner.title.text() == "FAIL" and banner.waiting == 3
    qtbot.waitUntil(lambda: banner.title.text() == "PASS", timeout=5000)
    assert [(t, r, rid) for t, r, rid, _ in seen] == [
        ("FAIL", "part 17", 17), ("FAIL", "part 101", 101), ("FAIL", "part 103", 103), ("FAIL", "part 201", 201),
        ("PASS", "part 259", 259)]
    times = [t for *_, t in seen]
    assert all(b - a >= hold * 0.9 for a, b in zip(times[:-1], times[1:], strict=True)), times  # each held its time
    assert canvas.result.record_id == 259
    assert sorted(r.record_id for r in window.live.strip.results()) == [17, 101, 103, 201]


def test_a_burst_of_30_fails_in_one_batch_reaches_the_fail_queue_none_dropped(window, qtbot):
    """Issue 26: the bridge kept the last 12 FAILs of a batch and dropped the others. A batch of 30 FAILs (among
    PASSes) and one of 70: each FAIL goes on the banner in turn, with its picture while the banner can queue it;
    past the queue's 50 the banner names how many more failed; every one is in the strip's list."""
    from ui.bridge import MAX_FAIL_PICTURES_PER_BATCH, RunnerBridge
    from ui.live_view import MAX_QUEUED

    window.live.banner.hold_s = 0.02
    running(window)
    bridge = RunnerBridge()
    bridge.results.connect(window.controller.results.emit)
    banner = window.live.banner
    shown: list[int] = []
    banner.shown.connect(lambda r: shown.append(r.record_id))
    added: list[int] = []
    strip_add = window.live.strip.add
    window.live.strip.add = lambda r, name=None: (added.append(r.record_id), strip_add(r, name))
    fails = set(range(1, 91, 3))  # 30 FAILs among 90 parts
    bridge.on_committed([(i, make_inspection(i, Verdict.FAIL if i in fails else Verdict.PASS,
                                             reasons=(f"part {i}",))) for i in range(1, 91)])
    assert banner.title.text() == "FAIL" and banner.waiting == 29  # the first shown, 29 queued: none dropped
    qtbot.waitUntil(lambda: banner.title.text() == "PASS", timeout=10000)
    assert [r for r in shown if r in fails] == sorted(fails) and shown[-1] == 90
    assert added == sorted(fails)
    assert MAX_FAIL_PICTURES_PER_BATCH == MAX_QUEUED
    # a burst larger than the banner's queue: the first 50 with pictures; the rest listed, and counted on the banner
    shown.clear()
    added.clear()
    results: list = []
    bridge.results.connect(results.append)
    bridge.on_committed([(i, make_inspection(i, Verdict.FAIL, reasons=(f"part {i}",))) for i in range(100, 170)])
    (batch,) = results
    assert len(batch) == 70 and [r.image is not None for r in batch] == [True] * 50 + [False] * 20
    assert added == list(range(100, 170))
    assert banner.waiting == MAX_QUEUED and banner.skipped == 69 - MAX_QUEUED
    qtbot.waitUntil(lambda: banner.waiting == 0 and not banner.holding, timeout=10000)
    assert shown[:MAX_QUEUED + 1] == list(range(100, 100 + MAX_QUEUED + 1))


def test_each_verdict_has_its_own_shape_and_the_banner_its_pattern(window):
    running(window)
    marks = set()
    for i, v in enumerate(Verdict):
        window.live.banner._held_until = 0.0
        window.controller.results.emit((live_result(i, make_inspection(i, v)),))
        marks.add(window.live.banner.mark.text())
        assert window.live.banner.title.text() == theme.VERDICT_TEXT[v]
        window.live.banner.grab()  # paints the pattern
    assert len(marks) == len(Verdict)
    assert theme.VERDICT_PATTERN[Verdict.FAIL] != theme.VERDICT_PATTERN[Verdict.REVIEW]
    assert Verdict.PASS not in theme.VERDICT_PATTERN


def test_failure_thumbnails_do_not_move_under_the_mouse(window, qtbot):
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QEnterEvent

    running(window)
    strip = window.live.strip
    window.controller.results.emit((live_result(1, make_inspection(1, Verdict.FAIL), True),))
    first = strip.button(0)
    QApplication_send(strip, QEnterEvent(QPointF(5, 5), QPointF(5, 5), QPointF(5, 5)))
    window.controller.results.emit((live_result(2, make_inspection(2, Verdict.FAIL), True),))
    assert strip.button(0) is first and [r.record_id for r in strip.results()] == [1]
    QApplication_send(strip, QEvent(QEvent.Type.Leave))
    assert [r.record_id for r in strip.results()] == [2, 1]
    assert strip.button(0).text() == "run 7 part 3"


def QApplication_send(widget, event) -> None:  # noqa: N802
    from PySide6.QtWidgets import QApplication

    QApplication.sendEvent(widget, event)


def test_the_window_is_never_larger_than_a_small_screen(window):
    hint = window.minimumSizeHint()
    assert hint.width() <= 1024 and hint.height() <= 720 - 20, hint
    assert window.live.minimumSizeHint().boundedTo(QSize(1024, 600)) == window.live.minimumSizeHint()


def test_a_new_run_is_in_the_run_filters_without_refresh(qtbot, tmp_path, make_spec):
    from dataclasses import replace

    from db import ModelRepo, RunRepo, open_database, session_factory
    from tests.reports.conftest import build_qc_db
    from ui.app import build_window

    qc = build_qc_db(tmp_path, n=24, seed=4)
    spec = replace(make_spec(tmp_path, None), db_url=qc.url)
    w = build_window(spec, tmp_path / "settings.toml")
    qtbot.addWidget(w)
    w.show()
    review, reports = w.tabs.widget(1), w.tabs.widget(2)
    w.tabs.setCurrentWidget(review)
    qtbot.waitUntil(lambda: review.idle and review.filters.run.count() == 2, timeout=10_000)
    w.tabs.setCurrentWidget(reports)
    qtbot.waitUntil(lambda: reports.idle and reports.run.count() == 1, timeout=10_000)
    sessions = session_factory(open_database(qc.url))
    with sessions() as s, s.begin():
        mv = ModelRepo.get_or_create(s, "parts-test", "/m/parts-test.pt", "c" * 64, ["dent"])
        run = RunRepo.start(s, "camera:0", "{}", "default", mv.id, "line-2", "part")
    w.controller.started.emit(info(run_id=run.id))  # the live screen started it
    qtbot.waitUntil(lambda: review.filters.run.findData(run.id) > 0 and reports.run.findData(run.id) >= 0,
                    timeout=10_000)
    review.shutdown()
    reports.shutdown()


def test_one_palette_for_the_window_and_the_reports(tmp_path):
    import cv2
    import numpy as np

    from inspector.core import palette
    from inspector.reports.data import Box, Failure
    from inspector.reports.gallery import annotated_jpeg

    for cls in range(len(palette.CLASS_COLOURS) + 2):
        assert theme.class_colour(cls).name() == palette.class_colour(cls)
    img = np.full((200, 200, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "p.png"), img)
    import datetime as dt

    box = Box("crack", 0.9, 50, 50, 150, 150, cls=2)
    jpeg = annotated_jpeg(Failure(1, dt.datetime.now(dt.timezone.utc), 1, "p.png", 0.9, "p.png", (box,)), tmp_path)
    drawn = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    b, g, r = (int(x) for x in drawn[100, 50])  # on the box's left edge
    want = palette.class_colour_bgr(2)
    assert max(abs(b - want[0]), abs(g - want[1]), abs(r - want[2])) < 40, ((b, g, r), want)


def test_report_files_and_screens_name_one_time_zone():
    import datetime as dt

    from inspector.core.clock import station_time, zone_text
    from inspector.reports.data import fmt_time

    t = dt.datetime(2026, 11, 30, 5, 30, tzinfo=dt.timezone.utc)
    assert fmt_time(t) == station_time(t) == t.astimezone().strftime("%Y-%m-%d %H:%M")
    assert zone_text(t).startswith("UTC")


def test_one_part_name_on_screens_and_in_reports():
    import datetime as dt

    from inspector.core.identity import part_name, short_file
    from inspector.reports.data import Failure

    f = Failure(812, dt.datetime.now(dt.timezone.utc), 3, "/data/line/part_20261130_0612_0411.png", 0.9, None, (),
                seq=411)
    assert f.name == part_name(3, 411) == theme.part_name(3, 411) == "run 3 part 412"
    assert short_file(f.frame_name) == "part_20261130_0612_0411.png"  # the name, not a cut path
    long = "x" * 30 + "_camera-2_" + "y" * 30 + ".png"
    assert len(short_file(long)) == 40 and short_file(long).endswith(".png")

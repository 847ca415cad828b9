"""The window at 1024x768 stays within the screen and answers the keyboard as an operator expects (issue 26):
no label widens it (long texts are elided with a tooltip, the verdict's letters shrink to the banner), Space
pauses unless a text field is being edited, Enter and Escape leave the field, a click on the picture takes the
focus back, and status-bar confirmations are visible beside the permanent labels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication

from inspector.core.types import Verdict
from tests.ui.conftest import make_inspection
from tests.ui.test_floor_screens import running
from ui.bridge import live_result
from ui.controller import LiveController
from ui.main_window import MainWindow

W, H = 1024, 768
SHOTS = Path(os.environ.get("INSPECTOR_SCREENS", "")) if os.environ.get("INSPECTOR_SCREENS") else None


@pytest.fixture
def window(qtbot, tmp_path, make_spec):
    def refuse(*_a, **_k):
        raise ValueError("model file refused: its SHA-256 is not trusted on this station")

    w = MainWindow(LiveController(refuse), make_spec(tmp_path, None), tmp_path / "settings.toml")
    qtbot.addWidget(w)
    w.resize(W, H)
    w.show()
    qtbot.waitExposed(w)
    return w


def _fits(w, what: str) -> None:
    QApplication.processEvents()
    assert w.minimumSizeHint().width() <= W, f"after {what}: the window needs {w.minimumSizeHint().width()} px"
    assert w.width() <= W, f"after {what}: the window is {w.width()} px wide"


def _shot(w, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        w.grab().save(str(SHOTS / f"{name}.png"))


def test_long_texts_and_the_largest_verdict_never_widen_the_window_at_1024(window, qtbot):
    from ui.review.progress import JobBar

    running(window)
    _fits(window, "start")
    long_dir = "/media/usb-stick/inspector exports/line 4/" + "very-long-folder-name-" * 12
    bar = JobBar()
    window.live.layout().addWidget(bar)
    bar.start("Exporting the reviewed parts…")
    bar.finish(f"Data set written to {long_dir}: 412 images, 388 boxes, 24 without defects.", Path(long_dir))
    _fits(window, "Export for training")
    assert bar.text.elided and bar.text.toolTip().startswith("Data set written to /media")
    window.controller.results.emit((live_result(1, make_inspection(1, Verdict.NOT_INSPECTED,
                                                                   reasons=("camera stall: no frame for 5 s",))),))
    window.toggle_kiosk()
    window.resize(W, H)
    _fits(window, "kiosk with NOT INSPECTED")
    title = window.live.banner.title
    assert title.text() == "NOT INSPECTED"
    assert QFontMetrics(title.font()).horizontalAdvance(title.text()) <= title.width(), "the verdict is clipped"
    _shot(window, "kiosk-not-inspected-1024")
    window.toggle_kiosk()
    window.resize(W, H)
    _fits(window, "leaving kiosk")
    _shot(window, "live-export-1024")


def test_space_pauses_unless_a_field_is_edited_and_enter_or_escape_leaves_the_field(window, qtbot):
    running(window)
    window.activateWindow()
    QApplication.setActiveWindow(window)
    pause = window.actions_by_name["pause"]
    lot = window.live.day.lot
    lot.setFocus()
    qtbot.waitUntil(lot.hasFocus, timeout=2000)
    qtbot.keyClicks(lot, "L-42")
    presses: list[bool] = []
    pause.triggered.connect(lambda *_: presses.append(True))
    qtbot.keyClick(lot, Qt.Key.Key_Space)  # typing: a space in the lot, not a pause
    assert lot.text() == "L-42 " and presses == []
    qtbot.keyClick(lot, Qt.Key.Key_Return)
    assert not lot.hasFocus()  # Enter recorded the lot and left the field
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert presses == [True] and lot.text() == "L-42 "
    work = window.live.day.work_order
    work.setFocus()
    qtbot.waitUntil(work.hasFocus, timeout=2000)
    qtbot.keyClick(work, Qt.Key.Key_Escape)
    assert not work.hasFocus()
    work.setFocus()
    qtbot.waitUntil(work.hasFocus, timeout=2000)
    qtbot.mouseClick(window.live.canvas, Qt.MouseButton.LeftButton)  # a click on the picture takes the focus
    assert window.live.canvas.hasFocus() and not work.hasFocus()


def test_status_confirmations_are_visible_beside_the_permanent_labels(window, qtbot):
    window.controller.alarm_acked.emit(3, "quinn")
    bar = window.statusBar()
    msg = bar.currentMessage()
    assert msg == "Alarm 3 acknowledged by quinn"
    QApplication.processEvents()
    room = window.selection.geometry().x() - bar.contentsRect().x()
    assert room >= QFontMetrics(bar.font()).horizontalAdvance(msg), (room, window.selection.geometry())
    _shot(window, "status-confirmation-1024")

"""The real window on a real X screen, looked at from the inside: run under Xvfb by ``test_floor_screens``.

``python -m tests.ui.screen_probe --db URL [--model FILE] --out result.json --shots DIR`` opens the window
as ``inspector`` does (maximised on the screen, the built-in sample line looping), lets it show parts,
then visits every tab, kiosk mode and the line's states (paused, stopped) and writes, for each view: the
window's geometry and the screen's, every visible button or label whose text does not fit its place
(from the widget tree), the review table's columns, and a screenshot of the screen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, QRect, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QApplication,
    QLabel,
    QTabBar,
    QToolButton,
    QWidget,
)

SLACK = 3  # pixels of rounding between a size hint and a geometry
DAY = {"products": {"bracket-A": {"recipe": {"name": "bracket-A", "roi": (0.05, 0.05, 0.95, 0.95)}},
                    "bracket-B": {"recipe": {"name": "bracket-B", "fail_conf": 0.6}}},
       "shifts": {"A": "06:00-14:00", "B": "14:00-22:00", "C": "22:00-06:00"},
       "alarms": {"fail_streak": 3, "min_yield_pct": 80.0, "yield_window": 50}}


def pump(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def wait_for(cond, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _scrolls(w: QWidget, top: QWidget) -> bool:
    """Inside a scroll area's viewport: reachable by scrolling, not clipped."""
    p = w.parentWidget()
    while p is not None and p is not top:
        if isinstance(p, QAbstractScrollArea) or isinstance(p.parentWidget(), QAbstractScrollArea):
            return True
        p = p.parentWidget()
    return False


def text_width(w: QWidget) -> int:
    """The width a label or button needs to show its text whole: for a label its minimum size hint (text,
    margins, indent); for a button the text, the icon beside it and the frame (the style's hint adds
    padding that is not needed to read the text)."""
    if isinstance(w, QLabel):
        return w.minimumSizeHint().width()
    need = w.fontMetrics().horizontalAdvance(w.text().replace("&", "")) + 6
    beside = not isinstance(w, QToolButton) or w.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonTextBesideIcon
    if not w.icon().isNull() and beside:
        need += w.iconSize().width() + 4
    return need


def clipped(window: QWidget) -> list[str]:
    """Visible buttons and labels whose text does not fit (elided labels say so and are fine), or that lie
    outside the window."""
    bad = []
    area = window.rect()
    for w in window.findChildren(QWidget):
        if not isinstance(w, (QAbstractButton, QLabel)) or not w.isVisible() or w.window() is not window:
            continue
        if isinstance(w.parentWidget(), QTabBar) or _scrolls(w, window):
            continue
        text = w.text() if isinstance(w, (QAbstractButton, QLabel)) else ""
        if not text or getattr(w, "elided", False):
            continue
        name = f"{type(w).__name__}({text[:40]!r})"
        at = QRect(w.mapTo(window, QPoint(0, 0)), w.size())
        if not area.contains(at):
            bad.append(f"{name} at {at.getRect()} outside the window {area.getRect()}")
            continue
        if isinstance(w, QLabel) and w.wordWrap():
            need_h = w.heightForWidth(w.width())
            if need_h > w.height() + SLACK:
                bad.append(f"{name} needs {need_h} px high, has {w.height()}")
            continue
        if isinstance(w, QLabel) and "\n" in text:
            continue  # multi-line plain labels are sized by their layout's rows
        need = text_width(w)
        if need > w.width() + SLACK:
            bad.append(f"{name} needs {need} px wide, has {w.width()}")
    return bad


def review_columns(tab) -> dict:
    """Where the review table's verdict columns are: on screen, or reachable by its scroll bar."""
    t = tab.table
    h = t.horizontalHeader()
    view_w = t.viewport().width()
    out = {}
    from ui.review.model import COLUMNS

    for i, name in enumerate(COLUMNS):
        left = h.sectionViewportPosition(i)
        out[name] = {"visible": left >= 0 and left + h.sectionSize(i) <= view_w + SLACK,
                     "reachable": t.horizontalScrollBar().maximum() > 0}
    return out


def settle() -> None:
    """Lay out what the last events changed (parts keep arriving: a text set just now is not laid out yet)."""
    for _ in range(4):
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest.value)


def view(window, screen, name: str, shots: Path) -> dict:
    pump(1.0)
    settle()
    geo = window.frameGeometry()
    shot = shots / f"{name}.png"
    screen.grabWindow(0).save(str(shot))
    hint = window.minimumSizeHint()
    return {"name": name, "window": geo.getRect(), "min": [hint.width(), hint.height()],
            "screen": screen.geometry().getRect(), "clipped": clipped(window),
            "banner": window.live.banner.title.text(), "banner_line": window.live.banner.reasons.text(),
            "letter_px": window.live.banner.title.font().pixelSize(), "shot": str(shot),
            "alarm": window.live.alarms.message, "product": window.live.day.chosen_product()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--model", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--shots", required=True)
    p.add_argument("--seconds", type=float, default=60.0)
    a = p.parse_args(argv)
    from ui.app import drop_foreign_qt_plugins

    drop_foreign_qt_plugins()
    from inspector.core.config import Config, config_from_dict
    from station import DEFAULT_SOURCE, StationSpec
    from ui.app import build_window, show_on_screen
    from ui.theme import apply_theme

    data = Config().model_dump(mode="python")
    if a.model:
        data["model"]["path"] = Path(a.model)
    data.update(DAY)  # a plant's day: two products, three shifts, alarm rules
    spec = StationSpec(DEFAULT_SOURCE, a.db, config_from_dict(data), loop=True, product="bracket-A", lot="L-2611",
                       work_order="WO-4471")
    shots = Path(a.shots)
    shots.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app)
    window = build_window(spec)
    show_on_screen(window)
    screen = app.primaryScreen()
    views = []
    window.start()
    shown = wait_for(lambda: window.live.last is not None, a.seconds)
    pump(2.0)
    from inspector.core.auth import Role
    from tests.conftest import signed

    for i in range(window.tabs.count()):  # a QC signed in: the tabs for QC and admin only are shown too
        tab = window.tabs.widget(i)
        if hasattr(tab, "access_changed"):
            tab.actor = signed("probe-qc", Role.QC)
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        tab = window.tabs.widget(i)
        if hasattr(tab, "idle"):
            wait_for(lambda tab=tab: tab.idle, 20)
        v = view(window, screen, f"tab-{window.tabs.tabText(i).lower()}", shots)
        if hasattr(tab, "table"):
            v["columns"] = review_columns(tab)
            v["rows"] = tab.model.rowCount()
        views.append(v)
    window.tabs.setCurrentIndex(0)
    wait_for(lambda: window.live.alarms.message, 30)  # raised by the [alarms] rules on the sample line
    v = view(window, screen, "alarm", shots)
    window.live.alarms.button.click()  # a fresh install: acknowledged without a sign-in, recorded
    wait_for(lambda: "acknowledged by" in window.statusBar().currentMessage(), 20)
    v["acked"] = window.statusBar().currentMessage()
    views.append(v)
    window.toggle_kiosk()
    views.append(view(window, screen, "kiosk", shots))
    window.toggle_kiosk()
    window.toggle_pause()
    views.append(view(window, screen, "paused", shots))
    window.stop()
    wait_for(lambda: window.controller.idle, 60)
    views.append(view(window, screen, "stopped", shots))
    Path(a.out).write_text(json.dumps({"shown_parts": shown, "views": views}, indent=1))
    window.close()
    window.controller.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The "Live" tab: verdict banner, counters, current frame, health and the last failures.

It takes the ``LiveController`` in its constructor and only listens to its signals. The banner has one
rendering per state of the line: STARTING, RUNNING (the verdict of the newest part), PAUSED, STOPPING,
STOPPED and NOT READY (with the reason); outside RUNNING the last verdict shows only as "last part".
The layout follows the screen: the counters run in one row under the banner, the health column scrolls
when the screen is short, and the letter sizes follow the tab's size (much larger in kiosk).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QScrollArea, QVBoxLayout, QWidget

from inspector.core.types import Verdict
from ui import theme
from ui.bridge import LiveResult
from ui.controller import LiveController, RunEnd, RunInfo
from ui.counters import CountersPanel
from ui.day_panel import AlarmBanner, DayPanel
from ui.failures import FailureStrip, PartDialog
from ui.health import HealthPanel
from ui.io_panel import IoPanel, LinkDownBanner
from ui.live_view import LAST_PART, ErrorBanner, FrameCanvas, VerdictBanner
from ui.theme import part_name

SIDE_WIDTH = 430
COMPACT_SIDE_WIDTH = 300
COMPACT_WIDTH = 1400  # below this screen size (panel PCs: 1024x768, 1280x720) side column and tiles shrink
COMPACT_HEIGHT = 800


def letter_pixels(screen_height: int, kiosk: bool) -> int:
    """The banner's letter height on a screen ``screen_height`` pixels high: in kiosk about a sixth of it
    (about 180 px, 5 cm, on a 24" 1080p screen: readable from 5 m), else about a sixteenth. From the
    screen, not the tab: the tab's size follows the letters, and must not feed back into them."""
    if kiosk:
        return int(max(72, min(260, screen_height * 0.17)))
    return int(max(34, min(84, screen_height * 0.06)))


class LiveTab(QWidget):
    def __init__(self, controller: LiveController, parent: QWidget | None = None, fail_hold_s: float = 0.0) -> None:
        super().__init__(parent)
        self.controller = controller
        self.error = ErrorBanner()
        self.banner = VerdictBanner(hold_s=fail_hold_s)
        self.canvas = FrameCanvas()
        self.banner.shown.connect(self._show_part)  # the picture follows the banner (a held FAIL keeps its own)
        self.counters = CountersPanel()
        self.health = HealthPanel()
        self.io = IoPanel()
        self.link_banner = LinkDownBanner()
        self.alarms = AlarmBanner()
        self.day = DayPanel()
        self.strip = FailureStrip()
        self.roi: tuple[float, float, float, float] | None = None
        self.last: LiveResult | None = None
        self.run_id: int | None = None
        self.dialog: PartDialog | None = None
        self.kiosk = False
        self._failure: str | None = None

        # an anomaly model's heat map over the picture: H or the box; greyed while the part shown has none
        self.heat_box = QCheckBox("Heat map  H")
        self.heat_box.setToolTip("Draw the anomaly model's heat map over the picture (H). A detector gives none.")
        self.heat_box.setChecked(self.canvas.show_heat)
        self.heat_box.setEnabled(False)
        self.heat_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must reach the pause shortcut
        self.heat_box.toggled.connect(self.canvas.set_show_heat)
        self.heat_key = QShortcut(QKeySequence("H"), self)  # only while this tab is shown
        self.heat_key.activated.connect(self.heat_box.toggle)

        column = QWidget()  # health and the line's I/O, one column that scrolls on a short screen
        col = QVBoxLayout(column)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(10)
        col.addWidget(self.heat_box)
        col.addWidget(self.day)
        col.addWidget(self.health)
        col.addWidget(self.io)
        col.addStretch(1)
        side = QScrollArea()  # a short screen scrolls the health rows instead of squeezing them
        side.setWidgetResizable(True)
        side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side.setFrameShape(QFrame.Shape.NoFrame)
        side.setWidget(column)
        side.setFixedWidth(SIDE_WIDTH)
        self.side = side
        middle = QHBoxLayout()
        middle.setSpacing(10)
        middle.addWidget(self.canvas, 1)
        middle.addWidget(side)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(8)
        lay.addWidget(self.link_banner)
        lay.addWidget(self.alarms)
        lay.addWidget(self.error)
        lay.addWidget(self.banner)
        lay.addWidget(self.counters)
        lay.addLayout(middle, 1)
        lay.addWidget(self.strip)

        controller.results.connect(self.show_results)
        controller.stats.connect(self.counters.show_stats)
        controller.stats.connect(self.health.show_stats)
        controller.camera.connect(self.health.show_camera)
        controller.line.connect(self.io.show_status)
        controller.line.connect(self.link_banner.show_status)
        controller.state_changed.connect(self._state_changed)
        controller.started.connect(self._started)
        controller.finished.connect(self._finished)
        controller.failed.connect(self._failed)
        controller.alarm.connect(self.alarms.add)
        controller.alarm_acked.connect(lambda alarm_id, _who: self.alarms.remove(alarm_id))
        controller.day.connect(self.day.show_day)
        self.strip.opened.connect(self.open_part)
        self.canvas.resized.connect(controller.set_display_size)

    # sizes --------------------------------------------------------------------------------------
    def set_kiosk(self, kiosk: bool) -> None:
        self.kiosk = kiosk
        self.fit_screen()

    def showEvent(self, e: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(e)
        self.fit_screen()

    def fit_screen(self) -> None:
        """Sizes for the screen the window is on."""
        screen = self.screen()
        geo = screen.geometry() if self.kiosk else screen.availableGeometry()
        width, height = geo.width(), geo.height()
        compact = width < COMPACT_WIDTH or height < COMPACT_HEIGHT
        self.banner.set_letter_size(letter_pixels(height, self.kiosk))
        self.counters.set_compact(compact and not self.kiosk)
        self.side.setFixedWidth(COMPACT_SIDE_WIDTH if compact else SIDE_WIDTH)
        self.side.setVisible(not (self.kiosk and height < 900))

    # parts --------------------------------------------------------------------------------------
    def show_results(self, results: tuple[LiveResult, ...]) -> None:
        for r in results:
            if r.verdict == Verdict.FAIL:  # every FAIL, with its thumbnail when the bridge made one
                self.strip.add(r, part_name(self.run_id, r.seq))
        last = results[-1]
        if self.last is None or last.model_sha256 != self.last.model_sha256:
            self.health.show_model(last.model_sha256)
        self.last = last
        state = self.controller.state
        if state == "paused":  # parts already read are still judged: they show as the last part
            self._show_part(last)
            self.banner.show_idle("PAUSED", self._idle_line("Space to resume"))
        elif state == "stopping":
            self._show_part(last)
            self.banner.show_idle("STOPPING", self._idle_line("writing the last parts"))
        else:
            # every FAIL of the batch goes up for its own hold (the bridge sends a batch's FAILs, then its newest
            # part), in order; the banner shows the newest part once no FAIL is held
            for r in results:
                if r.verdict == Verdict.FAIL or r is last:
                    self.banner.show_verdict(r.verdict, r.reasons, r)

    def _show_part(self, result: object) -> None:
        if isinstance(result, LiveResult):
            self.canvas.show_result(result)
            self.heat_box.setEnabled(result.heat is not None)

    def last_part_text(self) -> str:
        """'last part: run 3 part 12 ✖ FAIL', or '' before the first part."""
        if self.last is None:
            return ""
        return f"{LAST_PART}: {part_name(self.run_id, self.last.seq)} {theme.verdict_label(self.last.verdict)}"

    def open_part(self, result: LiveResult) -> PartDialog:
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = PartDialog(result, self.roi, self, part_name(self.run_id, result.seq))
        self.dialog.show()
        return self.dialog

    # the line's state ---------------------------------------------------------------------------
    def _idle_line(self, *parts: str) -> str:
        return " · ".join(p for p in (*parts, self.last_part_text()) if p)

    def _started(self, info: RunInfo) -> None:
        self.error.clear()
        self._failure = None
        self.run_id = info.run_id
        self.health.show_run(info)
        if info.day is not None:
            self.day.show_day(info.day)
        self.roi = info.roi
        self.canvas.set_roi(info.roi)
        self.canvas.set_placeholder("Loading the model…")
        self.banner.show_idle("RUNNING", f"Run {info.run_id} · {info.source} · waiting for the first part")

    def _finished(self, end: RunEnd) -> None:
        self.link_banner.show_status(None)  # the run closed its links: nothing is down now
        if end.reason.startswith("error"):
            self.banner.show_idle("NOT READY", self._idle_line(end.reason.removeprefix("error: ")))
        else:
            self.banner.show_idle("STOPPED", self._idle_line(f"run {end.reason}", "F5 to start"))
        if self.last is None:
            self.canvas.set_placeholder("No part was inspected. Choose a source and press F5 to start.")

    def _failed(self, message: str) -> None:
        self.error.show_error(message)
        self._failure = message
        if self.controller.state == "idle":  # the station could not be built: nothing runs
            self.banner.show_idle("NOT READY", message)
            self.health.show_not_ready()

    def _state_changed(self, state: str) -> None:
        self.health.show_state(state)
        if state == "starting":
            self.last = None
            self.run_id = None
            self.counters.reset()
            self.strip.clear()
            self.canvas.show_result(None)
            self.heat_box.setEnabled(False)
            self.canvas.set_placeholder("Starting…")
            self.health.show_starting()
            self.banner.show_idle("STARTING", "Opening the database, checking the model and the source…")
        elif state == "paused":
            self.banner.show_idle("PAUSED", self._idle_line("Space to resume"))
        elif state == "running" and self.last is not None:  # resumed
            self.banner.show_verdict(self.last.verdict, self.last.reasons, self.last)
        elif state == "stopping":
            self.banner.show_idle("STOPPING", self._idle_line("writing the last parts"))

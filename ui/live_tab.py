"""The "Live" tab: verdict banner, current frame, counters, health and the last failures.

It takes the ``LiveController`` in its constructor and only listens to its signals.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from inspector.types import Verdict
from ui.bridge import LiveResult
from ui.controller import LiveController, RunEnd, RunInfo
from ui.counters import CountersPanel
from ui.failures import FailureStrip, PartDialog
from ui.health import HealthPanel
from ui.io_panel import IoPanel, LinkDownBanner
from ui.live_view import ErrorBanner, FrameCanvas, VerdictBanner

SIDE_WIDTH = 430


class LiveTab(QWidget):
    def __init__(self, controller: LiveController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.error = ErrorBanner()
        self.banner = VerdictBanner()
        self.canvas = FrameCanvas()
        self.counters = CountersPanel()
        self.health = HealthPanel()
        self.io = IoPanel()
        self.link_banner = LinkDownBanner()
        self.strip = FailureStrip()
        self.roi: tuple[float, float, float, float] | None = None
        self.last: LiveResult | None = None
        self.dialog: PartDialog | None = None

        side = QVBoxLayout()
        side.setSpacing(10)
        side.addWidget(self.counters)
        side.addWidget(self.health)
        side.addWidget(self.io)
        side.addStretch(1)
        side_box = QWidget()
        side_box.setLayout(side)
        side_box.setFixedWidth(SIDE_WIDTH)
        middle = QHBoxLayout()
        middle.setSpacing(10)
        middle.addWidget(self.canvas, 1)
        middle.addWidget(side_box)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(10)
        lay.addWidget(self.link_banner)
        lay.addWidget(self.error)
        lay.addWidget(self.banner)
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
        controller.failed.connect(self.error.show_error)
        self.strip.opened.connect(self.open_part)
        self.canvas.resized.connect(controller.set_display_size)

    def show_results(self, results: tuple[LiveResult, ...]) -> None:
        for r in results:
            if r.verdict == Verdict.FAIL and r.thumb is not None:
                self.strip.add(r)
        last = results[-1]
        self.last = last
        self.canvas.show_result(last)
        self.banner.show_verdict(last.verdict, last.reasons)

    def open_part(self, result: LiveResult) -> PartDialog:
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = PartDialog(result, self.roi, self)
        self.dialog.show()
        return self.dialog

    def _started(self, info: RunInfo) -> None:
        self.error.clear()
        self.counters.reset()
        self.strip.clear()
        self.health.show_run(info)
        self.roi = info.roi
        self.canvas.set_roi(info.roi)
        self.canvas.show_result(None)
        self.canvas.set_placeholder("Loading the model…")
        self.banner.show_idle("STARTING", f"Run {info.run_id} · {info.source}")

    def _finished(self, end: RunEnd) -> None:
        self.link_banner.show_status(None)  # the run closed its links: nothing is down now
        if self.last is None:
            self.canvas.set_placeholder("No part was inspected. Choose a source and press F5 to start.")
            self.banner.show_idle("STOPPED", end.reason)

    def _state_changed(self, state: str) -> None:
        self.health.show_state(state)
        if state == "starting":
            self.last = None
            self.banner.show_idle("STARTING", "Opening the database, checking the model and the source…")

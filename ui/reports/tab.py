"""The "Reports" tab: the figures of the QC report for a period or a run, and its PDF/HTML/CSV export.

The figures come from ``db.reporting.report_data`` (what the PDF is drawn from) on a pool thread; exports
run ``station.reports.make_report`` on another, with progress and Cancel. The GUI thread only draws.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QDateTime, Qt, QThreadPool
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDateTimeEdit,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inspector.core.auth import STATION_OPERATOR, Actor
from inspector.core.clock import zone_text
from inspector.core.types import Verdict
from inspector.reports import FORMATS, ReportData
from inspector.reports.data import fmt_pct, models_text
from ui import theme
from ui.live_view import ErrorBanner
from ui.reports.charts import BAD, GOOD, MID, BarChart, pareto_series, when_text, yield_series
from ui.review import service
from ui.review.filters import DayFields, run_text, to_aware
from ui.review.progress import JobBar, ProgressRelay
from ui.review.service import Database
from ui.tiles import VERDICT_TILES, Tile
from ui.workers import CountedJobs, operator_message, run_job

log = logging.getLogger(__name__)

PERIODS = (("Last 24 hours", "24h"), ("Today", "today"), ("Yesterday", "yesterday"), ("Last 7 days", "7d"),
           ("Between…", "custom"), ("One run", "run"))
STALE_S = 60.0
TILES = (*VERDICT_TILES,
         ("reviewed", "Reviewed", theme.TEXT),
         ("overrides", "Overrides", theme.TEXT),
         ("escapes", "Escapes", theme.VERDICT_COLOURS[Verdict.FAIL][0]))
TIPS = {"escapes": "Parts the model passed and QC failed", "overrides": "Reviews that changed a verdict by hand",
        "reviewed": "Parts with at least one review", "yield": "Pass / (inspected - not inspected), after review"}


def period(choice: str, since: dt.datetime, until: dt.datetime,
           now: dt.datetime | None = None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[since, until) of a period choice, in local time (aware); None bounds for "one run"."""
    now = now or dt.datetime.now().astimezone()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if choice == "24h":
        return now - dt.timedelta(days=1), None
    if choice == "today":
        return midnight, None
    if choice == "yesterday":
        return midnight - dt.timedelta(days=1), midnight
    if choice == "7d":
        return now - dt.timedelta(days=7), None
    if choice == "custom":
        return (since, until) if since <= until else (until, since)
    return None, None


class ReportsTab(QWidget):
    def __init__(self, db: Database, pool: QThreadPool | None = None, jobs: QThreadPool | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self.pool = pool or QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.jobs = jobs or QThreadPool(self)
        self.jobs.setMaxThreadCount(1)
        self.data: ReportData | None = None
        self.actor: Actor | None = None  # who signed in (review screen); writing a report file is a QC action
        self.loaded_at = 0.0
        self._jobs = CountedJobs(self.pool)
        self._token = 0
        self.last_folder = Path.home()
        self._build()
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)

    def _build(self) -> None:
        self.error = ErrorBanner()
        self.choice = QComboBox()
        for text, value in PERIODS:
            self.choice.addItem(text, value)
        now = QDateTime.currentDateTime()
        self.since = QDateTimeEdit(now.addDays(-1))
        self.until = QDateTimeEdit(now)
        for e in (self.since, self.until):
            e.setCalendarPopup(True)
            e.setDisplayFormat("yyyy-MM-dd HH:mm")
            e.dateTimeChanged.connect(self._changed)
        self.to_label = QLabel("to")
        self.run = QComboBox()
        self.run.setMinimumWidth(300)
        self.run.currentIndexChanged.connect(self._changed)
        self.choice.currentIndexChanged.connect(self._changed)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.export_buttons = {}
        top = QHBoxLayout()
        top.addWidget(QLabel("Period"))
        top.addWidget(self.choice)
        top.addWidget(self.since)
        top.addWidget(self.to_label)
        top.addWidget(self.until)
        top.addWidget(self.run)
        top.addWidget(self.refresh_button)
        top.addStretch(1)
        top.addWidget(QLabel("Export"))
        for fmt, kind in FORMATS.items():
            b = QPushButton(kind.label)
            b.setToolTip(f"Write this report as {kind.label}")
            b.clicked.connect(lambda _=False, f=fmt: self.export(f))
            top.addWidget(b)
            self.export_buttons[fmt] = b
        self.day = DayFields()
        self.day.changed.connect(self.refresh)
        day_row = QHBoxLayout()
        day_row.addWidget(self.day)
        day_row.addStretch(1)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet(f"color: {theme.MUTED};")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tiles: dict[str, Tile] = {}
        grid = QGridLayout()
        grid.setSpacing(8)
        for i, (key, caption, colour) in enumerate(TILES):
            self.tiles[key] = Tile(caption, colour, TIPS.get(key, ""), point_size=24, initial="–")
            grid.addWidget(self.tiles[key], 0, i)
        self.pareto = BarChart("Defects by class (parts finally FAIL or REVIEW)", "No defects in this period")
        self.yield_chart = BarChart("Yield per hour", "Nothing inspected in this period")
        charts = QHBoxLayout()
        charts.setSpacing(10)
        charts.addWidget(self.pareto, 1)
        charts.addWidget(self.yield_chart, 1)
        self.jobbar = JobBar()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 10, 10, 10)
        lay.setSpacing(10)
        lay.addWidget(self.error)
        lay.addLayout(top)
        lay.addLayout(day_row)
        lay.addWidget(self.summary)
        lay.addLayout(grid)
        lay.addLayout(charts, 1)
        lay.addWidget(self.jobbar)
        self._show_inputs()

    # the period ---------------------------------------------------------------------------------
    def _show_inputs(self) -> None:
        choice = self.choice.currentData()
        for w in (self.since, self.to_label, self.until):
            w.setVisible(choice == "custom")
        self.run.setVisible(choice == "run")

    def _changed(self, *_a: object) -> None:
        self._show_inputs()
        if self.choice.currentData() == "run" and self.run.currentData() is None:
            return  # the runs are still loading
        self.refresh()

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None, int | None]:
        choice = self.choice.currentData()
        since, until = period(choice, to_aware(self.since.dateTime()), to_aware(self.until.dateTime()))
        return since, until, (self.run.currentData() if choice == "run" else None)

    def choose(self, value: str) -> None:
        self.choice.setCurrentIndex(self.choice.findData(value))

    # loading ------------------------------------------------------------------------------------
    def showEvent(self, e: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(e)
        if time.monotonic() - self.loaded_at > STALE_S or self.data is None:
            self.refresh()

    @property
    def idle(self) -> bool:
        return self._jobs.in_flight == 0

    def refresh_choices(self) -> None:
        """The runs to choose from again (a run started on the live screen shows without Refresh)."""
        db = self.db
        self._jobs.run(lambda: service.choices(db), self._set_runs, self._failed, "report runs")

    def refresh(self) -> None:
        db = self.db
        self.loaded_at = time.monotonic()
        self.refresh_choices()
        since, until, run_id = self.bounds()
        day = self.day.value()
        if self.choice.currentData() == "run" and run_id is None:
            return
        self._token += 1
        token = self._token
        self.summary.setText("Loading…")

        def work() -> ReportData:
            from db.reporting import report_data

            with db.sessions()() as s, s.begin():
                return report_data(s, since, until, run_id, worst=0, day=day)

        self._jobs.run(work, lambda d: self._show(token, d), self._failed, "report data")

    def _set_runs(self, choices: service.Choices) -> None:
        current = self.run.currentData()
        self.run.blockSignals(True)
        self.run.clear()
        for r in choices.runs:
            self.run.addItem(run_text(r), r.id)
        i = self.run.findData(current) if current is not None else 0
        self.run.setCurrentIndex(max(0, i))
        self.run.blockSignals(False)

    def _failed(self, e: BaseException) -> None:
        self.summary.setText("")
        self.error.show_error(operator_message(e))

    def _show(self, token: int, d: ReportData) -> None:
        if token != self._token:
            return
        self.data = d
        self.error.clear()
        t = d.totals
        values = {"inspected": t.inspected, "pass": t.passed, "fail": t.failed, "review": t.review,
                  "not_inspected": t.not_inspected, "reviewed": d.reviewed, "overrides": d.overrides,
                  "escapes": d.escapes}
        for key, v in values.items():
            self.tiles[key].value.setText(f"{v:,}")
        self.tiles["yield"].value.setText(fmt_pct(t.yield_pct).replace("%", " %"))
        runs = ", ".join(str(r) for r in d.runs[:12]) + (" …" if len(d.runs) > 12 else "")
        period = f"{when_text(d.period_start)} to {when_text(d.period_end)} ({zone_text(d.period_end)})"
        self.summary.setText(f"{period}   ·   "
                             f"Station: {', '.join(d.stations) or '–'}   ·   Model: {models_text(d)}   ·   "
                             f"Runs: {runs or '–'}")
        self.pareto.set_series(pareto_series(d.pareto) if d.pareto else None)
        self.yield_chart.title = f"Yield per {d.bucket_name}"
        self.yield_chart.set_series(yield_series(d.yield_series, d.bucket_hours) if d.yield_series else None,
                                    ((GOOD, "≥ 95 %"), (MID, "80–95 %"), (BAD, "< 80 %")))

    # exports ------------------------------------------------------------------------------------
    def export(self, fmt: str, out: Path | None = None) -> None:
        """Write the report shown as ``fmt`` (pdf, html, csv) to ``out`` (asked when None)."""
        if self.jobbar.running:
            return
        if out is None:
            name = f"inspector-report-{dt.datetime.now():%Y%m%d-%H%M}.{fmt}"
            chosen, _ = QFileDialog.getSaveFileName(self, f"Save the {fmt.upper()} report",
                                                    str(self.last_folder / name),
                                                    f"{fmt.upper()} (*.{fmt});;All files (*)")
            if not chosen:
                return
            out = Path(chosen)
        out = Path(out)
        self.last_folder = out.parent
        since, until, run_id = self.bounds()
        day = self.day.value()
        db, actor = self.db, self.actor
        cancel = self.jobbar.start(f"Writing {out.name}…")
        relay = ProgressRelay(self)
        relay.progress.connect(self.jobbar.set_progress)
        for b in self.export_buttons.values():
            b.setEnabled(False)

        def work() -> Any:
            from db import authorize
            from station.reports import make_report

            with db.sessions().begin() as s:  # once the station has users: a signed-in QC (inspector.core.auth)
                authorize(s, None if actor == STATION_OPERATOR else actor, "report")
            return make_report(db.sessions(), fmt, out, since=since, until=until, run_id=run_id,
                               image_root=db.image_root, progress=relay, cancel=cancel, day=day)

        def done(result: Any) -> None:
            self._export_ended(relay)
            if isinstance(result, int):
                from inspector.reports import detections_path

                text = f"Wrote {out} ({result:,} inspections) and {detections_path(out).name}."
            else:
                text = f"Wrote {out} ({result.totals.inspected:,} inspections)."
            self.jobbar.finish(text, out.parent)

        def failed(e: BaseException) -> None:
            self._export_ended(relay)
            self.jobbar.fail(operator_message(e))

        run_job(self.jobs, work, done, failed, f"report {fmt}")

    def _export_ended(self, relay: ProgressRelay) -> None:
        relay.deleteLater()
        for b in self.export_buttons.values():
            b.setEnabled(True)

    def shutdown(self) -> None:
        if self.jobbar.cancel_event is not None:
            self.jobbar.cancel_event.set()
        self.pool.waitForDone(10_000)
        self.jobs.waitForDone(10_000)
        self.db.close()

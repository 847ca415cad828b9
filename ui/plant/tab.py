"""The "Plant" tab: every station of the shared database (its model, its outbox backlog as it last reported it,
how old that report is) and the alarms of the plant or of one station (a filter, as the Review screen's).

Queries run on the pool (``ui.plant.service``); the GUI thread only draws. Read-only: alarms are acknowledged on
the live screen of the station that raised them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QThreadPool, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui import theme
from ui.live_view import ErrorBanner
from ui.plant.service import PlantOverview, PlantService, StationRow
from ui.review.service import local_text
from ui.workers import CountedJobs, operator_message

REFRESH_MS = 10_000  # while the tab is shown
STATION_COLUMNS = ("Station", "Model", "Outbox", "Peak", "Last report", "Key")
ALARM_COLUMNS = ("Raised", "Station", "Rule", "Message", "Acknowledged")


def report_text(row: StationRow, now: dt.datetime) -> str:
    """When the station last reported, in words; a running station gone quiet says so (never colour alone)."""
    if row.reported_at is None:
        return "never reported"
    age = max(0, round((now - row.reported_at).total_seconds()))
    if row.stale(now):
        return f"NO REPORT for {age} s: cut off from the server, or stopped"
    return f"{age} s ago" + (" (run ended)" if row.state == "ended" else "")


def _table(columns: tuple[str, ...], stretch: int) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(list(columns))
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().hide()
    t.horizontalHeader().setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    t.setWordWrap(False)
    return t


class PlantTab(QWidget):
    def __init__(self, service: PlantService, pool: QThreadPool | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self._jobs = CountedJobs(pool or QThreadPool.globalInstance())
        self.overview: PlantOverview | None = None
        self.alarm_rows: list = []
        self.error = ErrorBanner()
        self.summary = QLabel("Reading the plant's stations…")
        self.summary.setWordWrap(True)
        self.stations = _table(STATION_COLUMNS, 4)
        self.stations.itemSelectionChanged.connect(self._station_picked)
        self.station = QLineEdit()  # the alarms' station filter, as the Review screen's
        self.station.setPlaceholderText("any station")
        self.station.setClearButtonEnabled(True)
        self.station.setToolTip("Only this station's alarms (empty: the whole plant); a click on a station above "
                                "fills it in")
        self.station.editingFinished.connect(self.refresh_alarms)
        self.open_only = QCheckBox("Open only")
        self.open_only.setToolTip("Only alarms nobody acknowledged yet")
        self.open_only.toggled.connect(lambda _=False: self.refresh_alarms())
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(lambda: self.refresh())
        self.alarms = _table(ALARM_COLUMNS, 3)
        self.alarms_note = QLabel("")
        self.alarms_note.setStyleSheet(f"color: {theme.MUTED};")
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Alarms</b>"))
        head.addSpacing(12)
        head.addWidget(QLabel("Station"))
        head.addWidget(self.station, 1)
        head.addWidget(self.open_only)
        head.addStretch(1)
        head.addWidget(refresh)
        lay = QVBoxLayout(self)
        lay.addWidget(self.error)
        lay.addWidget(self.summary)
        lay.addWidget(self.stations, 2)
        lay.addLayout(head)
        lay.addWidget(self.alarms, 3)
        lay.addWidget(self.alarms_note)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    @property
    def idle(self) -> bool:
        return self._jobs.in_flight == 0

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.refresh()
        self._timer.start()

    def hideEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt's name
        super().hideEvent(event)
        self._timer.stop()

    def refresh(self) -> None:
        self._run(self.service.overview, self._show_overview, "plant overview")
        self.refresh_alarms()

    def set_station(self, station: str) -> None:
        """Filter the alarms to ``station`` ('' : the whole plant), as typing it does."""
        self.station.setText(station)
        self.refresh_alarms()

    def refresh_alarms(self) -> None:
        station, open_only = self.station.text().strip() or None, self.open_only.isChecked()
        self._run(lambda: (station, self.service.alarms(station, open_only)), self._show_alarms, "alarms")

    def _show_overview(self, ov: PlantOverview) -> None:
        self.overview = ov
        quiet = [s.name for s in ov.stations if s.stale(ov.read_at)]
        self.summary.setText(
            f"{len(ov.stations)} station(s) in this database (this one: {self.service.station}); outbox backlog "
            f"{ov.backlog} record(s) in all, as last reported"
            + (f"; NO RECENT REPORT from {', '.join(quiet)}: their backlog may be larger" if quiet else "") + ".")
        self.stations.setRowCount(len(ov.stations))
        for r, s in enumerate(ov.stations):
            cells = (s.name + (" (this station)" if s.name == self.service.station else ""), s.model or "–",
                     "–" if s.backlog is None else str(s.backlog), "–" if s.peak is None else str(s.peak),
                     report_text(s, ov.read_at), s.fingerprint or "no key (HMAC seals)")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.stations.setItem(r, c, item)
        for c in range(len(STATION_COLUMNS) - 1):
            if c != 4:
                self.stations.resizeColumnToContents(c)

    def _station_picked(self) -> None:
        rows = self.stations.selectionModel().selectedRows()
        if rows and self.overview is not None and rows[0].row() < len(self.overview.stations):
            self.set_station(self.overview.stations[rows[0].row()].name)

    def _show_alarms(self, result: tuple[str | None, list]) -> None:
        station, found = result
        if station != (self.station.text().strip() or None):
            return  # the filter changed meanwhile: its own answer is on the way
        self.alarm_rows = found
        self.alarms.setRowCount(len(found))
        for r, a in enumerate(found):
            ack = f"{a.acked_by}, {local_text(a.acked_at, seconds=False)}" if a.acked_by else "OPEN"
            for c, text in enumerate((local_text(a.raised_at, seconds=False), a.station, a.rule, a.message, ack)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.alarms.setItem(r, c, item)
        self.alarms.resizeColumnsToContents()
        self.alarms.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        where = f"station {station}" if station else "the whole plant"
        self.alarms_note.setText(f"{len(found)} alarm(s) of {where}, newest first (at most 200); an alarm is "
                                 "acknowledged on the live screen of the station that raised it.")

    def _run(self, fn: Callable[[], Any], done: Callable[[Any], None], name: str) -> None:
        self._jobs.run(fn, done, lambda e: self.error.show_error(operator_message(e)), name)

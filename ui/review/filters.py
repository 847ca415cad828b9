"""The review table's filters: period, final verdict, "model said X, QC said Y", defect class, run, reviewed,
and the plant's day (product, lot, shift, station)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import QDateTime, Signal
from PySide6.QtWidgets import QComboBox, QDateTimeEdit, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QWidget

from db import DayFilter, InspectionFilter, RunDTO
from inspector.core.types import Verdict
from ui import theme
from ui.review.service import Choices, local_text

PERIODS = (("Any time", None), ("Last hour", dt.timedelta(hours=1)), ("Last 24 hours", dt.timedelta(days=1)),
           ("Today", "today"), ("Last 7 days", dt.timedelta(days=7)), ("Between…", "custom"))


def period_bounds(choice: Any, since: dt.datetime, until: dt.datetime,
                  now: dt.datetime | None = None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[since, until) for a period choice, timezone-aware; the custom one uses the two times given."""
    now = now or dt.datetime.now().astimezone()
    if choice is None:
        return None, None
    if choice == "custom":
        return since, until
    if choice == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0), None
    return now - choice, None


def to_aware(q: QDateTime) -> dt.datetime:
    """A QDateTime shown in local time, as an aware datetime."""
    return dt.datetime.fromtimestamp(q.toSecsSinceEpoch()).astimezone()


def _combo(items: list[tuple[str, Any]], min_width: int = 96) -> QComboBox:
    c = QComboBox()
    for text, value in items:
        c.addItem(text, value)
    c.setMinimumWidth(min_width)
    c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    c.setMinimumContentsLength(8)  # long run names do not widen the bar; the list shows them whole
    return c


def _verdicts(any_text: str) -> list[tuple[str, Any]]:
    return [(any_text, None)] + [(theme.VERDICT_TEXT[v], v.value) for v in Verdict]


def run_text(r: RunDTO) -> str:
    where = r.station or r.source
    return f"Run {r.id} · {where} · {local_text(r.started_at, seconds=False)}"


class DayFields(QWidget):
    """Product, lot and shift (``2026-11-30/A``) as typed, and the station (a plant's stations share one database):
    the plant's day a review list or report is about."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.fields: dict[str, QLineEdit] = {}
        for name, hint, width in (("product", "any product", 110), ("lot", "any lot", 90),
                                  ("shift", "2026-11-30/A", 110), ("station", "any station", 90)):
            f = QLineEdit()
            f.setPlaceholderText(hint)
            f.setClearButtonEnabled(True)
            f.setMinimumWidth(width)
            f.setToolTip(f"Only parts of this {name} (as stored on each part; empty: any)")
            f.editingFinished.connect(self._edited)
            lay.addWidget(FilterBar._caption(name.capitalize()))
            lay.addWidget(f, 1)
            self.fields[name] = f
        self._last = self.value()

    def _edited(self) -> None:
        if self.value() != self._last:
            self._last = self.value()
            self.changed.emit()

    def set(self, **values: str) -> None:
        """Type into the fields (tests, shortcuts) and apply."""
        for name, text in values.items():
            self.fields[name].setText(text)
        self._edited()

    def value(self) -> DayFilter | None:
        day = DayFilter(**{k: (f.text().strip() or None) for k, f in self.fields.items()})
        return day if day else None


class FilterBar(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.period = _combo([(t, v) for t, v in PERIODS])
        now = QDateTime.currentDateTime()
        self.since = QDateTimeEdit(now.addDays(-1))
        self.until = QDateTimeEdit(now.addSecs(3600))
        for e in (self.since, self.until):
            e.setCalendarPopup(True)
            e.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.run = _combo([("All runs", None)], 160)
        self.machine = _combo(_verdicts("any"))
        self.final = _combo(_verdicts("any"))
        self.label = _combo([("Any class", None)])
        self.reviewed = _combo([("Reviewed or not", None), ("Reviewed", True), ("Not reviewed", False)], 120)
        self.reviewed.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(6)
        row1 = QHBoxLayout()  # three short rows: the bar fits a 1024 px screen's half
        row1.addWidget(self.period)
        row1.addWidget(self.since)
        self.to_label = QLabel("to")
        row1.addWidget(self.to_label)
        row1.addWidget(self.until)
        row1.addStretch(1)
        row1.addWidget(self.reviewed)
        self.day = DayFields()
        self.day.changed.connect(self._changed)
        row2 = QHBoxLayout()
        row2.addWidget(self._caption("Run"))
        row2.addWidget(self.run, 1)
        row3 = QHBoxLayout()
        row3.addWidget(self._caption("Model said"))
        row3.addWidget(self.machine)
        row3.addWidget(self._caption("Final"))
        row3.addWidget(self.final)
        row3.addWidget(self._caption("Class"))
        row3.addWidget(self.label)
        row3.addStretch(1)
        grid.addLayout(row1, 0, 0)
        grid.addLayout(row2, 1, 0)
        grid.addLayout(row3, 2, 0)
        grid.addWidget(self.day, 3, 0)  # a row of its own: a lot or shift is read whole
        for c in (self.period, self.run, self.machine, self.final, self.label, self.reviewed):
            c.currentIndexChanged.connect(self._changed)
        for e in (self.since, self.until):
            e.dateTimeChanged.connect(self._changed)
        self._show_custom()

    @staticmethod
    def _caption(text: str) -> QLabel:
        lab = QLabel(text)
        lab.setStyleSheet(f"color: {theme.MUTED};")
        return lab

    def _show_custom(self) -> None:
        custom = self.period.currentData() == "custom"
        for w in (self.since, self.to_label, self.until):
            w.setVisible(custom)

    def _changed(self, *_args: object) -> None:
        self._show_custom()
        self.changed.emit()

    def set_choices(self, choices: Choices) -> None:
        """Runs and classes from the database; the current choices are kept where they still exist."""
        for combo, items in ((self.run, [(run_text(r), r.id) for r in choices.runs]),
                             (self.label, [(lab, lab) for lab in choices.labels])):
            current = combo.currentData()
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(1)
            for text, value in items:
                combo.addItem(text, value)
            i = combo.findData(current)
            combo.setCurrentIndex(max(0, i))
            combo.blockSignals(False)

    def choose(self, combo: QComboBox, value: Any) -> None:
        """Select the item holding ``value`` (tests and shortcuts)."""
        i = 0 if value is None else combo.findData(value)
        if i < 0:
            raise ValueError(f"expected one of {[combo.itemData(k) for k in range(combo.count())]}, got {value!r}")
        combo.setCurrentIndex(i)

    def value(self) -> InspectionFilter:
        since, until = period_bounds(self.period.currentData(), to_aware(self.since.dateTime()),
                                     to_aware(self.until.dateTime()))
        if since is not None and until is not None and until < since:
            since, until = until, since
        return InspectionFilter(since=since, until=until, run_id=self.run.currentData(),
                                machine_verdict=self.machine.currentData(), final_verdict=self.final.currentData(),
                                label=self.label.currentData(), reviewed=self.reviewed.currentData(),
                                day=self.day.value())

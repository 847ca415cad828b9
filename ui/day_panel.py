"""The plant's day on the live screen: the product picked from a list, lot and work order typed in, the shift
of the station's clock, and the alarm banner an operator acknowledges.

Widgets only: they show what they are given and emit what the operator asks; the window checks, records and
applies it (``ui.main_window``)."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inspector.core.day import MAX_TEXT, DayContext, Shifts
from ui import theme
from ui.bridge import AlarmEvent

NO_PRODUCT = "(no product)"
SHIFT_REFRESH_MS = 30_000


class _LeavingLineEdit(QLineEdit):
    """A text field that Escape leaves (Enter leaves it too, once its text is recorded), so that the window's
    one-key shortcuts (Space: pause) work again without reaching for the mouse."""

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if e.key() == Qt.Key.Key_Escape:
            self.clearFocus()
            return
        super().keyPressEvent(e)


class DayPanel(QFrame):
    """Product, lot, work order and shift; ``Edit product…`` opens the region of interest and thresholds."""

    product_chosen = Signal(str)  # "" for no product
    lot_entered = Signal(str, str)  # lot, work order
    edit_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dayPanel")
        self.setStyleSheet(f"QFrame#dayPanel {{ background: {theme.PANEL}; border: 1px solid {theme.PANEL_EDGE};"
                           " border-radius: 6px; }")
        self.shifts = Shifts()
        self.product = QComboBox()
        self.product.setToolTip("The product on the line: its model, recipe and region of interest judge the parts")
        self.product.activated.connect(lambda _i: self.product_chosen.emit(self.chosen_product()))
        self.lot = self._field("Lot (stored on every part)")
        self.work_order = self._field("Work order (stored on every part)")
        self.apply = QPushButton("Set lot")
        self.apply.setToolTip("Record the lot and work order for the next parts (Enter)")
        self.apply.clicked.connect(self._enter_lot)
        self.shift = QLabel("-")
        self.edit = QPushButton("Edit product…")
        self.edit.setToolTip("Draw the region of interest and edit the per-class thresholds (QC sign-in)")
        self.edit.clicked.connect(self.edit_requested.emit)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setSpacing(4)
        form.addRow("Product", self.product)
        form.addRow("Lot", self.lot)
        form.addRow("Work order", self.work_order)
        form.addRow("Shift", self.shift)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply)
        buttons.addWidget(self.edit)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.addLayout(form)
        lay.addLayout(buttons)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh_shift)
        self._timer.start(SHIFT_REFRESH_MS)

    def _field(self, tip: str) -> QLineEdit:
        f = _LeavingLineEdit()
        f.setMaxLength(MAX_TEXT)
        f.setToolTip(f"{tip}; Enter records it, Escape leaves the field (Space then pauses the line again)")
        f.returnPressed.connect(self._enter_lot)
        f.returnPressed.connect(f.clearFocus)  # Space goes back to pausing the line
        return f

    def _enter_lot(self) -> None:
        self.lot_entered.emit(self.lot.text().strip(), self.work_order.text().strip())

    def set_products(self, names: list[str], shifts: Shifts) -> None:
        current = self.chosen_product()
        self.product.clear()
        self.product.addItems([NO_PRODUCT, *names])
        self.shifts = shifts
        self.select_product(current)
        self.refresh_shift()

    def chosen_product(self) -> str:
        text = self.product.currentText()
        return "" if text in ("", NO_PRODUCT) else text

    def select_product(self, name: str) -> None:
        i = self.product.findText(name or NO_PRODUCT)
        self.product.setCurrentIndex(max(0, i))
        self.edit.setEnabled(bool(name))

    def show_day(self, day: DayContext) -> None:
        """What is in force on the station (after a switch or at start)."""
        self.select_product(day.product)
        self.lot.setText(day.lot)
        self.work_order.setText(day.work_order)

    def refresh_shift(self, now: dt.datetime | None = None) -> None:
        label = self.shifts.label_at(now or dt.datetime.now(dt.timezone.utc))
        self.shift.setText(label or ("no shift now" if self.shifts.spans else "no [shifts] defined"))


class AlarmBanner(QFrame):
    """Above everything while an alarm is open: a warning triangle, a thick frame and the words, never colour
    alone; ``Acknowledge`` records who saw it. Several alarms show the oldest first and how many wait."""

    acknowledge = Signal(int)  # alarm id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alarmBanner")
        self.setStyleSheet("QFrame#alarmBanner { background: #5a3a00; border: 4px dashed #ffb224; border-radius: 6px; }"
                           " QFrame#alarmBanner QLabel { background: transparent; color: #ffffff; }")
        self.open: list[AlarmEvent] = []
        icon = QLabel("\u26a0")
        icon.setFont(QFont(self.font().family(), 24, QFont.Weight.Black))
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setFont(QFont(self.font().family(), 15, QFont.Weight.Bold))
        self.button = QPushButton("Acknowledge")
        self.button.setToolTip("Record that you saw this alarm (your name and the time go into the audit trail)")
        self.button.clicked.connect(lambda: self.open and self.acknowledge.emit(self.open[0].alarm_id))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 8, 6)
        lay.addWidget(icon)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def add(self, event: AlarmEvent) -> None:
        self.open.append(event)
        self._show()

    def remove(self, alarm_id: int) -> None:
        self.open = [e for e in self.open if e.alarm_id != alarm_id]
        self._show()

    def _show(self) -> None:
        if not self.open:
            self.text.clear()
            self.hide()
            return
        more = f"   (+{len(self.open) - 1} more)" if len(self.open) > 1 else ""
        self.text.setText(f"ALARM: {self.open[0].message}{more}")
        self.show()

    @property
    def message(self) -> str:
        return "" if self.isHidden() else self.text.text()

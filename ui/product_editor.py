"""Editing a product's recipe on the floor: the region of interest drawn with the mouse on the live image, and
the per-class thresholds in a table. What it returns is a validated ``RecipeConfig``; saving it (QC sign-in,
registration as a trusted recipe, audit) is the window's (``ui.settings_guard.product_guard``)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from inspector.core.config import RecipeConfig, config_from_dict
from inspector.core.errors import ConfigError
from ui import theme
from ui.bridge import LiveResult
from ui.live_view import FrameCanvas

ALL = "(all classes)"
COLUMNS = ("Class", "Fail at", "Review from", "Min area px")
FIELDS = ("fail_conf", "review_conf", "min_area_px")
MIN_ROI = 0.02  # a drag shorter than this share of the image is a click, not a region


class RoiCanvas(FrameCanvas):
    """The live image; drag a rectangle to set the region of interest (fractions of the image)."""

    roi_drawn = Signal(object)  # (x1, y1, x2, y2) or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, throttle=False)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self._from: tuple[float, float] | None = None

    def fraction(self, pos: QPointF) -> tuple[float, float] | None:
        r = self.image_rect()
        if r is None or r.width() <= 0 or r.height() <= 0:
            return None
        clamp = lambda v: min(1.0, max(0.0, v))  # noqa: E731
        return clamp((pos.x() - r.x()) / r.width()), clamp((pos.y() - r.y()) / r.height())

    def _span(self, to: tuple[float, float]) -> tuple[float, float, float, float] | None:
        if self._from is None:
            return None
        (ax, ay), (bx, by) = self._from, to
        box = tuple(round(v, 4) for v in (min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)))
        return box if box[2] - box[0] >= MIN_ROI and box[3] - box[1] >= MIN_ROI else None  # type: ignore[return-value]

    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        self._from = self.fraction(e.position())

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        at = self.fraction(e.position())
        if at is not None and self._span(at) is not None:
            self.set_roi(self._span(at))

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        at = self.fraction(e.position())
        roi = self._span(at) if at is not None else None
        self._from = None
        if roi is not None:
            self.set_roi(roi)
            self.roi_drawn.emit(roi)


def _cell(value: float | None) -> QTableWidgetItem:
    return QTableWidgetItem("" if value is None else f"{value:g}")


def _number(text: str, where: str) -> float | None:
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{where} = {text!r}: not a number") from None


class ProductEditor(QDialog):
    saved = Signal(object)  # RecipeConfig, validated

    def __init__(self, name: str, recipe: RecipeConfig, classes: Sequence[str], frame: LiveResult | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Product {name}: region of interest and thresholds")
        self.name, self.base = name, recipe
        self.canvas = RoiCanvas()
        self.canvas.show_result(frame)
        self.canvas.set_placeholder("No live image yet: start the line to draw on a part")
        self.canvas.set_roi(recipe.roi)
        whole = QPushButton("Whole image")
        whole.setToolTip("No region of interest: boxes anywhere in the image count")
        whole.clicked.connect(lambda: self.canvas.set_roi(None))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self._fill(recipe, classes)
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {theme.ERROR};")
        self.refusal: QMessageBox | None = None  # a refused Save, said on this dialog (never behind it)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        top = QHBoxLayout()
        top.addWidget(QLabel("Drag on the image to draw the region of interest (dashed)."), 1)
        top.addWidget(whole)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.canvas, 3)
        lay.addWidget(QLabel("Per-class thresholds (empty: the value of (all classes))"))
        lay.addWidget(self.table, 2)
        lay.addWidget(self.problem)
        lay.addWidget(buttons)
        screen = self.screen().availableGeometry()
        self.resize(min(900, screen.width() - 40), min(640, screen.height() - 60))

    def _fill(self, recipe: RecipeConfig, classes: Sequence[str]) -> None:
        names = list(dict.fromkeys([*classes, *recipe.classes]))
        self.table.setRowCount(1 + len(names))
        for row, label in enumerate([ALL, *names]):
            item = QTableWidgetItem(label)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, 0, item)
            rule = recipe if label == ALL else recipe.classes.get(label)
            for col, field in enumerate(FIELDS, start=1):
                self.table.setItem(row, col, _cell(getattr(rule, field) if rule is not None else None))

    def recipe(self) -> RecipeConfig:
        """The recipe as edited, validated whole (ConfigError naming the key otherwise)."""
        data = self.base.model_dump(mode="python")
        data["roi"], data["classes"] = self.canvas.roi, {}
        for row in range(self.table.rowCount()):
            label = self.table.item(row, 0).text()
            values = {f: _number(self.table.item(row, col).text() if self.table.item(row, col) else "",
                                 f"{label} {COLUMNS[col].lower()}") for col, f in enumerate(FIELDS, start=1)}
            if label == ALL:
                data.update({k: v for k, v in values.items() if v is not None})
            elif any(v is not None for v in values.values()):
                data["classes"][label] = {k: v for k, v in values.items() if v is not None}
        return config_from_dict({"recipe": data}, f"product {self.name}").recipe

    def save(self) -> None:
        try:
            recipe = self.recipe()
        except ConfigError as e:
            self.problem.setText(str(e))
            return
        self.problem.setText("")
        self.saved.emit(recipe)

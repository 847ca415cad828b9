"""The review image: the stored frame with the model's boxes and the reviewers' corrections; zoom, pan, draw.

Wheel or +/- zoom (about the cursor), a drag pans, B hides the boxes, H the anomaly model's heat map. In draw
mode a drag draws a box in the original image's pixels and ``box_drawn`` reports it; Esc leaves draw mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from inspector.core.types import BoxCorners
from ui import theme

MIN_ZOOM, MAX_ZOOM, STEP = 1.0, 16.0, 1.25
MIN_BOX = 3.0  # image pixels; a smaller drag is a click
CLICK_SLOP = 4  # screen pixels a click may move


@dataclass(frozen=True)
class CanvasBox(BoxCorners):
    """A box to draw, in original image pixels (``box``: the one ``Box``). ``kind``: machine, false (rejected by
    QC) or missed (QC's)."""

    key: int | None  # the detection id, for a machine box
    cls: int
    text: str
    x1: float
    y1: float
    x2: float
    y2: float
    kind: str = "machine"


class ReviewCanvas(QWidget):
    box_drawn = Signal(float, float, float, float)  # x1, y1, x2, y2 in image pixels
    box_clicked = Signal(int)  # detection id
    drawing_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(280, 160)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.pixmap: QPixmap | None = None
        self.image_size: tuple[int, int] | None = None
        self.boxes: tuple[CanvasBox, ...] = ()
        self.selected: int | None = None
        self.show_boxes = True
        self.heat: QPixmap | None = None  # an anomaly model's heat map overlay (None: the part has none)
        self.show_heat = True
        self.zoom = 1.0
        self.pan = QPointF(0, 0)
        self.drawing = False
        self.placeholder = "Select an inspection"
        self._press: QPointF | None = None
        self._press_pan = QPointF(0, 0)
        self._moved = False
        self._draft: tuple[QPointF, QPointF] | None = None  # image coordinates

    # content ------------------------------------------------------------------------------------
    def set_image(self, image: QImage | None, size: tuple[int, int] | None, boxes: tuple[CanvasBox, ...],
                  placeholder: str = "") -> None:
        """A new part: its image (None if not stored; ``size`` still places the boxes), boxes, and the view reset."""
        self.pixmap = QPixmap.fromImage(image) if image is not None else None
        self.heat = None
        self.image_size = (image.width(), image.height()) if image is not None else size
        self.boxes = boxes
        self.selected = None
        self.placeholder = placeholder
        self.set_drawing(False)
        self.reset_view()

    def set_heat(self, heat: QImage | None) -> None:
        """The part's heat map overlay (the picture's size), or None."""
        self.heat = QPixmap.fromImage(heat) if heat is not None else None
        self.update()

    def set_show_heat(self, on: bool) -> None:
        self.show_heat = bool(on)
        self.update()

    def heat_shown(self) -> bool:
        return self.show_heat and self.heat is not None and self.pixmap is not None

    def set_boxes(self, boxes: tuple[CanvasBox, ...]) -> None:
        self.boxes = boxes
        self.update()

    def clear(self, placeholder: str) -> None:
        self.set_image(None, None, (), placeholder)

    def select(self, key: int | None) -> None:
        self.selected = key
        self.update()

    def toggle_boxes(self) -> None:
        self.show_boxes = not self.show_boxes
        self.update()

    def set_drawing(self, on: bool) -> None:
        on = on and self.image_size is not None
        if on == self.drawing:
            return
        self.drawing = on
        self._draft = None
        self.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.drawing_changed.emit(on)
        self.update()

    # the view -----------------------------------------------------------------------------------
    def reset_view(self) -> None:
        self.zoom = 1.0
        self.pan = QPointF(0, 0)
        self.update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under ``anchor`` (default: the centre) where it is."""
        if self.image_size is None:
            return
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        before = self.to_image(anchor)
        self.zoom = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom * factor))
        if self.zoom == MIN_ZOOM:
            self.pan = QPointF(0, 0)
        else:
            origin, scale = self._origin_scale(QPointF(0, 0))
            self.pan = anchor - before * scale - origin
        self.update()

    def _origin_scale(self, pan: QPointF | None = None) -> tuple[QPointF, float]:
        """Where the image's (0, 0) lies on the widget, and screen pixels per image pixel."""
        assert self.image_size is not None
        iw, ih = self.image_size
        scale = min(self.width() / iw, self.height() / ih) * self.zoom
        centred = QPointF((self.width() - iw * scale) / 2, (self.height() - ih * scale) / 2)
        return centred + (self.pan if pan is None else pan), scale

    def to_image(self, p: QPointF) -> QPointF:
        origin, scale = self._origin_scale()
        return (p - origin) / scale

    def to_screen(self, x: float, y: float) -> QPointF:
        origin, scale = self._origin_scale()
        return origin + QPointF(x, y) * scale

    def _clamped(self, p: QPointF) -> QPointF:
        assert self.image_size is not None
        q = self.to_image(p)
        return QPointF(min(max(q.x(), 0.0), self.image_size[0]), min(max(q.y(), 0.0), self.image_size[1]))

    # mouse --------------------------------------------------------------------------------------
    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        steps = e.angleDelta().y() / 120
        if steps:
            self.zoom_by(STEP ** steps, e.position())
        e.accept()

    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if e.button() != Qt.MouseButton.LeftButton or self.image_size is None:
            return super().mousePressEvent(e)
        self._press = e.position()
        self._press_pan = QPointF(self.pan)
        self._moved = False
        if self.drawing:
            start = self._clamped(e.position())
            self._draft = (start, start)
        e.accept()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self._press is None:
            return
        delta = e.position() - self._press
        self._moved = self._moved or abs(delta.x()) + abs(delta.y()) > CLICK_SLOP
        if self.drawing and self._draft is not None:
            self._draft = (self._draft[0], self._clamped(e.position()))
        elif self._moved and self.zoom > MIN_ZOOM:
            self.pan = self._press_pan + delta
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        self.update()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self._press is None:
            return
        press, self._press = self._press, None
        if self.drawing and self._draft is not None:
            a, b = self._draft[0], self._clamped(e.position())
            self._draft = None
            x1, x2 = sorted((a.x(), b.x()))
            y1, y2 = sorted((a.y(), b.y()))
            if x2 - x1 >= MIN_BOX and y2 - y1 >= MIN_BOX:
                self.set_drawing(False)
                self.box_drawn.emit(round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))
            self.update()
            return
        self.setCursor(Qt.CursorShape.ArrowCursor)
        if not self._moved:
            hit = self.box_at(press)
            if hit is not None:
                self.box_clicked.emit(hit)

    def box_at(self, p: QPointF) -> int | None:
        """The smallest machine box under a screen point."""
        if self.image_size is None or not self.show_boxes:
            return None
        q = self.to_image(p)
        inside = [b for b in self.boxes if b.key is not None and b.x1 <= q.x() <= b.x2 and b.y1 <= q.y() <= b.y2]
        return min(inside, key=lambda b: (b.x2 - b.x1) * (b.y2 - b.y1)).key if inside else None

    # painting -----------------------------------------------------------------------------------
    def paintEvent(self, _event: object) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#0b0c0e"))
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.image_size is None:
            self._centre_text(p, self.placeholder)
            p.end()
            return
        origin, scale = self._origin_scale()
        iw, ih = self.image_size
        target = QRectF(origin.x(), origin.y(), iw * scale, ih * scale)
        if self.pixmap is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 3)
            p.drawPixmap(target, self.pixmap, QRectF(self.pixmap.rect()))
            if self.heat_shown():
                assert self.heat is not None
                p.drawPixmap(target, self.heat, QRectF(self.heat.rect()))
        else:
            p.fillRect(target, QColor("#16191d"))
            self._centre_text(p, self.placeholder)
        if self.show_boxes:
            for b in self.boxes:
                self._draw_box(p, b)
        if self._draft is not None:
            a, c = self.to_screen(self._draft[0].x(), self._draft[0].y()), self.to_screen(self._draft[1].x(),
                                                                                          self._draft[1].y())
            p.setPen(QPen(QColor("#ffffff"), 2, Qt.PenStyle.DashLine))
            p.setBrush(QColor(255, 255, 255, 40))
            p.drawRect(QRectF(a, c).normalized())
        self._overlay(p)
        p.end()

    def _draw_box(self, p: QPainter, b: CanvasBox) -> None:
        rect = QRectF(self.to_screen(b.x1, b.y1), self.to_screen(b.x2, b.y2))
        colour = theme.class_colour(b.cls)
        style = Qt.PenStyle.SolidLine
        if b.kind == "false":
            colour, style = QColor("#8c949e"), Qt.PenStyle.DashLine
        elif b.kind == "missed":
            colour, style = QColor("#ffffff"), Qt.PenStyle.DashLine
        selected = b.key is not None and b.key == self.selected
        p.setBrush(Qt.BrushStyle.NoBrush)
        if selected:
            p.setPen(QPen(QColor("#ffffff"), 7))
            p.drawRect(rect)
        p.setPen(QPen(colour, 3, style))
        p.drawRect(rect)
        font = QFont(self.font().family(), 10, QFont.Weight.Bold)
        p.setFont(font)
        fm = QFontMetrics(font)
        tw, th = fm.horizontalAdvance(b.text) + 10, fm.height() + 4
        ty = rect.top() - th if rect.top() - th >= 0 else rect.bottom()
        label = QRectF(rect.left(), ty, tw, th)
        p.fillRect(label, colour)
        p.setPen(QColor("#101010"))
        p.drawText(label, Qt.AlignmentFlag.AlignCenter, b.text)

    def _overlay(self, p: QPainter) -> None:
        notes = []
        if self.drawing:
            notes.append("Drag a box around the missed defect · Esc cancels")
        if not self.show_boxes:
            notes.append("Boxes hidden (B)")
        if self.heat is not None and not self.show_heat:
            notes.append("Heat map hidden (H)")
        if self.zoom > 1.0:
            notes.append(f"{self.zoom * 100:.0f} %")
        if not notes:
            return
        text = "   ·   ".join(notes)
        font = QFont(self.font().family(), 11)
        p.setFont(font)
        fm = QFontMetrics(font)
        box = QRectF(8, self.height() - fm.height() - 16, fm.horizontalAdvance(text) + 20, fm.height() + 8)
        p.fillRect(box, QColor(0, 0, 0, 170))
        p.setPen(QColor(theme.TEXT))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _centre_text(self, p: QPainter, text: str) -> None:
        p.setPen(QColor(theme.MUTED))
        p.setFont(QFont(self.font().family(), 14))
        p.drawText(self.rect().adjusted(20, 20, -20, -20), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                   text)

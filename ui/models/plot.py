"""A small live plot of a training run: loss (left scale) and val mAP50 (right scale, 0-1) per epoch, drawn with
QPainter (QtCharts is not part of PySide6-Essentials)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from inspector.training.progress import EpochPoint
from ui import theme

LOSS = "#e0a030"
MAP = "#40b0f0"


class TrainPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: tuple[EpochPoint, ...] = ()
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_points(self, points: tuple[EpochPoint, ...]) -> None:
        if points != self.points:
            self.points = tuple(points)
            self.update()

    def series(self) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """(epoch, loss) and (epoch, mAP50) as drawn: missing values left out."""
        loss = [(p.epoch, float(p.loss)) for p in self.points if p.loss is not None]
        m = [(p.epoch, float(p.map50)) for p in self.points if p.map50 is not None]
        return loss, m

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(44, 10, -44, -24)
        p.setPen(QPen(QColor(theme.MUTED), 1))
        p.drawRect(area)
        loss, m = self.series()
        if not self.points:
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "no epoch finished yet")
            return
        last = max(pt.epochs for pt in self.points)
        top_loss = max((v for _, v in loss), default=1.0) * 1.1 or 1.0

        def at(epoch: int, value: float, top: float) -> QPointF:
            x = area.left() + area.width() * (epoch / max(1, last))
            return QPointF(x, area.bottom() - area.height() * min(1.0, value / top))

        for values, colour, top in ((loss, LOSS, top_loss), (m, MAP, 1.0)):
            if not values:
                continue
            path = QPainterPath(at(*values[0], top))
            for e, v in values[1:]:
                path.lineTo(at(e, v, top))
            p.setPen(QPen(QColor(colour), 2))
            p.drawPath(path)
            for e, v in values:
                p.drawEllipse(at(e, v, top), 2.5, 2.5)
        p.setPen(QColor(LOSS))
        p.drawText(QRectF(0, area.top() - 4, 42, 16), Qt.AlignmentFlag.AlignRight, f"{top_loss:.2g}")
        p.drawText(QRectF(0, area.bottom() - 12, 42, 16), Qt.AlignmentFlag.AlignRight, "0")
        p.drawText(QRectF(area.left(), area.bottom() + 4, 80, 16), Qt.AlignmentFlag.AlignLeft, "loss")
        p.setPen(QColor(MAP))
        p.drawText(QRectF(area.right() + 2, area.top() - 4, 42, 16), Qt.AlignmentFlag.AlignLeft, "1.0")
        p.drawText(QRectF(area.right() - 80, area.bottom() + 4, 80, 16), Qt.AlignmentFlag.AlignRight, "mAP50")
        p.setPen(QColor(theme.MUTED))
        p.drawText(QRectF(area.left(), area.bottom() + 4, area.width(), 16), Qt.AlignmentFlag.AlignHCenter,
                   f"epoch (of {last})")

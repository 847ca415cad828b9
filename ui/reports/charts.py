"""The report's two charts drawn with QPainter, as in the PDF: a defect Pareto (bars and a cumulative line)
and the yield per hour or shift (bars coloured by band)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from inspector.core.clock import station_time
from inspector.reports import ParetoItem, YieldPoint
from inspector.reports.data import count_axis
from ui import theme

GOOD, MID, BAD = "#1e9e50", "#f2a900", "#d9342b"
LINE = "#e8eaed"


@dataclass(frozen=True)
class Series:
    """What one chart shows: a bar per category, an optional line (percent, right axis)."""

    names: tuple[str, ...]
    bars: tuple[float, ...]
    colours: tuple[str, ...]
    line: tuple[float, ...] | None = None
    percent_bars: bool = False  # bars are percentages (0-100), not counts


def pareto_series(items: tuple[ParetoItem, ...]) -> Series:
    return Series(tuple(i.label for i in items), tuple(float(i.count) for i in items),
                  tuple(theme.ACCENT for _ in items), tuple(i.cumulative_pct for i in items))


def yield_band(pct: float) -> str:
    return GOOD if pct >= 95 else (MID if pct >= 80 else BAD)


def yield_series(points: tuple[YieldPoint, ...], hours: int) -> Series:
    """Yield per bucket (0 when nothing was judged), labelled in the station's local time."""
    values = tuple(p.totals.yield_pct if p.totals.yield_pct is not None else 0.0 for p in points)
    local = [p.start.astimezone() for p in points]
    one_day = bool(local) and local[0].date() == local[-1].date()
    every = max(1, -(-len(points) // 12))
    names = tuple((t.strftime("%H:%M") if one_day else t.strftime("%m-%d %H:%M")) if i % every == 0 else ""
                  for i, t in enumerate(local))
    return Series(names, values, tuple(yield_band(v) for v in values), None, percent_bars=True)


class BarChart(QWidget):
    def __init__(self, title: str, empty: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.empty = empty
        self.series: Series | None = None
        self.legend: tuple[tuple[str, str], ...] = ()
        self.setMinimumSize(360, 260)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_series(self, series: Series | None, legend: tuple[tuple[str, str], ...] = ()) -> None:
        self.series = series
        self.legend = legend
        self.update()

    def paintEvent(self, _e: object) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(theme.PANEL))
        p.setPen(QPen(QColor(theme.PANEL_EDGE)))
        p.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        small = QFont(self.font().family(), 9)
        title = QFont(self.font().family(), 10, QFont.Weight.Bold)
        p.setFont(title)
        p.setPen(QColor(theme.MUTED))
        p.drawText(QRectF(12, 8, self.width() - 24, 20), Qt.AlignmentFlag.AlignLeft, self.title.upper())
        self._legend(p, small)
        s = self.series
        if s is None or not s.bars:
            p.setFont(QFont(self.font().family(), 12))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty)
            p.end()
            return
        p.setFont(small)
        fm = QFontMetrics(small)
        label_h = fm.height() * (2 if any(len(n) > 6 for n in s.names) else 1) + 8
        plot = QRectF(54, 40, self.width() - 54 - (48 if s.line else 18), self.height() - 40 - label_h - 12)
        top, step = (100.0, 20.0) if s.percent_bars else count_axis(max(s.bars) * 1.08)  # room for the labels
        self._grid(p, plot, top, step, fm, "%" if s.percent_bars else "")
        n = len(s.bars)
        slot = plot.width() / n
        bar_w = max(2.0, min(60.0, slot * 0.7))
        centres = []
        for i, (v, colour) in enumerate(zip(s.bars, s.colours, strict=True)):
            cx = plot.left() + slot * (i + 0.5)
            centres.append(cx)
            h = plot.height() * min(v, top) / top
            p.fillRect(QRectF(cx - bar_w / 2, plot.bottom() - h, bar_w, h), QColor(colour))
            if n <= 16:
                p.setPen(QColor(theme.TEXT))
                p.drawText(QRectF(cx - slot / 2, plot.bottom() - h - fm.height() - 2, slot, fm.height()),
                           Qt.AlignmentFlag.AlignCenter, f"{v:.0f}" + (" %" if s.percent_bars else ""))
            if s.names[i]:
                p.setPen(QColor(theme.MUTED))
                p.drawText(QRectF(cx - slot / 2 - 20, plot.bottom() + 4, slot + 40, label_h),
                           Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap,
                           s.names[i])
        if s.line:
            self._line(p, plot, centres, s.line, fm)
        p.end()

    def _grid(self, p: QPainter, plot: QRectF, top: float, step: float, fm: QFontMetrics, unit: str) -> None:
        v = 0.0
        while v <= top + 1e-9:
            y = plot.bottom() - plot.height() * v / top
            p.setPen(QPen(QColor("#2a3038"), 1))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(QColor(theme.MUTED))
            p.drawText(QRectF(0, y - fm.height() / 2, plot.left() - 6, fm.height()),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{v:.0f}{unit}")
            v += step

    def _line(self, p: QPainter, plot: QRectF, xs: list[float], values: tuple[float, ...], fm: QFontMetrics) -> None:
        pts = [QPointF(x, plot.bottom() - plot.height() * min(v, 100.0) / 100.0) for x, v in zip(xs, values,
                                                                                                strict=True)]
        path = QPainterPath(pts[0])
        for q in pts[1:]:
            path.lineTo(q)
        p.setPen(QPen(QColor(LINE), 2))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
        p.setBrush(QColor(LINE))
        for q in pts:
            p.drawEllipse(q, 3, 3)
        p.setPen(QColor(theme.MUTED))
        for v in (0, 50, 100):
            y = plot.bottom() - plot.height() * v / 100
            p.drawText(QRectF(plot.right() + 6, y - fm.height() / 2, 44, fm.height()),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{v}%")

    def _legend(self, p: QPainter, font: QFont) -> None:
        if not self.legend:
            return
        p.setFont(font)
        fm = QFontMetrics(font)
        x = self.width() - 12
        for colour, text in reversed(self.legend):
            w = fm.horizontalAdvance(text)
            x -= w
            p.setPen(QColor(theme.MUTED))
            p.drawText(QRectF(x, 10, w, fm.height()), Qt.AlignmentFlag.AlignLeft, text)
            x -= 16
            p.fillRect(QRectF(x, 10 + fm.height() / 2 - 4, 11, 8), QColor(colour))
            x -= 14


def when_text(t: dt.datetime | None) -> str:
    return "–" if t is None else station_time(t)

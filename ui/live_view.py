"""The frame canvas (image, boxes, region of interest), the verdict banner and the error banner.

Drawing stays cheap: a new frame is scaled once into a cached pixmap; repaints are throttled to
``MAX_FPS`` however fast results arrive.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from inspector.types import Verdict
from ui import theme
from ui.bridge import LiveResult

MAX_FPS = 30


class FrameCanvas(QWidget):
    """Shows one result: the frame scaled to fit, its boxes (class colour, label, confidence) and the ROI."""

    resized = Signal(int, int)

    def __init__(self, parent: QWidget | None = None, throttle: bool = True) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.result: LiveResult | None = None
        self.roi: tuple[float, float, float, float] | None = None
        self.placeholder = "No part yet: press F5 to start"
        self.paints = 0
        self._pixmap: QPixmap | None = None
        self._pixmap_key: tuple | None = None
        self._last_paint = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.update)
        self._throttle = throttle

    def show_result(self, result: LiveResult | None) -> None:
        self.result = result
        self._pixmap = None
        self._request_paint()

    def set_roi(self, roi: tuple[float, float, float, float] | None) -> None:
        self.roi = roi
        self._request_paint()

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        self._request_paint()

    def _request_paint(self) -> None:
        if not self._throttle:
            self.update()
            return
        wait_ms = int(1000 / MAX_FPS - (time.perf_counter() - self._last_paint) * 1000)
        if wait_ms <= 0:
            self.update()
        elif not self._timer.isActive():
            self._timer.start(wait_ms)

    def _placed(self) -> tuple[QImage | QPixmap, QRectF, float] | None:
        """What to draw where, and the scale from image to screen pixels. The runner's thread already scaled
        the image to this canvas (see ``RunnerBridge.fit``); only after a resize is it scaled here, once."""
        r = self.result
        if r is None or r.image is None or r.image.isNull():
            return None
        iw, ih = r.image.width(), r.image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = max(1, int(iw * scale)), max(1, int(ih * scale))
        if abs(w - iw) <= 2 and abs(h - ih) <= 2:  # already fits: a plain blit
            return r.image, QRectF((self.width() - iw) // 2, (self.height() - ih) // 2, iw, ih), 1.0
        key = (id(r), w, h)
        if self._pixmap is None or self._pixmap_key != key:  # scale once per frame and size
            self._pixmap = QPixmap.fromImage(r.image).scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                                              Qt.TransformationMode.SmoothTransformation)
            self._pixmap_key = key
        return self._pixmap, QRectF((self.width() - w) // 2, (self.height() - h) // 2, w, h), scale

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.resized.emit(self.width(), self.height())

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's name
        self._last_paint = time.perf_counter()
        self.paints += 1
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#0b0c0e"))
        placed = self._placed()
        if placed is None:
            p.setPen(QColor(theme.MUTED))
            p.setFont(QFont(self.font().family(), 16))
            text = self.placeholder
            if self.result is not None:
                text = f"Part {self.result.seq + 1}: no image\n{'; '.join(self.result.reasons)}"
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
            p.end()
            return
        picture, target, scale = placed
        if isinstance(picture, QImage):
            p.drawImage(target.topLeft(), picture)
        else:
            p.drawPixmap(target.topLeft(), picture)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.roi is not None:
            x1, y1, x2, y2 = self.roi
            pen = QPen(QColor(theme.ROI_COLOUR), 2, Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(target.x() + x1 * target.width(), target.y() + y1 * target.height(),
                              (x2 - x1) * target.width(), (y2 - y1) * target.height()))
        self._draw_boxes(p, target, scale)
        p.end()

    def _draw_boxes(self, p: QPainter, target: QRectF, scale: float) -> None:
        assert self.result is not None
        font = QFont(self.font().family(), 11, QFont.Weight.Bold)
        p.setFont(font)
        fm = QFontMetrics(font)
        for d in self.result.boxes:
            colour = theme.class_colour(d.cls)
            rect = QRectF(target.x() + d.x1 * scale, target.y() + d.y1 * scale,
                          (d.x2 - d.x1) * scale, (d.y2 - d.y1) * scale)
            p.setPen(QPen(colour, 3))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(rect)
            text = f"{d.label} {d.confidence:.2f}"
            tw, th = fm.horizontalAdvance(text) + 10, fm.height() + 4
            ty = rect.top() - th if rect.top() - th >= target.top() else rect.top()
            label = QRectF(rect.left(), ty, tw, th)
            p.fillRect(label, colour)
            p.setPen(QColor("#101010"))
            p.drawText(label, Qt.AlignmentFlag.AlignCenter, text)


class VerdictBanner(QFrame):
    """The verdict in letters readable from three metres, in its colour, with the reasons in one line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("verdictBanner")
        self.verdict: Verdict | None = None
        self.title = QLabel("READY")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        f = QFont(self.font().family(), 60, QFont.Weight.Black)
        self.title.setFont(f)
        self.reasons = QLabel("Waiting for the first part")
        self.reasons.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.reasons.setFont(QFont(self.font().family(), 17))
        self.reasons.setTextFormat(Qt.TextFormat.PlainText)
        self.reasons.setMinimumWidth(100)
        self.reasons.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 6, 16, 10)
        lay.setSpacing(0)
        lay.addWidget(self.title)
        lay.addWidget(self.reasons)
        self._paint(None)

    def show_verdict(self, verdict: Verdict | None, reasons: tuple[str, ...] | str) -> None:
        text = reasons if isinstance(reasons, str) else " · ".join(reasons)
        title = theme.VERDICT_TEXT.get(verdict, "READY") if verdict is not None else None
        if verdict != self.verdict:
            self._paint(verdict)
        self.verdict = verdict
        if title is not None:
            self.title.setText(title)
        self.reasons.setText(text)
        self.reasons.setToolTip(text)

    def show_idle(self, title: str, line: str) -> None:
        self._paint(None)
        self.verdict = None
        self.title.setText(title)
        self.reasons.setText(line)

    def _paint(self, verdict: Verdict | None) -> None:
        bg, fg = theme.VERDICT_COLOURS[verdict]
        self.setStyleSheet(f"QFrame#verdictBanner {{ background: {bg}; border-radius: 8px; }}"
                           f"QFrame#verdictBanner QLabel {{ color: {fg}; background: transparent; }}")


class ErrorBanner(QFrame):
    """An error for the operator, in the window, until dismissed or the next good start."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet(f"QFrame#errorBanner {{ background: #4a1416; border: 1px solid {theme.ERROR};"
                           " border-radius: 6px; } QFrame#errorBanner QLabel { background: transparent; }")
        icon = QLabel("⚠")
        icon.setFont(QFont(self.font().family(), 20))
        icon.setStyleSheet(f"color: {theme.ERROR};")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setFont(QFont(self.font().family(), 14))
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.clear)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 6, 6)
        lay.addWidget(icon)
        lay.addWidget(self.text, 1)
        lay.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_error(self, message: str) -> None:
        self.text.setText(message)
        self.show()

    def clear(self) -> None:
        self.text.clear()
        self.hide()
        self.dismissed.emit()

    @property
    def message(self) -> str:
        return "" if self.isHidden() else self.text.text()

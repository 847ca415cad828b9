"""The frame canvas (image, boxes, region of interest), the verdict banner and the error banner.

Drawing stays cheap: a new frame is scaled once into a cached pixmap; repaints are throttled to
``MAX_FPS`` however fast results arrive.
"""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QImage, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from inspector.core.types import Verdict
from ui import theme
from ui.bridge import LiveResult
from ui.elided import ElidedLabel

MAX_FPS = 30
MAX_QUEUED = 50  # FAILs waiting for the banner; more are counted and named on the next one shown


class FrameCanvas(QWidget):
    """Shows one result: the frame scaled to fit, its boxes (class colour, label, confidence) and the ROI."""

    resized = Signal(int, int)

    def __init__(self, parent: QWidget | None = None, throttle: bool = True) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 150)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click on the picture takes the focus from a text field
        self.result: LiveResult | None = None
        self.roi: tuple[float, float, float, float] | None = None
        self.placeholder = "No part yet: press F5 to start"
        self.show_heat = True  # an anomaly model's heat map over the picture (a detector's result has none)
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

    def set_show_heat(self, on: bool) -> None:
        self.show_heat = bool(on)
        self._request_paint()

    def heat_shown(self) -> bool:
        """Whether a heat map is drawn now (the toggle is on and the part shown has one)."""
        return self.show_heat and self.result is not None and self.result.heat is not None

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

    def image_rect(self) -> QRectF | None:
        """Where the image is drawn on the canvas (None without one): the region of interest's frame."""
        placed = self._placed()
        return None if placed is None else placed[1]

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
        if self.heat_shown():
            assert self.result is not None and self.result.heat is not None
            p.drawImage(target, self.result.heat)
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


LAST_PART = "last part"


class VerdictBanner(QFrame):
    """The verdict in letters readable from across the line: its shape (check mark, cross, diamond, dash), its
    word, its colour and, for FAIL and REVIEW, a fill pattern, so no verdict is told by colour alone. When
    the line is not inspecting, the banner names its state (STOPPED, PAUSED, STARTING, NOT READY) and the
    last verdict only as "last part". Every FAIL stays up at least ``hold_s``, even when parts come faster
    than a person reads and several FAILs arrive in one batch: FAILs that arrive during a hold wait in a queue
    and each gets its own hold; the newest other part shows once the queue is empty. ``shown(payload)`` is
    emitted whenever a verdict goes up, with the payload given for it (the live tab draws that part's picture),
    and ``released`` when the last hold ends."""

    released = Signal()
    shown = Signal(object)

    def __init__(self, parent: QWidget | None = None, hold_s: float = 0.0) -> None:
        super().__init__(parent)
        self.setObjectName("verdictBanner")
        self.verdict: Verdict | None = None
        self.state = "READY"
        self.hold_s = hold_s
        self._held_until = 0.0
        self._fails: deque[tuple[tuple[str, ...] | str, object]] = deque()  # FAILs waiting for their hold
        self.skipped = 0  # FAILs beyond MAX_QUEUED, named on the next FAIL shown
        self._pending: tuple[Verdict, tuple[str, ...] | str, object] | None = None
        self._hold = QTimer(self)
        self._hold.setSingleShot(True)
        self._hold.timeout.connect(self._release)
        self.mark = QLabel("")
        self.mark.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.title = QLabel("READY")
        self.title.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for w in (self.mark, self.title):  # they never widen the window: the letters shrink to the banner instead
            w.setMinimumWidth(1)  # (a label's own minimum is its whole text)
        self._letter_px = 40
        self.reasons = ElidedLabel("Waiting for the first part")
        self.reasons.setAlignment(Qt.AlignmentFlag.AlignCenter)
        head = QHBoxLayout()
        head.setSpacing(18)
        head.addStretch(1)
        head.addWidget(self.mark)
        head.addWidget(self.title)
        head.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 4, 16, 8)
        lay.setSpacing(0)
        lay.addLayout(head)
        lay.addWidget(self.reasons)
        self.set_letter_size(40)  # the live tab sizes it to the screen once shown
        self._paint(None)

    def set_letter_size(self, pixels: int) -> None:
        """The verdict's letter height in pixels (the live tab sizes it to the screen; kiosk much larger), made
        smaller where the words shown (say "NOT INSPECTED") would not fit the banner's width."""
        self._letter_px = pixels
        self._apply_letters()

    def resizeEvent(self, e) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(e)
        self._apply_letters()

    def _apply_letters(self) -> None:
        pixels = self._letter_px
        if self.width() > 100:
            f = QFont(self.font().family())
            f.setPixelSize(100)
            f.setWeight(QFont.Weight.Black)
            shown = (self.mark.text() + "  " if self.mark.text() else "") + self.title.text()
            widest = QFontMetrics(f).horizontalAdvance(shown or "READY") + 40  # the words shown now
            room = self.width() - 32 - 18  # the margins and the space between mark and word
            pixels = min(pixels, int(100 * room / widest))
        if getattr(self, "_applied_px", None) == pixels:
            return
        self._applied_px = pixels
        f = QFont(self.font().family())
        f.setPixelSize(max(12, pixels))
        f.setWeight(QFont.Weight.Black)
        self.title.setFont(f)
        self.mark.setFont(f)
        r = QFont(self.font().family())
        r.setPixelSize(max(13, min(40, pixels // 3)))
        self.reasons.setFont(r)

    def show_verdict(self, verdict: Verdict | None, reasons: tuple[str, ...] | str, payload: object = None) -> None:
        """Show a part's verdict now, or, while a FAIL is held, queue it: a FAIL for its own hold, any other
        verdict as the newest part to show once no FAIL waits."""
        if self.holding:
            if verdict == Verdict.FAIL:
                if len(self._fails) < MAX_QUEUED:
                    self._fails.append((reasons, payload))
                else:
                    self.skipped += 1
            elif verdict is not None:
                self._pending = (verdict, reasons, payload)
            return
        self._pending = None
        self._show(verdict, reasons, payload)

    def _show(self, verdict: Verdict | None, reasons: tuple[str, ...] | str, payload: object) -> None:
        now = time.monotonic()
        text = reasons if isinstance(reasons, str) else " · ".join(reasons)
        if verdict == Verdict.FAIL and self.skipped:
            text = f"{text} · {self.skipped} more failed part(s) in the strip below"
            self.skipped = 0
        self.state = "INSPECTING"
        if verdict != self.verdict:
            self._paint(verdict)
        self.verdict = verdict
        if verdict is not None:
            self.mark.setText(theme.VERDICT_MARK[verdict])
            self.mark.show()
            self.title.setText(theme.VERDICT_TEXT[verdict])
            self._apply_letters()
            if verdict == Verdict.FAIL and self.hold_s > 0:
                self._held_until = now + self.hold_s
                self._hold.start(max(1, int(self.hold_s * 1000)))
        self.reasons.setText(text)
        self.shown.emit(payload)

    @property
    def holding(self) -> bool:
        """A FAIL is being held on screen (newer parts wait until its hold time is over)."""
        return self.verdict == Verdict.FAIL and self.state == "INSPECTING" and time.monotonic() < self._held_until

    @property
    def waiting(self) -> int:
        """FAILs queued behind the one shown."""
        return len(self._fails)

    def _release(self) -> None:
        self._held_until = 0.0
        if self.state != "INSPECTING":
            return
        if self._fails:
            reasons, payload = self._fails.popleft()
            self._show(Verdict.FAIL, reasons, payload)
            return
        pending, self._pending = self._pending, None
        if pending is not None:
            self._show(*pending)
        self.released.emit()

    def show_idle(self, title: str, line: str) -> None:
        """The line's state instead of a verdict: STARTING, STOPPED, PAUSED, NOT READY, STOPPING (queued FAILs
        are dropped from the banner; the failure strip keeps them)."""
        self._pending = None
        self._fails.clear()
        self.skipped = 0
        self._hold.stop()
        held, self._held_until = self._held_until, 0.0
        if held:
            self.released.emit()
        self._paint(None)
        self.state = title
        self.verdict = None
        self.mark.setText("")
        self.mark.hide()
        self.title.setText(title)
        self._apply_letters()
        self.reasons.setText(line)

    def _paint(self, verdict: Verdict | None) -> None:
        bg, fg = theme.VERDICT_COLOURS[verdict]
        self._pattern = theme.VERDICT_PATTERN.get(verdict)
        self._pattern_colour = QColor(fg)
        self._pattern_colour.setAlpha(70)
        self.setStyleSheet(f"QFrame#verdictBanner {{ background: {bg}; border-radius: 8px; }}"
                           f"QFrame#verdictBanner QLabel {{ color: {fg}; background: transparent; }}")
        self.update()

    def paintEvent(self, e) -> None:  # noqa: N802 - Qt's name
        super().paintEvent(e)
        if self._pattern is None:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        brush = QBrush(self._pattern_colour, self._pattern)
        brush.setTransform(QTransform().scale(3, 3))  # a coarse pattern reads from a distance
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(brush)
        p.drawRoundedRect(QRectF(self.rect()), 8, 8)
        p.end()


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

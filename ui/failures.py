"""The strip of the last failed parts (thumbnails, newest first); a click opens the part in a dialog."""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QIcon, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui import theme
from ui.bridge import THUMB_HEIGHT, LiveResult
from ui.elided import ElidedLabel
from ui.live_view import FrameCanvas

MAX_THUMBS = 10


class FailureStrip(QFrame):
    """At most ``MAX_THUMBS`` buttons; older failures fall off the end."""

    opened = Signal(object)  # LiveResult

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("panel")
        self.items: deque[tuple[LiveResult, QToolButton]] = deque()
        title = QLabel("LAST FAILURES")
        title.setObjectName("panelTitle")
        title.setStyleSheet("background: transparent;")
        self.empty = QLabel("none yet")
        self.empty.setStyleSheet(f"color: {theme.MUTED}; background: transparent;")
        self.row = QHBoxLayout()
        self.row.setSpacing(6)
        self.row.addWidget(self.empty)
        self.row.addStretch(1)
        head = QVBoxLayout()
        head.addWidget(title)
        head.addStretch(1)
        lay = QHBoxLayout(self)  # the title beside the thumbnails: the strip costs one thumbnail's height
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(10)
        lay.addLayout(head)
        lay.addLayout(self.row, 1)
        self.setFixedHeight(THUMB_HEIGHT + 46)
        # the thumbnails never widen the window: those that do not fit its width are hidden (oldest first)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._title = title
        self.frozen = False
        self.waiting: list[tuple[LiveResult, str]] = []

    def enterEvent(self, e) -> None:  # noqa: N802 - Qt's name
        super().enterEvent(e)
        self.frozen = True  # what is under the mouse does not move: new failures wait until it leaves

    def leaveEvent(self, e) -> None:  # noqa: N802 - Qt's name
        super().leaveEvent(e)
        self.frozen = False
        waiting, self.waiting = self.waiting, []
        for result, name in waiting:
            self.add(result, name)

    def add(self, result: LiveResult, name: str | None = None) -> None:
        name = name or f"part {result.seq + 1}"
        if self.frozen:
            self.waiting.append((result, name))
            del self.waiting[:-MAX_THUMBS]
            return
        button = QToolButton()
        button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)  # whole or hidden, never cut
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        if result.thumb is not None:
            pm = QPixmap.fromImage(result.thumb)
            button.setIcon(QIcon(pm))
            button.setIconSize(QSize(pm.width(), pm.height()))
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        button.setText(name)
        button.setToolTip(f"{name} · {result.frame_name}: {'; '.join(result.reasons)}")
        button.setStyleSheet(f"QToolButton {{ border: 2px solid {theme.VERDICT_COLOURS[result.verdict][0]};"
                             " border-radius: 4px; padding: 1px; background: #0b0c0e; }"
                             " QToolButton:hover { border-color: #ffffff; }")
        button.clicked.connect(lambda _=False, r=result: self.opened.emit(r))
        self.empty.hide()
        self.row.insertWidget(0, button)
        self.items.appendleft((result, button))
        while len(self.items) > MAX_THUMBS:
            _, old = self.items.pop()
            self.row.removeWidget(old)
            old.deleteLater()
        self._fit()

    def resizeEvent(self, e) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(e)
        self._fit()

    def _fit(self) -> None:
        """Show the newest thumbnails that fit whole; hide the rest."""
        m = self.contentsMargins()
        room = self.width() - m.left() - m.right() - self._title.sizeHint().width() - 30
        for _, button in self.items:
            need = button.sizeHint().width() + self.row.spacing()
            fits = need <= room
            button.setVisible(fits)
            room -= need if fits else room + 1  # once one does not fit, the older ones do not show either

    def clear(self) -> None:
        self.waiting.clear()
        while self.items:
            _, b = self.items.pop()
            self.row.removeWidget(b)
            b.deleteLater()
        self.empty.show()

    def results(self) -> list[LiveResult]:
        return [r for r, _ in self.items]

    def button(self, i: int) -> QToolButton:
        return self.items[i][1]


class PartDialog(QDialog):
    """One part, large: the image with its boxes, the verdict and every reason."""

    def __init__(self, result: LiveResult, roi: tuple[float, float, float, float] | None = None,
                 parent: QWidget | None = None, name: str | None = None) -> None:
        super().__init__(parent)
        self.result = result
        name = name or f"part {result.seq + 1}"
        self.setWindowTitle(f"{name}: {result.frame_name}")
        screen = self.screen().availableGeometry()
        self.resize(min(960, screen.width() - 40), min(780, screen.height() - 40))
        bg, fg = theme.VERDICT_COLOURS[result.verdict]
        head = ElidedLabel(f"{theme.verdict_label(result.verdict)}   {name} · {result.frame_name}"
                           f" · record {result.record_id}", mode=Qt.TextElideMode.ElideMiddle)
        head.setFont(QFont(self.font().family(), 20, QFont.Weight.Bold))
        head.setStyleSheet(f"background: {bg}; color: {fg}; padding: 8px 14px; border-radius: 6px;")
        self.canvas = FrameCanvas(self, throttle=False)
        self.canvas.set_roi(roi)
        self.canvas.show_result(result)
        self.reasons = QLabel("\n".join(f"• {r}" for r in result.reasons))
        self.reasons.setWordWrap(True)
        self.reasons.setFont(QFont(self.font().family(), 14))
        self.reasons.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        boxes = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        boxes.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.canvas, 1)
        lay.addWidget(self.reasons)
        lay.addWidget(boxes)

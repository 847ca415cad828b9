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
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui import theme
from ui.bridge import THUMB_HEIGHT, LiveResult
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
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 8)
        lay.setSpacing(4)
        lay.addWidget(title)
        lay.addLayout(self.row)
        self.setFixedHeight(THUMB_HEIGHT + 72)

    def add(self, result: LiveResult) -> None:
        button = QToolButton()
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        if result.thumb is not None:
            pm = QPixmap.fromImage(result.thumb)
            button.setIcon(QIcon(pm))
            button.setIconSize(QSize(pm.width(), pm.height()))
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        button.setText(f"#{result.seq + 1}")
        button.setToolTip(f"Part {result.seq + 1} {result.frame_name}: {'; '.join(result.reasons)}")
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

    def clear(self) -> None:
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
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result = result
        self.setWindowTitle(f"Part {result.seq + 1}: {result.frame_name}")
        self.resize(960, 780)
        bg, fg = theme.VERDICT_COLOURS[result.verdict]
        head = QLabel(f"{theme.VERDICT_TEXT[result.verdict]}   part {result.seq + 1} · {result.frame_name}"
                      f" · record {result.record_id}")
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

"""A big-number tile (live counters, report figures) and the verdict tiles both screens show."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout

from inspector.core.types import Verdict
from ui import theme
from ui.elided import ElidedLabel

VERDICT_TILES = (("inspected", "Inspected", theme.TEXT),
                 ("pass", "Pass", theme.VERDICT_COLOURS[Verdict.PASS][0]),
                 ("fail", "Fail", theme.VERDICT_COLOURS[Verdict.FAIL][0]),
                 ("review", "Review", theme.VERDICT_COLOURS[Verdict.REVIEW][0]),
                 ("not_inspected", "Not inspected", "#8c949e"),
                 ("yield", "Yield", theme.ACCENT))


class Tile(QFrame):
    """A caption over one big right-aligned value in ``colour``; ``value`` is the label to set."""

    def __init__(self, caption: str, colour: str, tip: str = "", point_size: int = 30, initial: str = "0") -> None:
        super().__init__()
        self.setObjectName("panel")
        if tip:
            self.setToolTip(tip)
        self.value = QLabel(initial)
        self.value.setFont(QFont(self.font().family(), point_size, QFont.Weight.Bold))
        self.value.setStyleSheet(f"color: {colour}; background: transparent;")
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        cap = ElidedLabel(caption.upper())
        cap.setObjectName("caption")
        cap.setStyleSheet("background: transparent;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 8, 12, 8)
        lay.setSpacing(0)
        lay.addWidget(cap)
        lay.addWidget(self.value)

    def set_point_size(self, point_size: int) -> None:
        self.value.setFont(QFont(self.font().family(), point_size, QFont.Weight.Bold))

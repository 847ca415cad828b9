"""A one-line label that gives way: it asks for its text's width, accepts much less and then shows the text
elided ("…") with the whole of it in the tooltip, so narrow screens cut no word without saying so."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

MIN_WIDTH = 40


class ElidedLabel(QLabel):
    """``text()`` is the whole text; what is painted is elided to the width the layout gives."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(MIN_WIDTH)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._full = text
        self.setToolTip(text if text else "")
        self._elide()
        self.updateGeometry()

    def text(self) -> str:
        return self._full

    @property
    def elided(self) -> bool:
        """Whether the painted text is shorter than the whole (the tooltip then holds it)."""
        return super().text() != self._full

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        fm = self.fontMetrics()
        m = self.contentsMargins()
        return QSize(fm.horizontalAdvance(self._full) + m.left() + m.right() + 4, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(MIN_WIDTH, super().minimumSizeHint().height())

    def resizeEvent(self, e: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(e)
        self._elide()

    def changeEvent(self, e) -> None:  # noqa: N802 - Qt's name (a font change re-elides)
        super().changeEvent(e)
        if e.type() in (e.Type.FontChange, e.Type.StyleChange):
            self._elide()

    def _elide(self) -> None:
        m = self.contentsMargins()
        width = max(0, self.width() - m.left() - m.right() - 2)
        shown = self.fontMetrics().elidedText(self._full, self._mode, width) if self._full else ""
        if shown != super().text():
            super().setText(shown)

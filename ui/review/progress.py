"""A long job's strip (exports, reports): what runs, a progress bar, Cancel; when done, "Open folder"."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFrame, QHBoxLayout, QProgressBar, QPushButton, QToolButton, QWidget

from ui import theme
from ui.elided import ElidedLabel


class ProgressRelay(QObject):
    """Carries a worker's ``progress(done, total)`` calls to the GUI thread as a queued signal."""

    progress = Signal(int, int)

    def __call__(self, done: int, total: int) -> None:
        self.progress.emit(done, total)


class JobBar(QFrame):
    """Hidden until a job starts. ``cancel_event`` is what the job polls; Cancel sets it."""

    open_folder_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("panel")
        # a long folder name must not widen the window past the screen: elided in the middle, whole in the tooltip
        self.text = ElidedLabel("", mode=Qt.TextElideMode.ElideMiddle)
        self.text.setStyleSheet("background: transparent;")
        self.bar = QProgressBar()
        self.bar.setFixedWidth(260)
        self.bar.setTextVisible(True)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self.request_cancel)
        self.open = QPushButton("Open folder")
        self.open.clicked.connect(self._open)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        self.close_button = close
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.bar)
        lay.addWidget(self.cancel)
        lay.addWidget(self.open)
        lay.addWidget(close)
        self.cancel_event: threading.Event | None = None
        self.folder: Path | None = None
        self.running = False
        self.hide()

    def start(self, text: str) -> threading.Event:
        self.cancel_event = threading.Event()
        self.running = True
        self.folder = None
        self.text.setText(text)
        self.text.setStyleSheet("background: transparent;")
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.bar.show()
        self.cancel.setEnabled(True)
        self.cancel.show()
        self.open.hide()
        self.close_button.hide()
        self.show()
        return self.cancel_event

    def set_progress(self, done: int, total: int) -> None:
        if not self.running or total <= 0:
            return
        self.bar.setRange(0, total)
        self.bar.setValue(min(done, total))

    def request_cancel(self) -> None:
        if self.cancel_event is not None and self.running:
            self.cancel_event.set()
            self.cancel.setEnabled(False)
            self.text.setText(self.text.text() + " — cancelling…")

    def finish(self, text: str, folder: Path | None = None) -> None:
        self._end(text, theme.TEXT)
        self.folder = folder
        self.open.setVisible(folder is not None)

    def fail(self, text: str) -> None:
        self._end(text, theme.ERROR)

    def _end(self, text: str, colour: str) -> None:
        self.running = False
        self.text.setText(text)
        self.text.setStyleSheet(f"background: transparent; color: {colour};")
        self.bar.hide()
        self.cancel.hide()
        self.open.hide()
        self.close_button.show()
        self.show()

    def _open(self) -> None:
        if self.folder is not None:
            self.open_folder_requested.emit(str(self.folder))
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder)))

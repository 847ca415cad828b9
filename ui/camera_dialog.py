"""Pick a GenICam camera before starting: the cameras pylon and the GenTL producers find, exposure and gain, a
live preview, and the choice saved into ``[camera]``.

Discovery, opening and every frame happen on pool threads; the preview hands frames to the window only through
a signal. The camera is opened free-running for the preview and closed before the choice is saved (a running
station holding the same camera makes the preview fail with the SDK's sentence: stop the run first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inspector.core.config import CameraConfig, CameraTrigger, Config, save_config
from inspector.core.types import Frame
from ui.workers import operator_message, run_job


class _PreviewSignals(QObject):
    frame = Signal(object)  # a Frame
    failed = Signal(str)


class _Preview(QRunnable):
    """Opens the camera free-running and emits its frames (at most ~10 a second) until ``stop``."""

    def __init__(self, cfg: CameraConfig, opener: Callable[[CameraConfig], Any]) -> None:
        super().__init__()
        self.cfg, self.opener = cfg, opener
        self.signals = _PreviewSignals()
        self._stop = threading.Event()
        self.done = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        try:
            src = self.opener(self.cfg)
        except Exception as e:  # noqa: BLE001 - the sentence goes to the dialog
            self.signals.failed.emit(operator_message(e))
            self.done.set()
            return
        try:
            while not self._stop.is_set():
                item = src.read()
                if item is None:
                    break
                if isinstance(item, Frame) and item.ok:
                    self.signals.frame.emit(item)
                    self._stop.wait(0.1)
        except Exception as e:  # noqa: BLE001
            self.signals.failed.emit(operator_message(e))
        finally:
            src.close()
            self.done.set()


def _open_free(cfg: CameraConfig):
    from inspector.sources.opening import open_camera

    return open_camera(cfg.model_copy(update={"trigger": CameraTrigger.FREE}))


def _discover(cti) -> tuple[list, list[str]]:
    from inspector.sources.opening import discover

    return discover(cti)


class CameraDialog(QDialog):
    """Find, preview and choose a camera; ``saved(Config)`` once ``[camera]`` is written to ``path``."""

    saved = Signal(object)

    def __init__(self, config: Config, path: Path, pool: QThreadPool | None = None, parent: QWidget | None = None,
                 guard: Callable[[Config, Config], None] | None = None,
                 opener: Callable[[CameraConfig], Any] = _open_free,
                 discoverer: Callable[[Any], tuple[list, list[str]]] = _discover) -> None:
        super().__init__(parent)
        self.setWindowTitle("Camera")
        self.resize(760, 560)
        self.config, self.path, self.guard = config, Path(path), guard
        self.pool = pool or QThreadPool.globalInstance()
        self.opener, self.discoverer = opener, discoverer
        self.found: list = []
        self.preview: _Preview | None = None
        self.frames = 0
        self.cameras = QListWidget()
        self.cameras.setObjectName("cameraList")
        self.cameras.currentRowChanged.connect(lambda _: self.stop_preview())
        self.find_button = QPushButton("Find cameras")
        self.find_button.clicked.connect(self.find)
        cam = config.camera
        self.exposure = QLineEdit("" if cam.exposure_us is None else f"{cam.exposure_us:g}")
        self.exposure.setPlaceholderText("the camera's")
        self.gain = QLineEdit("" if cam.gain_db is None else f"{cam.gain_db:g}")
        self.gain.setPlaceholderText("the camera's")
        self.picture = QLabel("no preview")
        self.picture.setObjectName("cameraPreview")
        self.picture.setMinimumSize(320, 240)
        self.status = QLabel("")
        self.status.setObjectName("fieldHelp")
        self.status.setWordWrap(True)
        self.preview_button = QPushButton("Preview")
        self.preview_button.clicked.connect(self.start_preview)
        form = QFormLayout()
        form.addRow("Exposure (µs)", self.exposure)
        form.addRow("Gain (dB)", self.gain)
        left = QVBoxLayout()
        left.addWidget(self.find_button)
        left.addWidget(self.cameras, 1)
        left.addLayout(form)
        left.addWidget(self.preview_button)
        top = QHBoxLayout()
        top.addLayout(left, 1)
        top.addWidget(self.picture, 2)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setText("Use this camera")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(top, 1)
        lay.addWidget(self.status)
        lay.addWidget(self.buttons)

    # finding ---------------------------------------------------------------------------------
    def find(self) -> None:
        self.find_button.setEnabled(False)
        self.status.setText("Looking for cameras…")
        run_job(self.pool, lambda: self.discoverer(self.config.camera.cti), self._found, self._failed,
                "finding cameras")

    def _found(self, result: tuple[list, list[str]]) -> None:
        self.find_button.setEnabled(True)
        self.found, notes = result
        self.cameras.clear()
        for c in self.found:
            self.cameras.addItem(c.line())
        for i, c in enumerate(self.found):  # the configured camera, else the first
            if c.sdk == self.config.camera.type.value and c.matches(self.config.camera.id):
                self.cameras.setCurrentRow(i)
                break
        else:
            if self.found:
                self.cameras.setCurrentRow(0)
        self.status.setText(" ".join([f"{len(self.found)} camera(s) found.", *notes]))

    def _failed(self, e: BaseException) -> None:
        self.find_button.setEnabled(True)
        self.status.setText(operator_message(e))

    # the choice ------------------------------------------------------------------------------
    def chosen(self) -> CameraConfig | None:
        """``[camera]`` with the selected camera, exposure and gain; None (and a sentence) when not valid."""
        row = self.cameras.currentRow()
        if not (0 <= row < len(self.found)):
            self.status.setText("Pick a camera first (Find cameras).")
            return None
        c = self.found[row]
        try:
            exposure = float(self.exposure.text()) if self.exposure.text().strip() else None
            gain = float(self.gain.text()) if self.gain.text().strip() else None
        except ValueError:
            self.status.setText("Exposure and gain are numbers (or empty for the camera's own).")
            return None
        data = {**self.config.camera.model_dump(mode="python"), "type": c.sdk, "id": c.serial or c.user_id,
                "exposure_us": exposure, "gain_db": gain}
        try:
            return CameraConfig(**data)
        except ValueError as e:
            self.status.setText(f"Not valid: {e}")
            return None

    # preview ---------------------------------------------------------------------------------
    def start_preview(self) -> None:
        cfg = self.chosen()
        if cfg is None:
            return
        self.stop_preview()
        self.frames = 0
        self.status.setText("Opening the camera…")
        p = _Preview(cfg, self.opener)
        p.signals.frame.connect(self._show)
        p.signals.failed.connect(self.status.setText)
        self.preview = p
        self.pool.start(p)

    def _show(self, frame: Frame) -> None:
        img = frame.image
        h, w = img.shape[:2]
        q = QImage(img.data, w, h, img.strides[0], QImage.Format.Format_BGR888).copy()
        self.picture.setPixmap(QPixmap.fromImage(q).scaled(self.picture.size(), Qt.AspectRatioMode.KeepAspectRatio))
        self.frames += 1
        self.status.setText(f"Preview: {frame.source}, {w} x {h}, {frame.name}")

    def stop_preview(self, wait_s: float = 10.0) -> None:
        p, self.preview = self.preview, None
        if p is not None:
            p.stop()
            p.done.wait(wait_s)  # the camera is closed before it is used elsewhere

    # saving ----------------------------------------------------------------------------------
    def save(self) -> None:
        cam = self.chosen()
        if cam is None:
            return
        self.stop_preview()
        new = self.config.model_copy(update={"camera": cam})
        path, old, guard = self.path, self.config, self.guard
        self.buttons.setEnabled(False)

        def write() -> Config:
            if guard is not None:
                guard(old, new)  # PermissionDenied: nothing saved
            path.parent.mkdir(parents=True, exist_ok=True)
            save_config(new, path)
            return new

        run_job(self.pool, write, self._saved, self._save_failed, "saving the camera")

    def _saved(self, cfg: Config) -> None:
        self.config = cfg
        self.saved.emit(cfg)
        self.accept()

    def _save_failed(self, e: BaseException) -> None:
        self.buttons.setEnabled(True)
        self.status.setText(f"Not saved: {operator_message(e)}")

    def done(self, result: int) -> None:  # noqa: D401 - Qt's name
        self.stop_preview()
        super().done(result)

"""The main window: tabs ("Live" now; "Review" and "Reports" plug in with ``add_tab``), actions and shortcuts.

The window keeps the operator's selection (source, model, recipe, configuration) as a ``StationSpec``
and hands it to the ``LiveController`` on start. Closing the window stops the run first and waits for
the last parts to be written (without blocking the event loop), then closes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QMainWindow,
    QSizePolicy,
    QStyle,
    QTabWidget,
    QToolBar,
    QWidget,
)

from db.failures import mask_url
from inspector.core.auth import STATION_OPERATOR, Actor
from inspector.core.config import CameraType, Config, config_from_dict
from inspector.core.errors import ConfigError
from inspector.sources.video import VIDEO_SUFFIXES
from ui.camera_dialog import CameraDialog
from ui.controller import LiveController, RunEnd
from ui.day_actions import DayActions
from ui.elided import ElidedLabel
from ui.health import short
from ui.live_tab import LiveTab
from ui.product_editor import ProductEditor
from ui.settings_dialog import SettingsDialog

if TYPE_CHECKING:  # the spec is data here; only the composition root (ui/app.py) builds stations
    from station import StationSpec

log = logging.getLogger(__name__)

# name: (text, shortcut, tooltip)
ACTIONS = {
    "start": ("Start", "F5", "Start inspecting"),
    "stop": ("Stop", "Shift+F5", "Stop after the parts already read"),
    "pause": ("Pause", "Space", "Pause reading parts (again to resume)"),
    "folder": ("Folder…", "Ctrl+O", "Inspect the images of a folder"),
    "video": ("Video…", "Ctrl+Shift+O", "Inspect the frames of a video file"),
    "camera": ("Camera…", "Ctrl+K", "Inspect a camera by its index"),
    "url": ("Stream…", "Ctrl+U", "Inspect a network stream (rtsp://, http://)"),
    "genicam": ("Industrial camera…", "Ctrl+Shift+K", "Pick a GigE Vision / USB3 Vision camera, set its exposure and "
                                                     "gain, preview it"),
    "model": ("Model…", "Ctrl+M", "Choose the model file (.pt or .onnx)"),
    "recipe": ("Recipe…", "Ctrl+R", "Choose a recipe file (TOML)"),
    "kiosk": ("Kiosk", "F11", "Full-screen kiosk mode (F11 again to leave)"),
    "settings": ("Settings…", "Ctrl+,", "Edit the configuration"),
}
ICONS = {"start": QStyle.StandardPixmap.SP_MediaPlay, "stop": QStyle.StandardPixmap.SP_MediaStop,
         "pause": QStyle.StandardPixmap.SP_MediaPause}  # the other controls read better as plain words
MENUS = (("&Run", ("start", "stop", "pause")), ("&Source", ("folder", "video", "camera", "url", "genicam")),
         ("&Model", ("model", "recipe")), ("&View", ("kiosk", "settings")))


class MainWindow(DayActions, QMainWindow):
    def __init__(self, controller: LiveController, spec: StationSpec, settings_path: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Inspector")
        screen = self.screen().availableGeometry()  # never larger than the screen (panel PCs: 1024x768)
        self.resize(min(1560, screen.width()), min(960, screen.height()))
        self.controller = controller
        self.spec = spec
        self.settings_path = Path(settings_path)
        self.recipe_path: Path | None = None
        self.settings: SettingsDialog | None = None
        self.camera_dialog: CameraDialog | None = None
        self.settings_guard = None  # set by the composition root: who may change verdict or storage settings
        self.product_guard = None  # set by the composition root: who may change a product's recipe
        # who acts on the live screen, and how to ask for a sign-in (the composition root wires the review tab's)
        self.actor: Callable[[], Actor] = lambda: STATION_OPERATOR
        self.with_user: Callable[[Callable[[], None], str], None] = lambda then, _why: then()
        self.product_editor: ProductEditor | None = None
        self.classes: tuple[str, ...] = ()
        self._closing = False
        self._restart = False
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.live = LiveTab(controller, fail_hold_s=spec.config.display.fail_hold_s)
        self.add_tab(self.live, "Live")
        self.actions_by_name: dict[str, QAction] = {}
        self._build_actions()
        self.selection = ElidedLabel(mode=Qt.TextElideMode.ElideMiddle)
        # no stretch: a confirmation ("Lot ... from the next start") shows at the left for its seconds, beside it
        self.selection.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.statusBar().addPermanentWidget(self.selection, 0)
        self._show_selection()
        controller.state_changed.connect(self._state_changed)
        controller.finished.connect(self._finished)
        controller.failed.connect(lambda msg: self.statusBar().showMessage(msg, 10000))
        controller.failed.connect(lambda _msg: self.live.day.select_product(self.spec.product or ""))
        controller.started.connect(self._run_started)
        controller.day.connect(self._day_changed)
        controller.alarm_acked.connect(lambda i, who: self.statusBar().showMessage(
            f"Alarm {i} acknowledged by {who}", 10000))
        self.live.day.product_chosen.connect(self.choose_product)
        self.live.day.lot_entered.connect(self.enter_lot)
        self.live.day.edit_requested.connect(self.edit_product)
        self.live.alarms.acknowledge.connect(self.acknowledge_alarm)
        self._show_day_choices()
        self._state_changed(controller.state)

    # tabs -------------------------------------------------------------------------------------
    def add_tab(self, widget: QWidget, title: str) -> int:
        """Plug a screen into the window (the review and reports tabs use this); returns its index."""
        return self.tabs.addTab(widget, title)

    # actions ----------------------------------------------------------------------------------
    def _build_actions(self) -> None:
        handlers = {"start": self.start, "stop": self.stop, "pause": self.toggle_pause, "folder": self.choose_folder,
                    "video": self.choose_video, "camera": self.choose_camera, "url": self.choose_url,
                    "genicam": self.open_camera_dialog,
                    "model": self.choose_model, "recipe": self.choose_recipe, "kiosk": self.toggle_kiosk,
                    "settings": self.open_settings}
        bar = QToolBar("Controls")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.addToolBar(bar)
        self.toolbar = bar
        for name, (text, keys, tip) in ACTIONS.items():
            a = QAction(text, self)
            if name in ICONS:
                a.setIcon(self.style().standardIcon(ICONS[name]))
            a.setShortcut(QKeySequence(keys))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.setToolTip(f"{tip} ({keys})")
            a.setCheckable(name in ("pause", "kiosk"))
            a.triggered.connect(handlers[name])
            self.addAction(a)  # shortcuts keep working in kiosk mode, with the bars hidden
            self.actions_by_name[name] = a
        for name in ACTIONS:
            if name in ("folder", "model", "kiosk"):
                bar.addSeparator()
            bar.addAction(self.actions_by_name[name])
        for title, names in MENUS:
            menu = self.menuBar().addMenu(title)
            for name in names:
                menu.addAction(self.actions_by_name[name])
        for w in bar.findChildren(QWidget):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must reach the pause shortcut, not a button

    def _state_changed(self, state: str) -> None:
        a = self.actions_by_name
        a["start"].setEnabled(state == "idle" and not self._closing)
        a["stop"].setEnabled(state in ("starting", "running", "paused"))
        a["pause"].setEnabled(state in ("running", "paused"))
        a["pause"].setChecked(state == "paused")
        a["pause"].setText("Resume" if state == "paused" else "Pause")
        if self._closing and state == "idle":
            QTimer.singleShot(0, self.close)

    # run control ------------------------------------------------------------------------------
    def start(self) -> bool:
        if self._closing:
            return False
        return self.controller.start(self.spec, self.recipe_path)

    def stop(self) -> None:
        self._restart = False
        self.controller.stop()

    def toggle_pause(self) -> None:
        self.controller.pause(self.controller.state == "running")

    def _finished(self, end: RunEnd) -> None:
        self.statusBar().showMessage(f"Run ended: {end.reason}", 10000)
        if self._restart and not self._closing:
            self._restart = False
            self.start()

    def _apply(self, spec: StationSpec) -> None:
        """New selection; a run in progress restarts with it."""
        self.spec = spec
        self._show_selection()
        if self.controller.state in ("starting", "running", "paused"):
            self._restart = True
            self.controller.stop()

    # selection --------------------------------------------------------------------------------
    def set_source(self, source: str) -> None:
        cfg = self.spec.config
        if cfg.camera.type != CameraType.OPENCV:  # a folder, video, index or URL: no longer the GenICam camera
            cfg = cfg.model_copy(update={"camera": cfg.camera.model_copy(update={"type": CameraType.OPENCV})})
        self._apply(replace(self.spec, source=source, loop=False, config=cfg))

    def set_model(self, path: Path) -> None:
        cfg = self.spec.config
        try:
            cfg = config_from_dict({**cfg.model_dump(mode="python"),
                                    "model": {**cfg.model.model_dump(mode="python"), "path": Path(path)}}, "model")
        except ConfigError as e:
            self.live.error.show_error(str(e))
            return
        self._apply(replace(self.spec, config=cfg))

    def set_recipe(self, path: Path | None) -> None:
        self.recipe_path = Path(path) if path else None
        self._apply(self.spec)

    def set_config(self, cfg: Config) -> None:
        self.spec = replace(self.spec, config=cfg)
        self._show_day_choices()
        self.live.banner.hold_s = cfg.display.fail_hold_s
        self._show_selection()
        self.statusBar().showMessage(f"Settings saved to {self.settings_path}; they apply from the next start.", 10000)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Image folder", str(Path(self.spec.source).parent))
        if folder:
            self.set_source(folder)

    def choose_video(self) -> None:
        pattern = " ".join(f"*{s}" for s in sorted(VIDEO_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(self, "Video file", "", f"Videos ({pattern});;All files (*)")
        if path:
            self.set_source(path)

    def choose_camera(self) -> None:
        index, ok = QInputDialog.getInt(self, "Camera", "Camera index (0 is the first camera):", 0, 0, 99)
        if ok:
            self.set_source(str(index))

    def choose_url(self) -> None:
        url, ok = QInputDialog.getText(self, "Stream", "Stream URL (rtsp://, http://, https://):")
        if ok and url.strip():
            self.set_source(url.strip())

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "Models (*.pt *.onnx);;All files (*)")
        if path:
            self.set_model(Path(path))

    def choose_recipe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recipe file", "", "Recipes (*.toml);;All files (*)")
        if path:
            self.set_recipe(Path(path))

    def _show_selection(self) -> None:
        cfg = self.spec.config
        model = str(cfg.model.path) if cfg.model.path else "shipped model"
        recipe = str(self.recipe_path) if self.recipe_path else cfg.recipe.name
        if self.spec.product:
            recipe = f"product {self.spec.product}"
        loop = " (loop)" if self.spec.loop else ""
        source = short(mask_url(self.spec.source), 60)
        if cfg.camera.type != CameraType.OPENCV:
            cam = cfg.camera
            source = f"{cam.type.value} camera {cam.id or '(the first found)'}, {cam.trigger.value}"
        self.selection.setText(f"Source: {source}{loop}   ·   Model: {short(model, 50)}   ·   "
                               f"Recipe: {short(recipe, 40)}   ·   Database: {short(mask_url(self.spec.db_url), 60)}")

    # view -------------------------------------------------------------------------------------
    def toggle_kiosk(self) -> None:
        kiosk = not self.isFullScreen()
        self.actions_by_name["kiosk"].setChecked(kiosk)
        if kiosk:
            self._show_bars(False)
            self.live.set_kiosk(True)
            self.tabs.setCurrentWidget(self.live)
            self.showFullScreen()
            return
        # normal letters first, and the bars only once the layout has taken them in: kiosk's letters with the
        # bars would ask for more than the screen's height, and without a window manager the window grows
        self.live.set_kiosk(False)
        QTimer.singleShot(0, self._leave_kiosk)

    def _leave_kiosk(self) -> None:
        self._show_bars(True)
        self.showMaximized()
        self.setGeometry(self.screen().availableGeometry())  # without a window manager nothing maximises

    def _show_bars(self, shown: bool) -> None:
        for w in (self.menuBar(), self.toolbar, self.statusBar(), self.tabs.tabBar()):
            w.setVisible(shown)

    def open_camera_dialog(self) -> CameraDialog:
        if self.camera_dialog is not None:
            self.camera_dialog.close()
        self.camera_dialog = CameraDialog(self.spec.config, self.settings_path, self.controller.pool, self,
                                          guard=self.settings_guard)
        self.camera_dialog.saved.connect(lambda cfg: (self.set_config(cfg), self._apply(self.spec)))
        self.camera_dialog.show()
        return self.camera_dialog

    def open_settings(self) -> SettingsDialog:
        if self.settings is not None:
            self.settings.close()
        self.settings = SettingsDialog(self.spec.config, self.settings_path, self.controller.pool, self,
                                       guard=self.settings_guard)
        self.settings.saved.connect(self.set_config)
        self.settings.show()
        return self.settings

    # closing ----------------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.selection.setMaximumWidth(max(160, self.width() // 2))  # the other half shows the confirmations

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Stop the run and wait (in the event loop) until its last parts are written; then close."""
        if self.controller.idle:
            event.accept()
            return
        event.ignore()
        if not self._closing:
            self._closing = True
            self._restart = False
            self.actions_by_name["start"].setEnabled(False)
            self.live.banner.show_idle("STOPPING", "Writing the last parts before closing…")
            self.controller.stop()

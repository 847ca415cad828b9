"""The window's composition root: builds the application, the controller over the real Station, the tabs.

``run_app(spec)`` is what ``inspector`` (no command) calls. The review and reports screens plug in
through ``EXTRA_TABS``: a module ``ui.<name>`` with ``create_tab(spec: StationSpec) -> QWidget`` is
added as a tab when it exists.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from inspector.core.errors import InspectorError
from inspector.core.home import data_home
from station import DEFAULT_SOURCE, Station, StationSpec
from station.day import acknowledge_alarm
from ui.controller import LiveController
from ui.main_window import MainWindow
from ui.theme import apply_theme
from ui.workers import operator_message

log = logging.getLogger(__name__)

# module ui.<name>, tab title
EXTRA_TABS = (("review", "Review"), ("reports", "Reports"), ("models", "Models"), ("plant", "Plant"))
SIGNAL_POLL_MS = 200


def settings_path(config_path: Path | str | None) -> Path:
    """Where the settings dialog saves: the --config file if given, else the data folder's config.toml."""
    return Path(config_path) if config_path else data_home() / "config.toml"


def config_arg(argv: list[str]) -> str | None:
    """The --config value of the command line, for a caller that does not pass ``config_path``."""
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", default=None)
    return p.parse_known_args(argv)[0].config


def build_window(spec: StationSpec, config_path: Path | str | None = None) -> MainWindow:
    """The main window over the real Station (the QApplication must exist)."""
    controller = LiveController(Station, ack_offline=acknowledge_alarm)
    window = MainWindow(controller, spec, settings_path(config_path))
    controller.setParent(window)
    freeze_after_warm_up(controller)
    for name, title in EXTRA_TABS:
        try:
            tab = _optional_tab(name, spec)
        except Exception as e:  # noqa: BLE001 - a broken extra screen must not take the live screen down
            log.exception("the %s tab could not be built", title)
            window.live.error.show_error(f"The {title} screen could not be opened: {operator_message(e)}")
            continue
        if tab is not None:
            window.add_tab(tab, title)
            if hasattr(tab, "refresh_choices"):  # a new run is in the run filters at once
                controller.started.connect(lambda _info, tab=tab: tab.refresh_choices())
    _guard_settings(window, spec)
    _gate_tabs(window)
    return window


def _gate_tabs(window: MainWindow) -> None:
    """Tabs for some roles only (the Models tab: QC and admin) are shown while such a user is signed in."""
    for i in range(window.tabs.count()):
        tab = window.tabs.widget(i)
        changed = getattr(tab, "access_changed", None)
        if changed is None:
            continue
        window.tabs.setTabVisible(i, bool(tab.allowed))
        changed.connect(lambda ok, i=i: window.tabs.setTabVisible(i, ok))


def _guard_settings(window: MainWindow, spec: StationSpec) -> None:
    """Settings that change verdicts or storage, and report files: the user signed in on the review screen,
    checked (and, for settings, audited)."""
    from db import open_database, session_factory
    from inspector.core.auth import STATION_OPERATOR
    from ui.settings_guard import product_guard, settings_guard

    signed: list = [None]
    tabs = [window.tabs.widget(i) for i in range(window.tabs.count())]

    def set_actor(actor: object) -> None:
        signed[0] = actor
        for tab in tabs:
            if hasattr(tab, "actor") and not hasattr(tab, "actor_changed"):
                tab.actor = actor  # the reports screen writes report files as the signed-in user

    for tab in tabs:
        changed = getattr(tab, "actor_changed", None)
        if changed is not None:
            changed.connect(set_actor)
            window.with_user = tab.with_reviewer  # the live screen's day actions sign in where review does
    window.actor = lambda: signed[0] or STATION_OPERATOR
    opened: list = []

    def sessions():  # opened on first use, on the pool thread
        if not opened:
            from db.plant import attach_signer

            opened.append(session_factory(open_database(spec.db_url)))
            attach_signer(opened[0])  # signed by this station's key in a plant (issue 30)
        return opened[0]

    window.settings_guard = settings_guard(sessions, lambda: signed[0])
    window.product_guard = product_guard(sessions)
    window.destroyed.connect(lambda *_: opened and opened[0].kw["bind"].dispose())


def freeze_after_warm_up(controller: LiveController) -> None:
    """Once a run shows its first part (model loaded, everything imported), move every object alive into
    the collector's permanent generation. Otherwise each full collection walks the ~100k objects of
    torch, OpenCV and SQLAlchemy while holding the GIL, stalling the window for 50-120 ms."""
    warm = [False]

    def started(_info: object) -> None:
        warm[0] = False

    def first_results(_results: object) -> None:
        if not warm[0]:
            warm[0] = True
            gc.freeze()

    controller.started.connect(started)
    controller.results.connect(first_results)


def _optional_tab(name: str, spec: StationSpec) -> QWidget | None:
    try:
        module = importlib.import_module(f"ui.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"ui.{name}":
            raise
        return None
    create = getattr(module, "create_tab", None)
    return create(spec) if create is not None else None


def install_signal_handlers(window: MainWindow) -> QTimer:
    """SIGTERM/SIGINT close the window cleanly. Qt runs no Python code while idle in C++, so a timer wakes
    the interpreter regularly to let the handler run; the close then happens in the event loop."""
    requested: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        requested.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    timer = QTimer(window)

    def poll() -> None:
        if requested:
            log.info("signal %s: closing the window", requested[-1])
            requested.clear()
            window.close()

    timer.timeout.connect(poll)
    timer.start(SIGNAL_POLL_MS)
    return timer


def install_excepthook(window: MainWindow) -> None:
    """An exception escaping a slot goes to the log file and the error banner, not as a traceback to a console."""

    def hook(kind: type[BaseException], e: BaseException, tb: TracebackType | None) -> None:
        log.error("unhandled exception in the window", exc_info=(kind, e, tb))
        try:
            window.live.error.show_error(operator_message(e))
        except RuntimeError:  # the window is already gone
            pass

    sys.excepthook = hook


def drop_foreign_qt_plugins() -> None:
    """opencv-python points QT_QPA_PLATFORM_PLUGIN_PATH at its own (Qt 5) plugins when cv2 is imported;
    Qt 6 cannot load those, so the window would not open on X11."""
    path = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "")
    if path and "cv2" in Path(path).parts:
        del os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"]


XCB_PACKAGES = ("libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 "
                "libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0")


def x11_problem(plugin: Path | None = None) -> str | None:
    """None if Qt's X11 plugin can load; else one sentence naming what is missing.

    Without this, a missing system library makes Qt abort the process with a page of text."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM", "xcb") not in ("", "xcb"):
        return None
    if not os.environ.get("DISPLAY"):
        return None
    if plugin is None:
        import PySide6

        plugin = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if not plugin.exists():
            return None
    import ctypes

    headless = "Or run headless: inspector run --source FOLDER|VIDEO|CAMERA|URL"
    try:
        ctypes.CDLL(str(plugin))
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError as e:
        return (f"the window cannot open on X11: Qt's X11 plugin does not load ({e}); on Debian/Ubuntu: "
                f"apt-get install {XCB_PACKAGES}. {headless}")
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    # An X server with no client left resets itself (Xvfb, a bare X on a kiosk PC), and refuses connections
    # while it does: so a display that refuses is asked again for a few seconds (it may be starting or
    # resetting), and the probe's connection is held open until Qt has its own (``release_display_probe``):
    # closing it first would start such a reset just as Qt connects, and Qt aborts when it cannot connect.
    end = time.monotonic() + DISPLAY_WAIT_S
    while True:
        conn = xcb.xcb_connect(None, None)
        if not xcb.xcb_connection_has_error(conn):
            _PROBE.append(lambda c=conn: xcb.xcb_disconnect(c))
            return None
        xcb.xcb_disconnect(conn)
        if time.monotonic() >= end:
            return f"cannot connect to the display {os.environ['DISPLAY']!r} (is the X server running?). {headless}"
        time.sleep(0.2)


DISPLAY_WAIT_S = 5.0  # how long a display that refuses connections is asked again before the one-line error
_PROBE: list = []  # the display probe's open connection (its close), until Qt has connected


def release_display_probe() -> None:
    """Close the display probe's connection (once Qt holds its own)."""
    while _PROBE:
        _PROBE.pop()()


def show_on_screen(window: MainWindow) -> None:
    """Maximised on the primary screen; without a window manager (kiosk PCs, Xvfb) the geometry is set here,
    since nothing else maximises the window."""
    screen = QApplication.primaryScreen()
    if screen is not None:
        window.setGeometry(screen.availableGeometry())
    window.showMaximized()


def run_app(spec: StationSpec, config_path: Path | str | None = None, autostart: bool = True) -> int:
    """Open the window and start inspecting; returns the exit code once the window is closed."""
    drop_foreign_qt_plugins()
    problem = x11_problem()
    if problem:
        raise InspectorError(problem)  # the command line prints it as one line and exits with 2
    if config_path is None:
        config_path = config_arg(sys.argv[1:])
    if spec.source == DEFAULT_SOURCE:
        spec = replace(spec, loop=True)  # the built-in demo plays the sample images as a line
    app = QApplication.instance() or QApplication(sys.argv[:1])
    release_display_probe()
    app.setApplicationName("Inspector")
    apply_theme(app)
    window = build_window(spec, config_path)
    install_signal_handlers(window)
    install_excepthook(window)
    show_on_screen(window)
    if autostart:
        QTimer.singleShot(0, window.start)
    code = app.exec()
    window.controller.shutdown()
    return code

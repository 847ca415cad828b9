"""Is there a screen to open a window on? Answered without importing Qt."""

from __future__ import annotations

import os
import sys


def display_problem() -> str | None:
    """None when a window can open; else one sentence saying why not."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "vnc", "eglfs", "linuxfb")):
        return None
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display is available for the window (DISPLAY is not set)."
    try:
        import PySide6  # noqa: F401
    except ImportError:
        return "the window needs PySide6, which is not installed."
    return None

"""Ultralytics kept local: no analytics, hub or settings sync, and no font download.

The part of the offline guard (``inspector.core.privacy``) that needs Ultralytics loaded; called by
every module that uses Ultralytics (the detector, training, export) before it does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from inspector.core.privacy import guard_process

_done = False


def keep_data_local() -> None:
    """Before Ultralytics is used: no analytics, hub or settings sync, and no font download; safe to call again."""
    global _done
    if _done:
        return
    guard_process()
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        from ultralytics import settings
    except ImportError:
        _done = True
        return
    _no_font_download()
    wanted = {"sync": False, "hub": False, "tensorboard": False, "mlflow": False,
              "wandb": False, "clearml": False, "comet": False, "dvc": False, "neptune": False,
              "raytune": False}
    changes = {k: v for k, v in wanted.items() if k in settings and settings.get(k) != v}
    if changes:
        settings.update(changes)
    _done = True


def local_font(font: str = "Arial.ttf") -> str | None:
    """What Ultralytics' ``check_font`` finds without the network: its own copy, else matplotlib's DejaVu Sans."""
    try:
        from ultralytics.utils import USER_CONFIG_DIR

        own = Path(USER_CONFIG_DIR) / Path(font).name
        if own.is_file():
            return str(own)
        import matplotlib

        dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return str(dejavu) if dejavu.is_file() else None
    except Exception:  # noqa: BLE001 - no font only means PIL's built-in one in plots
        return None


def _no_font_download() -> None:
    """Replace ``check_font`` wherever Ultralytics imported it (it downloads Arial.ttf from GitHub)."""
    import ultralytics.data.utils
    import ultralytics.utils.checks
    import ultralytics.utils.plotting  # noqa: F401 - imported so that its check_font is replaced too

    original = ultralytics.utils.checks.check_font
    if original is local_font:
        return
    for name, mod in list(sys.modules.items()):
        if name.startswith("ultralytics") and getattr(mod, "check_font", None) is original:
            mod.check_font = local_font  # type: ignore[attr-defined]

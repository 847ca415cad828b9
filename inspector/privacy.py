"""Keep data on the machine: nothing Inspector runs looks up or connects to another host.

``guard_process`` runs first in every Inspector process (``inspector/__init__.py`` calls it, so the
command line, ``python -m inspector``, the window, bench scripts and every multiprocessing child
that imports Inspector code run it before any third-party import). It uses only the standard
library, and only switches that the installed packages read (checked in their sources):

- OpenVINO's model converter (imported by ``import openvino``) and NNCF send Google Analytics
  events through ``openvino_telemetry`` unless a consent file in the user's home says no; no
  environment variable turns it off (only ``CI=true``, which means more to other tools). Marking
  the package absent in ``sys.modules`` makes both fall back to their own no-op stubs.
- ``NNCF_CI`` makes NNCF use its telemetry stub even if ``openvino_telemetry`` got loaded.
- ``YOLO_OFFLINE`` makes Ultralytics skip its DNS "is online" probe, and with it analytics
  (``events``), PyPI update checks and hub calls; ``YOLO_AUTOINSTALL=False`` stops ``pip install``.

The variables are inherited by every child process. ``keep_data_local`` (called before Ultralytics
is used) adds what needs Ultralytics loaded: its font download (``check_font`` asks GitHub for
Arial.ttf whenever a data set is checked, offline or not) is replaced by a local font.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

OFFLINE_ENV = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",
    "NNCF_CI": "1",
}

_done = False


def guard_process() -> None:
    """Switch every known call-out off before any third-party package is imported; standard library only."""
    os.environ.update(OFFLINE_ENV)
    block_openvino_telemetry()


def block_openvino_telemetry() -> None:
    """Make sure OpenVINO and NNCF send nothing, without touching the network or the user's files.

    Marking ``openvino_telemetry`` as absent makes OpenVINO and NNCF fall back to their built-in
    no-op stubs; if it is already loaded, its singleton is told that consent was refused.
    """
    absent = object()
    mod = sys.modules.get("openvino_telemetry", absent)
    if mod is absent:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import now raises ImportError
        return
    if mod is None:
        return
    try:
        cls = getattr(mod, "Telemetry")  # noqa: B009 - mod is an untyped module
        inst = getattr(type(cls), "_SingletonMetaClass__single_instance", None) or \
            getattr(cls, "_SingletonMetaClass__single_instance", None)
        if inst is not None:
            inst.consent = False
        cls.send_event = cls.start_session = cls.end_session = lambda *a, **k: None  # belt and braces
    except Exception:  # noqa: BLE001 - an unexpected version: nothing else to switch off
        log.debug("could not switch off an already loaded openvino_telemetry", exc_info=True)


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

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

The variables are inherited by every child process.
``inspector.detection.offline.keep_data_local`` (called before Ultralytics is used) adds what needs
Ultralytics loaded: its font download (``check_font`` asks GitHub for Arial.ttf whenever a data set is
checked, offline or not) is replaced by a local font.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

OFFLINE_ENV = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",
    "NNCF_CI": "1",
}

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

"""Keep data on the machine: switch off Ultralytics' (and OpenVINO's) telemetry before first use."""

from __future__ import annotations

import os

_done = False


def keep_data_local() -> None:
    """Turn off Ultralytics settings sync/analytics and hub checks; safe to call many times."""
    global _done
    if _done:
        return
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:  # OpenVINO sends an analytics event on import unless blocked; this uses its no-op stubs
        from inspector.fast_detector import block_openvino_telemetry

        block_openvino_telemetry()
    except ImportError:
        pass
    try:
        from ultralytics import settings
    except ImportError:
        _done = True
        return
    wanted = {"sync": False, "hub": False, "tensorboard": False, "mlflow": False,
              "wandb": False, "clearml": False, "comet": False, "dvc": False, "neptune": False,
              "raytune": False}
    changes = {k: v for k, v in wanted.items() if k in settings and settings.get(k) != v}
    if changes:
        settings.update(changes)
    _done = True

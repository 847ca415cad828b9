"""The configuration sections whose change needs an admin's approval before the next run (issue 24): they change
verdicts (quality, shadow), storage, the station's identity (station), line security and timing (line) or alarms,
and since the second round of issue 24 what decides which picture is judged: the run's mode (part/stream: a dropped
frame or none) and its older station name, the camera (which camera, its trigger, exposure, region...), and the
model's image size, NMS overlap and time-out. The recipe and the model file have guards of their own (registered
recipes, trusted models)."""

from __future__ import annotations

import hashlib
import json

from inspector.core.config import Config

GUARDED = ("quality", "storage", "station", "alarms", "shadow", "line", "run", "camera", "model")
#: fields of a guarded section left free (they change neither verdicts nor identity nor security)
FREE = {"storage": ("db_url",), "run": ("queue_size",),
        # how long to wait for the camera and how to reconnect: when a picture arrives, not which one is judged
        "camera": ("open_timeout_s", "read_timeout_s", "reconnect_initial_s", "reconnect_max_s", "max_reconnects"),
        # the model file has its own guard (trusted hashes, promotions); backend, threads, precision and tuning are
        # speed (the backends agree, tested); the image size, NMS overlap and time-out change verdicts
        "model": ("path", "backend", "threads", "precision", "autotune")}


def section_hashes(cfg: Config) -> dict[str, str]:
    """section -> SHA-256 of its values (the database URL left out: the database decides where it is checked; the
    run's queue size and the camera's time-outs left out (``FREE``): they change no verdict)."""
    out = {}
    for name in GUARDED:
        values = getattr(cfg, name).model_dump(mode="json")
        for free in FREE.get(name, ()):
            values.pop(free, None)
        out[name] = hashlib.sha256(json.dumps(values, sort_keys=True).encode("utf-8")).hexdigest()
    return out

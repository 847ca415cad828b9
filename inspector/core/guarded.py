"""The configuration sections whose change needs an admin's approval before the next run (issue 24): they change
verdicts (quality, shadow), storage, the station's identity (station), line security and timing (line) or alarms.
The recipe and the model have guards of their own (registered recipes, trusted models)."""

from __future__ import annotations

import hashlib
import json

from inspector.core.config import Config

GUARDED = ("quality", "storage", "station", "alarms", "shadow", "line")


def section_hashes(cfg: Config) -> dict[str, str]:
    """section -> SHA-256 of its values (the database URL left out: the database decides where it is checked)."""
    out = {}
    for name in GUARDED:
        values = getattr(cfg, name).model_dump(mode="json")
        if name == "storage":
            values.pop("db_url", None)
        out[name] = hashlib.sha256(json.dumps(values, sort_keys=True).encode("utf-8")).hexdigest()
    return out

"""The user's data folder: database, images, keys, tune records, logs."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_home() -> Path:
    """The user's data folder (database, images, registry); INSPECTOR_HOME overrides it."""
    env = os.environ.get("INSPECTOR_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("inspector", appauthor=False))

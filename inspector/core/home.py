"""The user's data folder: database, images, keys, tune records, logs."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def secure_data_home() -> Path:
    """The data folder, made (or narrowed to) owner-only, and files this process makes from now on owner-only
    too (umask 077): the database, its images, logs and keys are no other local account's to read. On Windows
    the folder lies in the user's profile, whose ACLs already keep other accounts out."""
    home = data_home()
    if os.name == "posix":
        os.umask(0o077)
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name == "posix" and home.stat().st_mode & 0o077 and home.stat().st_uid == os.getuid():
            home.chmod(0o700)
    except OSError:
        pass  # a folder that cannot be made is reported by whatever needs it
    return home


def data_home() -> Path:
    """The user's data folder (database, images, registry); INSPECTOR_HOME overrides it."""
    env = os.environ.get("INSPECTOR_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("inspector", appauthor=False))

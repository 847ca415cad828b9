"""The station's sealing key: an HMAC key in a file outside the database, so that rows written behind
Inspector's back (verdicts, roles, trusted hashes, the audit chain's end) show when checked.

The key lives in the data folder (``integrity.key``, readable by its owner only), made on first use.
Someone who can write the database but not read this file cannot forge a seal; someone who holds
both can (the README's "Security model" says what is left then).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from inspector.core.errors import StorageError

log = logging.getLogger(__name__)

KEY_FILE = "integrity.key"
_lock = threading.Lock()
_cache: dict[Path, bytes] = {}


def key_path(home: Path | None = None) -> Path:
    from inspector.core.home import data_home

    return (home or data_home()) / KEY_FILE


def station_key(home: Path | None = None, create: bool = True) -> bytes:
    """The sealing key of this data folder, created (owner-only) when there is none yet and ``create``."""
    path = key_path(home)
    with _lock:
        key = _cache.get(path)
        if key is not None:
            return key
        try:
            key = bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            if not create:
                raise StorageError(f"the station's sealing key {path} is missing, so no seal can be checked: "
                                   "restore it from the backup (it was deleted or this is another data "
                                   "folder)") from None
            key = _create(path)
        except (OSError, ValueError) as e:
            raise StorageError(f"The station's sealing key {path} is unreadable ({e}); restore it from the "
                               "backup, or nothing sealed with it can be checked.") from e
        if len(key) < 32:
            raise StorageError(f"The station's sealing key {path} is too short: restore it from the backup.")
        _cache[path] = key
        return key


def _create(path: Path) -> bytes:
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
        f.flush()
        os.fsync(f.fileno())
    log.warning("created the station's sealing key %s: back it up with the database", path)
    return key


def seal(key: bytes, *fields: Any) -> str:
    """HMAC-SHA256 (hex) over the canonical JSON of ``fields``."""
    payload = json.dumps(list(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def sealed(key: bytes, mac: str | None, *fields: Any) -> bool:
    return bool(mac) and hmac.compare_digest(seal(key, *fields), mac or "")

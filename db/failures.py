"""Turn driver and file-system failures into one clear ``StorageError`` sentence: what, where, what to do."""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from inspector.core.errors import StorageError

_LOCKED = ("database is locked", "database table is locked", "database is busy", "could not obtain lock",
           "lock timeout", "deadlock detected")
_FULL = ("database or disk is full", "no space left on device", "disk full", "could not extend file")
_READONLY = ("readonly database", "read-only", "read only", "permission denied")
_NOT_DB = ("file is not a database", "file is encrypted", "database disk image is malformed")
_CANT_OPEN = ("unable to open database file",)
_NO_SERVER = ("could not connect", "connection refused", "could not translate host name", "connection to server",
              "password authentication failed", "does not exist", "no password supplied", "timeout expired")


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, fit for messages and logs (the one mask function)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: mask anything that looks like user:password@
        return re.sub(r"(://[^:/@\[]*:)[^@]*@", r"\1***@", str(url))


def mask_text(text: str, url: str) -> str:
    """``text`` with every occurrence of ``url`` (and of its password) masked."""
    out = str(text).replace(url, mask_url(url))
    try:
        pw = make_url(url).password
    except Exception:
        m = re.search(r"://[^:/@\[]*:([^@]*)@", url)
        pw = m.group(1) if m else None
    return out.replace(str(pw), "***") if pw else out


def parse_url(url: str) -> URL:
    """The parsed database URL; StorageError (one sentence, password masked) when it is not a valid one."""
    try:
        u = make_url(url)
        _ = u.port  # a port that is not a number fails in the parser above; keep the check explicit
    except (ArgumentError, ValueError, TypeError) as e:
        raise StorageError(f"The database address {mask_url(url)!r} is not a valid URL (check the host and the port "
                           "number); write it as sqlite:///path/to/inspector.db or "
                           "postgresql://user:password@host:5432/name.") from e
    return u


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL, or None for another backend or an in-memory database."""
    u = parse_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:" or u.database.startswith("file:"):
        return None
    return Path(u.database)


def free_mb(path: Path | None) -> float | None:
    """Free space in MB on the disk holding ``path`` (or its nearest existing parent)."""
    if path is None:
        return None
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free / 1e6
    except OSError:
        return None


def _text(exc: BaseException) -> str:
    """The driver's first line, without any SQL statement or parameters SQLAlchemy appends."""
    orig = getattr(exc, "orig", None) or exc
    line = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return re.split(r"\s*\[(?:SQL|parameters):", line)[0].strip() or type(orig).__name__


def safe_text(exc: BaseException) -> str:
    """An exception's first line for a screen or a log line: never an SQL statement, its parameters (a password
    hash) or a password in a URL."""
    return re.sub(r"(://[^:/@\[\s]*:)[^@\s]*@", r"\1***@", _text(exc))


def _errno(exc: BaseException) -> int | None:
    e: BaseException | None = exc
    while e is not None:
        if isinstance(e, OSError) and e.errno is not None:
            return e.errno
        e = getattr(e, "orig", None) or e.__cause__
    return None


def is_locked(exc: BaseException) -> bool:
    return any(s in _text(exc).lower() for s in _LOCKED)


def storage_error(exc: BaseException, url: str, doing: str) -> StorageError:
    """One sentence for ``exc``, raised while ``doing`` (e.g. "saving 12 inspections") on database ``url``."""
    where = mask_url(url)
    text = _text(exc)
    low = text.lower()
    code = _errno(exc)
    path = None
    try:
        path = sqlite_path(url)
    except Exception:
        pass
    if is_locked(exc):
        return StorageError(f"{doing} failed: the database {where} is locked by another program; "
                            "close the other program or wait for it to finish, then try again.")
    free = free_mb(path)
    if code == errno.ENOSPC or any(s in low for s in _FULL) or ("disk i/o error" in low and free is not None
                                                                 and free < 1):
        room = f" ({free:.1f} MB free)" if free is not None else ""
        return StorageError(f"{doing} failed: the disk holding the database {where} is full{room}; "
                            "free some space and try again.")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or any(s in low for s in _READONLY):
        return StorageError(f"{doing} failed: the database {where} or its folder is read-only; "
                            "choose a writable location or fix its permissions.")
    if any(s in low for s in _NOT_DB):
        return StorageError(f"{doing} failed: {where} is not an Inspector database (or it is damaged); "
                            "choose another file or restore a backup.")
    if any(s in low for s in _CANT_OPEN):
        return StorageError(f"{doing} failed: the database file {where} cannot be opened; "
                            "check that its folder exists and can be written.")
    if path is None and isinstance(exc, OperationalError) and any(s in low for s in _NO_SERVER):
        return StorageError(f"{doing} failed: cannot reach the database server at {where} ({text}); "
                            "check that the server is running and the user, password and database name are right.")
    return StorageError(f"{doing} failed on the database {where}: {text}; see the log for details.")

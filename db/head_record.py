"""The data folder's own record of each database it writes (issue 24): two copies of one database share a
``seal_id``, so their rows verify in each other; the data folder tells them apart.

After every committed audit entry, the data folder keeps (``record-heads.json``, sealed with the station's key) for
that database's ``seal_id``: where the database lives (``db.identity``: an SQLite file's path and inode, a
PostgreSQL database's name, OID and server) and the last audit entry it saw written (id and hash). A database that
carries a recorded ``seal_id`` but lives elsewhere (a copy, a backup restored in its place), or whose trail lacks
that entry (rolled back, restored from an older backup, or the copy that was not written last), is reported at the
station's start and by ``inspector audit verify``, in one sentence, until an admin adopts it (``inspector audit
adopt``, audited). The record is not rewritten while it disagrees, so the report stays until someone decides.

What it cannot see: a copy used only from another data folder (another PC, with a copy of the key file), and a
data folder whose record file was deleted (it starts again from what it finds, like a first use).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from db.identity import _home, same_database
from db.schema import AuditEntry
from db.seal import key, read_binding
from inspector.core.errors import StorageError
from inspector.core.integrity import key_path, seal, sealed

log = logging.getLogger(__name__)

FILE = "record-heads.json"
KEEP = 64  # databases remembered per data folder (the newest written)
_lock = threading.Lock()


@dataclass(frozen=True)
class Head:
    """The last audit entry this data folder saw written in the database of ``seal_id``, and where it lived."""

    seal_id: str
    home: dict[str, Any] = field(hash=False)
    last_id: int
    last_hash: str
    at: str = ""
    #: audit entries (id, hash) written in a copy of this database through this data folder: found here, they
    #: were moved in from the copy
    copies: tuple[tuple[int, str], ...] = ()

    def fields(self) -> tuple:
        base = ("record-head", self.seal_id, json.dumps(self.home, sort_keys=True), int(self.last_id),
                self.last_hash, self.at)
        return base + (json.dumps([list(c) for c in self.copies]),) if self.copies else base


def _path() -> Path:
    return key_path().parent / FILE


def read_heads(k: bytes) -> tuple[dict[str, Head], bool]:
    """The recorded heads by ``seal_id``, and whether the file was whole (an entry whose seal fails is dropped and
    reported as False)."""
    try:
        raw = json.loads(_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, True
    except (OSError, ValueError):
        return {}, False
    out, whole = {}, True
    for seal_id, v in (raw.items() if isinstance(raw, dict) else ()):
        try:
            h = Head(seal_id, dict(v["home"]), int(v["last_id"]), str(v["last_hash"]), str(v.get("at", "")),
                     tuple((int(i), str(x)) for i, x in v.get("copies", ())))
        except (KeyError, TypeError, ValueError):
            whole = False
            continue
        if sealed(k, v.get("mac"), *h.fields()):
            out[seal_id] = h
        else:
            whole = False
    return out, whole


MAX_COPIES = 256  # entries written in copies remembered per database


def _write(k: bytes, head: Head, in_copy: bool = False, adopted: bool = False) -> None:
    """Record ``head`` as the database's; ``in_copy``: an entry written in a copy, kept in the record's ``copies``
    (the record itself unchanged); ``adopted``: an admin's word, which forgets the copies' entries."""
    with _lock:
        heads, _ = read_heads(k)
        old = heads.get(head.seal_id)
        if in_copy:
            if old is None:
                return
            head = replace(old, copies=(*old.copies, (head.last_id, head.last_hash))[-MAX_COPIES:])
        elif old is not None and not adopted:
            head = replace(head, copies=old.copies)
        heads[head.seal_id] = head
        newest = sorted(heads.values(), key=lambda h: h.at, reverse=True)[:KEEP]
        data = {h.seal_id: {"home": h.home, "last_id": h.last_id, "last_hash": h.last_hash, "at": h.at,
                            "mac": seal(k, *h.fields()),
                            **({"copies": [list(c) for c in h.copies]} if h.copies else {})} for h in newest}
        path = _path()
        tmp = path.with_name(f"{FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text(json.dumps(data, sort_keys=True, indent=1), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as e:  # the record is a second opinion: the station keeps working without it
            log.warning("could not keep this database's record head in %s (%s)", path, e.strerror or e)
            tmp.unlink(missing_ok=True)


def _where(home: dict[str, Any]) -> str:
    if home.get("kind") == "sqlite":
        return f"file {home.get('path')}"
    return f"PostgreSQL database {home.get('name')} (oid {home.get('oid')})"


def problem(session: Session) -> str | None:
    """Why this database is not the one this data folder last wrote under its ``seal_id`` (one sentence), or None
    (the same database, at or past the recorded entry; or nothing recorded; or no key to read the record with)."""
    found = _recorded(session)
    if found is None:
        return None
    head, here = found
    if here is not None and not same_database(head.home, here):
        return (f"this database is a copy: its seal id was last written by this data folder in the {_where(head.home)},"
                f" not the {_where(here)} (or a backup was restored in its place); rows moved between copies verify "
                "in both: compare its record head with a copy kept elsewhere, and if it is the right one an admin "
                "adopts it with 'inspector audit adopt --user NAME'.")
    moved = _moved_in(session, head)
    if moved is not None:
        return (f"audit entry {moved} of this database was written in a copy of it (through this data folder) and "
                "moved in here: rows moved between copies of one database; restore this database from its backup, "
                "or an admin adopts it as it is with 'inspector audit adopt --user NAME'.")
    if not _has_entry(session, head):
        return (f"this database is older than what this data folder last saw written in it (audit entry "
                f"{head.last_id}, {head.at[:16]}, is missing or different): it was rolled back or restored from a "
                "backup, or it is the copy that was not written last; if that is intended an admin adopts it with "
                "'inspector audit adopt --user NAME'.")
    return None


def _recorded(session: Session) -> tuple[Head, dict[str, Any] | None] | None:
    b = read_binding(session)
    if b is None or not b.holds or not b.seal_id:
        return None
    try:
        k = key(session, create=False)
    except StorageError:
        return None
    heads, _ = read_heads(k)
    head = heads.get(b.seal_id)
    return None if head is None else (head, _home(session))


def _moved_in(session: Session, head: Head) -> int | None:
    """The first audit entry here that was written in a copy, else None."""
    if not head.copies:
        return None
    ids = {i: h for i, h in head.copies}
    for i, h in session.execute(select(AuditEntry.id, AuditEntry.hash).where(AuditEntry.id.in_(list(ids)))):
        if ids[i] == h:
            return int(i)
    return None


def _has_entry(session: Session, head: Head) -> bool:
    found = session.execute(select(AuditEntry.hash).where(AuditEntry.id == head.last_id)).scalar()
    return found == head.last_hash


def note(session: Session, last_id: int, last_hash: str) -> None:
    """Called with each audit entry written: once the transaction commits, the data folder records it as this
    database's head, unless the database disagrees with the record (``problem``) and no admin adopts it here."""
    b = read_binding(session)
    if b is None or not b.holds or not b.seal_id:
        return
    import datetime as dt

    here = _home(session)
    if here is None:
        return
    adopted = bool(session.info.get("_head_adopt"))
    in_copy = not adopted and problem(session) is not None  # remembered as written in a copy, the record unchanged
    head = Head(b.seal_id, here, last_id, last_hash, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    pending = session.info.setdefault("_head_pending", [])
    pending.append((head, in_copy, adopted))  # each entry of a copy is remembered; of the others, the last counts
    if not session.info.get("_head_listening"):
        session.info["_head_listening"] = True
        event.listen(session, "after_commit", _committed)
        event.listen(session, "after_rollback", _rolled_back)


def adopt(session: Session, actor: Any) -> str | None:
    """An admin (anyone on a fresh install) says this database is the one: the audit trail records it with what
    was reported, and the data folder's record follows it from the commit on. Returns what was reported (None:
    nothing disagreed)."""
    from db.repositories.audit import AuditRepo
    from db.repositories.users import authorize

    who = authorize(session, actor, "settings")
    was = problem(session)
    b = read_binding(session)
    session.info["_head_adopt"] = True
    try:
        AuditRepo.append(session, actor=who.name, action="record.adopt",
                         target=f"database:{b.seal_id if b is not None else ''}", detail={"was": was or ""})
    finally:
        session.info.pop("_head_adopt", None)
    return was


def _committed(session: Session) -> None:
    pending = session.info.pop("_head_pending", None) or []
    last = [p for p in pending if not p[1]][-1:]
    for head, in_copy, adopted in [p for p in pending if p[1]] + last:
        try:
            _write(key(session), head, in_copy, adopted)
        except StorageError as e:
            log.warning("%s", e)
            return


def _rolled_back(session: Session) -> None:
    session.info.pop("_head_pending", None)

"""The audit trail: append-only and hash-chained, with an anchor row so that a deleted tail shows.

Each entry's hash is sha256 over canonical JSON of (id, created_at ISO, actor, action, target,
detail, prev_hash); the first entry's prev_hash is 64 zeros. ``audit_anchor`` keeps the count and
the last hash, sealed with the station's key (``inspector.core.integrity``, a file outside the database):
rewriting the chain, or cutting its tail and moving the anchor back, needs that key. ``verify`` also
checks the seals of inspections, reviews, users and trusted files (``db.seal``). Someone holding
both the database and the key is not caught: for that, the chain head printed on every report can
be compared with a copy kept elsewhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from db.dto import AuditEntryDTO, AuditReport
from db.repositories._common import dumps, loads, utcnow
from db.schema import ZERO_HASH, AuditAnchor, AuditEntry, Run, TrustedFile, User
from db.seal import anchor_fields, anchor_sealed, key, verify_seals
from inspector.core.errors import StorageError
from inspector.core.integrity import seal

log = logging.getLogger(__name__)

ANCHOR_ID = 1
MAX_PROBLEMS = 100


def entry_hash(id: int, created_at: dt.datetime, actor: str, action: str, target: str, detail: Any,
               prev_hash: str) -> str:
    """The chain hash of one entry (``detail`` as decoded JSON)."""
    stamp = created_at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    payload = json.dumps([id, stamp, actor, action, target, detail, prev_hash], sort_keys=True,
                         separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _dto(e: AuditEntry) -> AuditEntryDTO:
    return AuditEntryDTO(id=e.id, created_at=e.created_at, actor=e.actor, action=e.action, target=e.target,
                         detail=loads(e.detail, {}), prev_hash=e.prev_hash, hash=e.hash)


class AuditRepo:
    @staticmethod
    def append(session: Session, actor: str, action: str, target: str = "",
               detail: dict[str, Any] | None = None) -> AuditEntryDTO:
        """Add one entry at the end of the chain, inside the caller's transaction."""
        anchors = cast(Table, AuditAnchor.__table__)
        # Write the anchor first: that takes SQLite's write lock (PostgreSQL's row lock), so a second
        # writer waits here instead of chaining onto a last entry that is about to change.
        locked = session.execute(update(anchors).where(anchors.c.id == ANCHOR_ID)
                                 .values(entries=anchors.c.entries)).rowcount  # type: ignore[attr-defined]
        if not locked:
            session.execute(insert(anchors).values(id=ANCHOR_ID, entries=0, last_id=0, last_hash=ZERO_HASH))
        last = session.execute(select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).first()
        new_id, prev = (last.id + 1, last.hash) if last else (1, ZERO_HASH)
        text = dumps(detail or {})
        created = utcnow()
        digest = entry_hash(new_id, created, actor, action, target, loads(text), prev)
        entry = AuditEntry(id=new_id, created_at=created, actor=actor, action=action, target=target, detail=text,
                           prev_hash=prev, hash=digest)
        session.add(entry)
        session.flush()
        entries = session.execute(select(anchors.c.entries).where(anchors.c.id == ANCHOR_ID)).scalar_one() + 1
        mac = seal(key(session), *anchor_fields(_Anchor(entries, new_id, digest)))
        session.execute(update(anchors).where(anchors.c.id == ANCHOR_ID)
                        .values(entries=entries, last_id=new_id, last_hash=digest, mac=mac))
        return _dto(entry)

    @staticmethod
    def head(session: Session) -> tuple[int, str]:
        """(entries, last hash) of the chain as the anchor records it: print it where it can be compared later."""
        anchor = session.get(AuditAnchor, ANCHOR_ID)
        return (0, ZERO_HASH) if anchor is None else (anchor.entries, anchor.last_hash)

    @staticmethod
    def list(session: Session, limit: int = 200, before_id: int | None = None) -> list[AuditEntryDTO]:
        """Newest first; pass the last id seen as ``before_id`` for the next page."""
        q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if before_id is not None:
            q = q.where(AuditEntry.id < before_id)
        return [_dto(e) for e in session.scalars(q)]

    @staticmethod
    def verify(session: Session) -> AuditReport:
        """Walk the chain: a changed row breaks its hash, a deleted row leaves an id gap and a broken link,
        a deleted tail disagrees with the anchor, a moved anchor breaks its seal; then check every sealed row."""
        problems: list[str] = []

        def problem(text: str) -> None:
            if len(problems) < MAX_PROBLEMS:
                problems.append(text)

        expected_id, prev, n = 1, ZERO_HASH, 0
        rows = session.execute(select(AuditEntry.__table__).order_by(AuditEntry.id).execution_options(yield_per=2000))
        for e in rows:
            n += 1
            if e.id != expected_id:
                gap = f"entry {expected_id}" if e.id == expected_id + 1 else f"entries {expected_id} to {e.id - 1}"
                problem(f"{gap} missing: deleted from the audit trail")
            if e.prev_hash != prev:
                problem(f"entry {e.id}: does not link to the entry before it (an entry was deleted or changed)")
            try:
                detail = loads(e.detail, {})
            except ValueError:
                detail = None
            if detail is None or entry_hash(e.id, e.created_at, e.actor, e.action, e.target, detail,
                                            e.prev_hash) != e.hash:
                problem(f"entry {e.id}: its content does not match its hash (the entry was changed)")
            prev, expected_id = e.hash, e.id + 1
        try:
            key(session, create=False)
        except StorageError as e:  # the seals cannot be checked: that is no "OK"
            problem(str(e))
            return AuditReport(ok=False, entries=n, problems=tuple(problems))
        anchor = session.get(AuditAnchor, ANCHOR_ID)
        if anchor is None:
            problem("the audit anchor is missing: it was deleted, so deleted entries cannot be ruled out")
        elif not _anchor_ok(session, anchor):
            problem("the audit anchor's seal does not match: the anchor was rewritten outside Inspector "
                    "(entries deleted or the chain replaced)")
        elif anchor.last_hash != prev or anchor.last_id != expected_id - 1:
            problem(f"the trail ends at entry {expected_id - 1}, but the anchor records its end at entry "
                    f"{anchor.last_id}: entries at the end were deleted")
        elif anchor.entries != n:
            problem(f"the trail has {n} entries, but the anchor records {anchor.entries}: entries were deleted")
        verify_seals(session, problem)
        if problems:
            log.info("audit trail: %d problem(s), first: %s", len(problems), problems[0])
        return AuditReport(ok=not problems, entries=n, problems=tuple(problems))


class _Anchor:
    def __init__(self, entries: int, last_id: int, last_hash: str) -> None:
        self.entries, self.last_id, self.last_hash = entries, last_id, last_hash


def _anchor_ok(session: Session, anchor: AuditAnchor) -> bool:
    """A sealed anchor, or the unsealed empty one a new database starts with while nothing else was written:
    once users, runs or trusted files exist, audit entries were written and the anchor was sealed."""
    if anchor_sealed(session, anchor):
        return True
    if anchor.mac or anchor.entries or anchor.last_id or anchor.last_hash != ZERO_HASH:
        return False
    return not any(session.execute(select(func.count()).select_from(t)).scalar() for t in (User, Run, TrustedFile))

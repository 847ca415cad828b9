"""The audit trail: append-only and hash-chained, with an anchor row so that a deleted tail shows.

Each entry's hash is sha256 over canonical JSON of (id, created_at ISO, actor, action, target,
detail, prev_hash); the first entry's prev_hash is 64 zeros. ``audit_anchor`` keeps the count and
the last hash, sealed with the station's key (``inspector.core.integrity``, a file outside the database):
rewriting the chain, or cutting its tail and moving the anchor back, needs that key. ``verify`` also
checks the seals of inspections, reviews, users and trusted files (``db.seal``). Someone holding
both the database and the key is not caught: for that, the chain head printed on every report can
be compared with a copy kept elsewhere.

In a plant (issue 30) each registered station keeps a chain of its own: its entries carry its name, link to its
own previous entry, and its row in ``stations`` is the anchor, signed with the station's Ed25519 key, so anyone
can check it with the public key alone. Entry ids stay one sequence for the whole database (taken under the
single-station anchor's row lock), so a deleted entry of any chain also leaves an id gap.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from db import head_record
from db.dto import AuditEntryDTO, AuditReport
from db.repositories._common import dumps, loads, utcnow
from db.schema import (
    ZERO_HASH,
    AuditAnchor,
    AuditEntry,
    ModelPromotion,
    Review,
    Run,
    StationKey,
    TrustedFile,
    User,
)
from db.seal import (
    BIND_ACTION,
    BOUND_TABLES,
    Binding,
    anchor_fields,
    anchor_sealed,
    key,
    read_binding,
    seal_digest,
    seal_row,
    signer_of,
    verify_seals,
    write_binding,
)
from inspector.core.errors import StorageError
from inspector.core.integrity import seal, sealed
from inspector.core.signing import StationSigner, fingerprint, verify

log = logging.getLogger(__name__)

ANCHOR_ID = 1
MAX_PROBLEMS = 100


def entry_hash(id: int, created_at: dt.datetime, actor: str, action: str, target: str, detail: Any,
               prev_hash: str, station: str | None = None) -> str:
    """The chain hash of one entry (``detail`` as decoded JSON); a station's entry covers its station too."""
    stamp = created_at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    fields = [id, stamp, actor, action, target, detail, prev_hash] + ([station] if station else [])
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def station_anchor_fields(station: str, entries: int, last_id: int, last_hash: str) -> tuple:
    """What a station's signature over the end of its chain covers."""
    return ("station-anchor", station, entries, last_id, last_hash)


def _dto(e: AuditEntry) -> AuditEntryDTO:
    return AuditEntryDTO(id=e.id, created_at=e.created_at, actor=e.actor, action=e.action, target=e.target,
                         detail=loads(e.detail, {}), prev_hash=e.prev_hash, hash=e.hash)


class AuditRepo:
    @staticmethod
    def append(session: Session, actor: str, action: str, target: str = "",
               detail: dict[str, Any] | None = None) -> AuditEntryDTO:
        """Add one entry at the end of the chain, inside the caller's transaction."""
        anchors = cast(Table, AuditAnchor.__table__)
        _lock(session)
        signer = signer_of(session.info)
        chain = signer.name if signer is not None else None
        last_id = session.execute(select(func.max(AuditEntry.id))).scalar() or 0
        q = select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
        prev = session.execute(q.where(AuditEntry.station == chain if chain else AuditEntry.station.is_(None))
                               ).scalar() or ZERO_HASH
        new_id = last_id + 1
        text = dumps(detail or {})
        created = utcnow()
        digest = entry_hash(new_id, created, actor, action, target, loads(text), prev, chain)
        entry = AuditEntry(id=new_id, created_at=created, actor=actor, action=action, target=target, detail=text,
                           prev_hash=prev, hash=digest, station=chain)
        session.add(entry)
        session.flush()
        if signer is not None:
            _move_station_anchor(session, signer, new_id, digest)
        else:
            entries = session.execute(select(anchors.c.entries).where(anchors.c.id == ANCHOR_ID)).scalar_one() + 1
            mac = seal(key(session), *anchor_fields(_Anchor(entries, new_id, digest)))
            session.execute(update(anchors).where(anchors.c.id == ANCHOR_ID)
                            .values(entries=entries, last_id=new_id, last_hash=digest, mac=mac))
        head_record.note(session, new_id, digest)  # the data folder's record of this database (a copy shows)
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
    def heads(session: Session) -> list[tuple[str, int, str]]:
        """(station, entries, last hash) of every registered station's chain, by name."""
        q = select(StationKey.name, StationKey.entries, StationKey.last_hash).order_by(StationKey.name)
        return [tuple(r) for r in session.execute(q)]  # type: ignore[misc]

    @staticmethod
    def verify(session: Session) -> AuditReport:
        """Walk the chains: a changed row breaks its hash, a deleted row leaves an id gap and a broken link,
        a deleted tail disagrees with its anchor, a moved anchor breaks its seal (a station's: its signature);
        then check every sealed row. Needs no private key: signatures are checked with the public keys in the
        database; HMAC seals (a single station's, or rows from before the plant) with the key file where this
        data folder has it, else they are counted as not checked (``notes``)."""
        problems: list[str] = []

        def problem(text: str) -> None:
            if len(problems) < MAX_PROBLEMS:
                problems.append(text)

        stations = {r.name: r for r in session.scalars(select(StationKey))}
        walk = _walk(session, stations, problem)
        notes: list[str] = []
        try:
            key(session, create=False)
            have_key = True
        except StorageError as e:
            have_key = False
            if not stations:  # a single station, and no key to check its seals with: that is no "OK"
                problem(str(e))
        if have_key and not (stations and _empty_legacy(session, walk)):
            _check_legacy_anchor(session, walk, problem)
        elif walk.counts.get(None, 0):
            notes.append(f"the single-station chain ({walk.counts[None]} entries) is linked and hashed correctly, "
                         "but its anchor's HMAC seal was not checked: this data folder has no integrity.key")
        lines = [_check_station(session, st, walk, problem) for st in stations.values()]
        for chain in walk.counts:
            if chain is not None and chain not in stations:
                problem(f"{walk.counts[chain]} entries belong to the chain of station {chain!r}, which is not "
                        "registered (its public key was deleted, or the entries were added outside Inspector)")
        copy = head_record.problem(session)  # a copy, a rollback or a restore, as this data folder sees it
        if copy is not None:
            problem(copy)
        seen: dict[str, str] = {}
        _checked, unchecked = verify_seals(session, problem, seen=seen)
        _cross_check(session, walk, seen, problem, notes)
        if unchecked:
            notes.append(f"{unchecked} HMAC-sealed row(s) (written by a single station, or before it joined the "
                         "plant) were not checked: this data folder has no integrity.key")
        if problems:
            log.info("audit trail: %d problem(s), first: %s", len(problems), problems[0])
        return AuditReport(ok=not problems, entries=walk.n, problems=tuple(problems), stations=tuple(lines),
                           notes=tuple(notes))


def _lock(session: Session) -> None:
    """Write the anchor first: that takes SQLite's write lock (PostgreSQL's row lock), so a second writer waits
    here instead of chaining onto a last entry that is about to change."""
    anchors = cast(Table, AuditAnchor.__table__)
    locked = session.execute(update(anchors).where(anchors.c.id == ANCHOR_ID)
                             .values(entries=anchors.c.entries)).rowcount  # type: ignore[attr-defined]
    if not locked:
        session.execute(insert(anchors).values(id=ANCHOR_ID, entries=0, last_id=0, last_hash=ZERO_HASH))


_BOUND_MODELS = {"users": User, "reviews": Review, "trusted_files": TrustedFile, "model_promotions": ModelPromotion}


def bind_row(session: Session, fields_of, row: Any) -> dict[str, str]:
    """Seal a new or changed users, reviews, trusted_files or model_promotions row bound to its table, its id and
    this database (``db.seal``), under the audit anchor's lock; returns what its audit entry names: the row and
    its seal's digest (``{"row": "users:5", "seal": ...}``), to go into the entry's detail."""
    table = row.__tablename__
    if row.mac is None:
        row.mac = ""
    session.flush()  # the row's id
    _lock(session)
    b = read_binding(session)
    if b is None:
        b = _begin_binding(session, table, row.id)
    seal_row(session, fields_of, row, bound_to=b.seal_id)
    session.flush()
    return {"row": f"{table}:{row.id}", "seal": seal_digest(row)}


def _begin_binding(session: Session, table: str, row_id: int) -> Binding:
    """The first bound write of this database: its ``seal_id``, and per table the last id written before it."""
    import uuid

    since = {}
    for name, model in _BOUND_MODELS.items():
        q = select(func.max(model.id))
        since[name] = session.execute(q.where(model.id < row_id) if name == table else q).scalar() or 0
    b = write_binding(session, uuid.uuid4().hex, since)
    AuditRepo.append(session, actor="inspector", action=BIND_ACTION, target=f"database:{b.seal_id}",
                     detail={"since": since})
    return b


def had_users(session: Session) -> str | None:
    """Why this database counts as having had users though its users table may be empty (an audit entry of a
    user added, or a trail cut at its end), else None: a fresh install."""
    added = session.execute(select(AuditEntry.id).where(AuditEntry.action == "user.add").limit(1)).scalar()
    if added is not None:
        return f"audit entry {added} added a user"
    n, last = session.execute(select(func.count(), func.max(AuditEntry.id))).one()
    anchor = session.get(AuditAnchor, ANCHOR_ID)
    if anchor is None:
        return None if not n else "the audit anchor is missing"
    ends = [anchor.last_id] + [i for i, in session.execute(select(StationKey.last_id))]
    if anchor.mac and len(ends) == 1:  # a single station (in a plant, each chain's end is signed by its station)
        try:
            if not sealed(key(session, create=False), anchor.mac, *anchor_fields(anchor)):
                return "the audit anchor's seal does not match"
        except StorageError:  # no key file here: the counts below still tell a cut trail
            pass
    counts = anchor.entries + sum(c for c, in session.execute(select(StationKey.entries)))
    if n != counts or (last or 0) != max(ends):
        return f"the audit trail has {n} entries ending at {last or 0}, but its anchors record {counts} ending at " \
               f"{max(ends)}"
    return None


def record_head(session: Session) -> str:
    """A digest over the chain heads and every bound row's seal: it moves with any change to the record that
    ``verify`` checks (print it; compare it with a copy kept elsewhere)."""
    h = hashlib.sha256()
    h.update(json.dumps([AuditRepo.head(session), AuditRepo.heads(session)], default=str).encode())
    for name, model in _BOUND_MODELS.items():
        t = cast(Table, model.__table__)
        for r in session.execute(select(t.c.id, t.c.mac, t.c.sig).order_by(t.c.id).execution_options(yield_per=5000)):
            h.update(f"{name}:{r.id}:{r.sig or r.mac or ''};".encode())
    return h.hexdigest()


def _cross_check(session: Session, w: _Walk, seen: dict[str, str], problem, notes: list[str]) -> None:
    """Each bound row against the audit entry that last wrote it, and each such entry against its row."""
    b = read_binding(session, cache=False)
    if w.bind_entries and (b is None or not b.holds or b.seal_id not in w.bind_entries):
        problem("the record's binding marker (database_info 'seal_binding') is missing or was changed outside "
                f"Inspector (audit entry {min(w.bind_entries.values())} made it)")
    elif b is not None and not w.bind_entries:
        problem("the record's binding marker has no audit entry (it was added outside Inspector, or copied in)")
    legacy = 0
    for ref, digest in seen.items():
        table, row_id = ref.split(":")
        if digest == "":
            legacy += 1
            continue
        if digest == "?":
            continue  # broken or not checkable: reported (or noted) by the seal check
        entry = w.rows.get(ref)
        if entry is None:
            problem(f"{table} {row_id}: no audit entry wrote it (inserted outside Inspector, or copied in from "
                    "another database)")
        elif entry[2] != digest:
            problem(f"{table} {row_id}: not the version its last audit entry {entry[0]} ({entry[1]}) recorded "
                    "(an older or another copy was put in its place)")
    for ref, (entry_id, action, _digest) in w.rows.items():
        if ref not in seen and ref not in w.deleted:
            table, row_id = ref.split(":")
            problem(f"{table} {row_id}, written by audit entry {entry_id} ({action}), is missing: deleted outside "
                    "Inspector")
    if legacy:
        notes.append(f"{legacy} users, reviews, trusted files or promotion row(s) were sealed before binding "
                     "(checked by their seal, not cross-checked with the audit trail)")


class _Walk:
    """What one pass over the audit log found: entries in all, and per chain (None: the single-station one)
    the count, the last id and the last hash."""

    def __init__(self) -> None:
        self.n = 0
        self.expected_id = 1
        self.counts: dict[str | None, int] = {}
        self.last_id: dict[str | None, int] = {}
        self.last_hash: dict[str | None, str] = {}
        #: "table:id" -> (entry id, action, seal digest) of the last entry that wrote that row (binding)
        self.rows: dict[str, tuple[int, str, str]] = {}
        self.deleted: set[str] = set()
        self.bind_entries: dict[str, int] = {}


def _walk(session: Session, stations: dict, problem) -> _Walk:
    w = _Walk()
    rows = session.execute(select(AuditEntry.__table__).order_by(AuditEntry.id).execution_options(yield_per=2000))
    for e in rows:
        w.n += 1
        chain = e.station or None
        if e.id != w.expected_id:
            gap = f"entry {w.expected_id}" if e.id == w.expected_id + 1 else f"entries {w.expected_id} to {e.id - 1}"
            problem(f"{gap} missing: deleted from the audit trail")
        where = f" of station {chain}" if chain else ""
        if e.prev_hash != w.last_hash.get(chain, ZERO_HASH):
            problem(f"entry {e.id}{where}: does not link to the entry before it (an entry was deleted or changed)")
        try:
            detail = loads(e.detail, {})
        except ValueError:
            detail = None
        if detail is None or entry_hash(e.id, e.created_at, e.actor, e.action, e.target, detail,
                                        e.prev_hash, chain) != e.hash:
            problem(f"entry {e.id}{where}: its content does not match its hash (the entry was changed)")
        if isinstance(detail, dict):
            if isinstance(detail.get("row"), str) and detail["row"].split(":")[0] in BOUND_TABLES:
                w.rows[detail["row"]] = (e.id, e.action, str(detail.get("seal", "")))
            w.deleted.update(r for r in detail.get("replaces", ()) if isinstance(r, str))
            if e.action == BIND_ACTION:
                w.bind_entries.setdefault(e.target.split(":", 1)[-1], e.id)
        w.last_hash[chain], w.last_id[chain], w.expected_id = e.hash, e.id, e.id + 1
        w.counts[chain] = w.counts.get(chain, 0) + 1
    return w


def _empty_legacy(session: Session, w: _Walk) -> bool:
    """No single-station entries and an empty anchor: in a plant, whichever PC made the database sealed that empty
    anchor with its own key file, which no other PC holds; there is nothing in that chain to check."""
    anchor = session.get(AuditAnchor, ANCHOR_ID)
    return not w.counts.get(None, 0) and (anchor is None or (not anchor.entries and not anchor.last_id))


def _check_legacy_anchor(session: Session, w: _Walk, problem) -> None:
    anchor = session.get(AuditAnchor, ANCHOR_ID)
    n, last_id, last_hash = w.counts.get(None, 0), w.last_id.get(None, 0), w.last_hash.get(None, ZERO_HASH)
    if anchor is None:
        if n or not session.execute(select(func.count()).select_from(StationKey)).scalar():
            problem("the audit anchor is missing: it was deleted, so deleted entries cannot be ruled out")
    elif not _anchor_ok(session, anchor):
        problem("the audit anchor's seal does not match: the anchor was rewritten outside Inspector "
                "(entries deleted or the chain replaced)")
    elif anchor.last_hash != last_hash or anchor.last_id != last_id:
        problem(f"the trail ends at entry {last_id}, but the anchor records its end at entry "
                f"{anchor.last_id}: entries at the end were deleted")
    elif anchor.entries != n:
        problem(f"the trail has {n} entries, but the anchor records {anchor.entries}: entries were deleted")


def _check_station(session: Session, st: StationKey, w: _Walk, problem) -> str:
    """One station's chain against its signed anchor; returns a line for the report."""
    n, last_id, last_hash = w.counts.get(st.name, 0), w.last_id.get(st.name, 0), w.last_hash.get(st.name, ZERO_HASH)
    line = f"station {st.name}: {n} entries, key {fingerprint(st.public_key)}"
    if st.anchor_sig:
        fields = station_anchor_fields(st.name, st.entries, st.last_id, st.last_hash)
        if not verify(st.public_key, st.anchor_sig, *fields):
            problem(f"station {st.name}: the end of its audit chain is not signed by its key (the anchor was "
                    "rewritten outside Inspector, or its public key was replaced)")
            return line
    elif st.entries or st.last_id or n or session.execute(
            select(func.count()).select_from(Run).where(Run.station == st.name)).scalar():
        problem(f"station {st.name}: its audit chain has no signed end although it has written (the anchor was "
                "reset outside Inspector)")
        return line
    if st.last_hash != last_hash or st.last_id != last_id:
        problem(f"station {st.name}: its chain ends at entry {last_id}, but its anchor records entry {st.last_id}: "
                "entries at the end were deleted")
    elif st.entries != n:
        problem(f"station {st.name}: its chain has {n} entries, but its anchor records {st.entries}: entries were "
                "deleted")
    return line


def _move_station_anchor(session: Session, signer: StationSigner, entry_id: int, digest: str) -> None:
    table = cast(Table, StationKey.__table__)
    entries = session.execute(select(table.c.entries).where(table.c.name == signer.name)).scalar()
    if entries is None:
        raise StorageError(f"station {signer.name!r} is not registered in this database, so its audit entries "
                           f"cannot be signed: register it with 'inspector station add {signer.name} --key FILE'.")
    entries += 1
    sig = signer.sign(*station_anchor_fields(signer.name, entries, entry_id, digest))
    session.execute(update(table).where(table.c.name == signer.name)
                    .values(entries=entries, last_id=entry_id, last_hash=digest, anchor_sig=sig))


class _Anchor:
    def __init__(self, entries: int, last_id: int, last_hash: str) -> None:
        self.entries, self.last_id, self.last_hash = entries, last_id, last_hash


def _anchor_ok(session: Session, anchor: AuditAnchor) -> bool:
    """A sealed anchor, or the unsealed empty one a new database starts with while nothing else was written:
    once users, runs or trusted files exist (not signed by a registered station), audit entries were written and
    the anchor was sealed."""
    if anchor_sealed(session, anchor):
        return True
    if anchor.mac or anchor.entries or anchor.last_id or anchor.last_hash != ZERO_HASH:
        return False
    # in a plant, the registered stations' writes are audited in their own chains
    registered = select(StationKey.name)
    counts = (select(func.count()).select_from(User).where(User.sig.is_(None)),
              select(func.count()).select_from(TrustedFile).where(TrustedFile.sig.is_(None)),
              select(func.count()).select_from(Run).where(Run.station.not_in(registered)))
    return not any(session.execute(q).scalar() for q in counts)

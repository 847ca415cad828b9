"""Seals over the rows that decide verdicts, roles and trust, so that ``audit verify`` sees a row changed behind
Inspector's back: an Ed25519 signature by the station that wrote the row when the session has a signer (a station
registered in a plant's database, issue 30: ``signer`` and ``sig`` columns, checked with the public keys in
``stations``), else an HMAC with the single station's key file (``mac``, as before).

What each seal covers is listed once here; the writers and ``verify_seals`` use the same lists.

Binding (issue 24): a users, reviews, trusted_files or model_promotions row written since binding began is sealed
over its table, its id and this database's ``seal_id`` as well (``bound_fields``), and the audit entry written with
it names the row and a digest of its seal, so a row deleted, re-inserted under another id, replayed as newest, put
back in an older version or copied in from another database shows in ``audit verify``. The binding marker
(``database_info`` key ``seal_binding``) records the ``seal_id`` and, per table, the last id written before binding:
those older rows keep their old seals ("sealed before binding"); any later row must be bound.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from db.schema import (
    AlarmRecord,
    AuditAnchor,
    AuditEntry,
    DatabaseInfo,
    InspectionRecord,
    ModelPromotion,
    Review,
    Run,
    StationKey,
    TrustedFile,
    User,
    to_utc_naive,
)
from inspector.core.errors import StorageError
from inspector.core.integrity import seal, sealed, station_key
from inspector.core.signing import StationSigner, verify

log = logging.getLogger(__name__)


def key(session: Session, create: bool = True) -> bytes:
    """The sealing key: the session factory's ``info["seal_key"]`` if given, else the data folder's."""
    return key_of(session.info, create)


def key_of(info: Mapping[str, Any], create: bool = True) -> bytes:
    """``key`` from a session's (or a session factory's) ``info``."""
    given = info.get("seal_key")
    return given if given else station_key(create=create)


def _t(value: dt.datetime | None) -> str:
    return "" if value is None else to_utc_naive(value).isoformat(timespec="microseconds")


def inspection_fields(r: Any) -> tuple:
    """What decides a part's verdict and where it came from (a row, a mapping's attributes); for a triggered
    part also the PLC's ``part_id`` and the trigger, and the day's facts (product, lot, work order, shift) when
    one is set. A row without them (free-running, or written before the line or the day existed) has the
    fields it always had, so its seal still verifies."""
    part, trigger = getattr(r, "part_id", None), getattr(r, "trigger", None)
    line = () if part is None and trigger is None else (part or "", trigger or "")
    base = ("inspection", r.run_id, r.seq, _t(r.created_at), r.verdict, r.reasons, r.model_sha256 or "",
            r.recipe_sha256 or "", r.frame_name or "", r.image_path or "", *line)
    day = tuple(getattr(r, name, None) or "" for name in DAY_COLUMNS)
    return base + ("day", *day) if any(day) else base


DAY_COLUMNS = ("product", "lot", "work_order", "shift")


def alarm_fields(r: Any) -> tuple:
    return ("alarm", r.station, r.run_id or 0, r.rule, r.message, _t(r.raised_at), r.acked_by or "",
            _t(r.acked_at))


def review_fields(r: Any) -> tuple:
    return ("review", r.inspection_id, r.reviewer, _t(r.created_at), r.action, r.old_verdict, r.new_verdict,
            r.reason or "", r.detail or "")


def user_fields(r: Any) -> tuple:
    return ("user", r.name, r.role, r.password_hash, r.recovery_hash or "", _t(r.created_at))


def trust_fields(r: Any) -> tuple:
    return ("trust", r.kind, r.sha256, r.name or "", r.added_by, _t(r.added_at))


def promotion_fields(r: Any) -> tuple:
    """Which model a station's parts are judged by, from when, on whose word."""
    return ("promotion", r.station, r.action, r.sha256, r.path, r.name or "", r.previous_sha256 or "", r.reason,
            r.actor, _t(r.created_at))


def anchor_fields(r: Any) -> tuple:
    return ("anchor", r.entries, r.last_id, r.last_hash)


class _Values:
    """Attribute access over a dict of column values (the rows the fast writer inserts)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def signer_of(info: Mapping[str, Any]) -> StationSigner | None:
    """The station that signs this session's rows (``info["signer"]``, set by ``db.stations.attach_signer``), or
    None: HMAC seals with the data folder's key, as a single station always did."""
    return info.get("signer")


def seal_values(k: bytes, fields_of, values: dict[str, Any]) -> str:
    return seal(k, *fields_of(_Values(values)))


def seal_columns(info: Mapping[str, Any], fields_of, values: dict[str, Any]) -> dict[str, Any]:
    """``mac``, ``signer`` and ``sig`` for a row of column values (the fast writer's inserts)."""
    signer = signer_of(info)
    if signer is not None:
        return {"mac": "", "signer": signer.name, "sig": signer.sign(*fields_of(_Values(values)), signer.name)}
    return {"mac": seal_values(key_of(info), fields_of, values), "signer": None, "sig": None}


def seal_row(session: Session, fields_of, row: Any, bound_to: str | None = None) -> None:
    """Seal ``row`` from its current values: signed by this session's station, else HMAC-sealed; bound to its table,
    id and the database's ``bound_to`` (a ``seal_id``) when given."""
    fields = _fields(fields_of, row, bound_to)
    signer = signer_of(session.info)
    if signer is not None:
        row.mac, row.signer, row.sig = "", signer.name, signer.sign(*fields, signer.name)
    else:
        row.mac, row.signer, row.sig = seal(key(session), *fields), None, None


#: the tables whose rows are bound to their id, the database and the audit entry that wrote them
BOUND_TABLES = ("users", "reviews", "trusted_files", "model_promotions")
BINDING_KEY = "seal_binding"
BIND_ACTION = "record.bind"


@dataclass(frozen=True)
class Binding:
    """This database's ``seal_id`` and, per bound table, the last row id sealed before binding began. ``holds``:
    the marker's own seal holds (a broken or missing marker binds nothing and lets no old seal through)."""

    seal_id: str
    since: dict[str, int] = field(default_factory=dict)
    holds: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.seal_id, str):
            raise ValueError(f"expected a seal id string, got {self.seal_id!r}")


def bound_fields(table: str, row_id: int, seal_id: str, fields: tuple) -> tuple:
    return ("bound", table, int(row_id), seal_id, *fields)


def _fields(fields_of, row: Any, bound_to: str | None) -> tuple:
    base = fields_of(row)
    return base if bound_to is None else bound_fields(_table_of(row), row.id, bound_to, base)


def _table_of(row: Any) -> str:
    return getattr(row, "__tablename__", None) or row._table  # type: ignore[attr-defined]


def binding_fields(seal_id: str, since: Mapping[str, int]) -> tuple:
    return ("binding", seal_id, *[f"{t}={int(since.get(t, 0))}" for t in BOUND_TABLES])


def read_binding(session: Session, cache: bool = True) -> Binding | None:
    """The binding marker, or None while this database has none and never had (no ``record.bind`` entry: rows are
    checked as before binding). A marker whose seal fails, or one deleted after it was made, binds nothing."""
    if cache and "_binding" in session.info:
        return session.info["_binding"]
    row = session.get(DatabaseInfo, BINDING_KEY)
    found: Binding | None
    if row is None:
        made = session.execute(select(AuditEntry.id).where(AuditEntry.action == BIND_ACTION).limit(1)).first()
        found = None if made is None else Binding("", {}, holds=False)
    else:
        try:
            value = json.loads(row.value)
            seal_id, since = str(value["seal_id"]), {t: int(value["since"].get(t, 0)) for t in BOUND_TABLES}
        except (ValueError, KeyError, TypeError, AttributeError):
            seal_id, since, value = "", {}, {}
        fields = binding_fields(seal_id, since)
        if value.get("sig"):
            public = public_keys(session).get(value.get("signer") or "")
            holds = public is not None and verify(public, value["sig"], *fields, value["signer"])
        else:
            try:
                holds = sealed(key(session, create=False), value.get("mac"), *fields)
            except StorageError:  # a PC without the key file: the rows' own seals still bind them
                holds = bool(seal_id)
            if not holds and public_keys(session):  # a plant: sealed by another PC's key file, not checkable here
                holds = bool(seal_id)
        found = Binding(seal_id, since, holds) if holds else Binding(seal_id, {}, holds=False)
    if cache and not session.info.get("_binding_made"):  # one made in this session may yet be rolled back
        session.info["_binding"] = found
    return found


def write_binding(session: Session, seal_id: str, since: Mapping[str, int]) -> Binding:
    """Make the binding marker (the caller holds the audit anchor's lock and writes its audit entry)."""
    fields = binding_fields(seal_id, since)
    signer = signer_of(session.info)
    value: dict[str, Any] = {"seal_id": seal_id, "since": {t: int(since.get(t, 0)) for t in BOUND_TABLES}}
    if signer is not None:
        value.update(signer=signer.name, sig=signer.sign(*fields, signer.name))
    else:
        value["mac"] = seal(key(session), *fields)
    session.add(DatabaseInfo(key=BINDING_KEY, value=json.dumps(value, sort_keys=True)))
    session.flush()
    session.info.pop("_binding", None)
    session.info["_binding_made"] = True
    return Binding(seal_id, dict(value["since"]))


def seal_digest(row: Any) -> str:
    """A short name of a row's seal, kept in the audit entry that wrote that version of the row."""
    return hashlib.sha256((row.sig or row.mac or "").encode("utf-8")).hexdigest()[:32]


def public_keys(session: Session) -> dict[str, str]:
    """Station name -> public key (hex) of every registered station (read once per session)."""
    keys = session.info.get("_station_keys")
    if keys is None:
        keys = {n: k for n, k in session.execute(select(StationKey.name, StationKey.public_key))}
        session.info["_station_keys"] = keys
    return keys


def signature_holds(session: Session, fields_of, row: Any, fields: tuple | None = None) -> bool:
    """A signed row's signature checked with the public key of the station it names as its signer."""
    public = public_keys(session).get(row.signer or "")
    return public is not None and verify(public, row.sig, *(fields_of(row) if fields is None else fields), row.signer)


def row_state(session: Session, table: str, fields_of, row: Any, k: bytes | None = None,
              binding: Binding | None | bool = False) -> str:
    """"bound" (sealed over its table, id and this database), "legacy" (an old seal, allowed for a row written
    before binding began), or "broken". ``k``: the HMAC key (else the session's); ``binding``: as ``read_binding``."""
    b = read_binding(session) if binding is False else binding
    assert b is None or isinstance(b, Binding)

    def holds(fields: tuple) -> bool:
        if row.sig:
            return signature_holds(session, fields_of, row, fields)
        return sealed(k if k is not None else key(session), row.mac, *fields)

    if table in BOUND_TABLES and b is not None:
        if b.seal_id and holds(bound_fields(table, row.id, b.seal_id, fields_of(row))):
            return "bound"
        if b.holds and row.id <= b.since.get(table, 0) and holds(fields_of(row)):
            return "legacy"
        return "broken"
    return "legacy" if holds(fields_of(row)) else "broken"


def row_sealed(session: Session, fields_of, row: Any) -> bool:
    """Whether ``row`` is as Inspector wrote it (for a bound table: in this database, under this id)."""
    return row_state(session, _table_of(row), fields_of, row) != "broken"


#: table, what its seal covers, how a broken one is described
_CHECKS = (
    (InspectionRecord, inspection_fields, "inspection {id}: its verdict, reasons, model/recipe hash or part id "
                                          "were changed outside Inspector"),
    (Review, review_fields, "review {id}: changed outside Inspector"),
    (User, user_fields, "user {id}: its name, role, password or recovery code was changed outside Inspector"),
    (TrustedFile, trust_fields, "trusted file {id}: added or changed outside Inspector"),
    (AlarmRecord, alarm_fields, "alarm {id}: changed outside Inspector (its rule, time or acknowledgement)"),
    (ModelPromotion, promotion_fields, "model promotion {id}: added or changed outside Inspector"),
)


def verify_seals(session: Session, problem, max_each: int = 20,
                 seen: dict[str, str] | None = None) -> tuple[int, int]:
    """Check every sealed row: a signed one with its station's public key (and that station must be the one the
    row claims: its run's or its alarm's), an HMAC-sealed one with the key file when this data folder has it.
    Report each broken seal through ``problem``; return (rows checked, HMAC rows left unchecked for want of the
    key file). ``seen`` (when given) gets "table:id" -> the seal digest of each bound row ("" for a row sealed
    before binding, "?" for a broken or unchecked one), for the cross-check with the audit trail."""
    try:
        k: bytes | None = key(session, create=False)
    except StorageError:
        k = None
    keys = public_keys(session)
    b = read_binding(session, cache=False)
    run_station = {i: st for i, st in session.execute(select(Run.id, Run.station))}
    checked = unchecked = 0
    for model, fields_of, text in _CHECKS:
        table: Table = model.__table__  # type: ignore[assignment]
        bad = 0
        bound = table.name in BOUND_TABLES

        def report(line: str) -> None:
            nonlocal bad
            bad += 1
            if bad <= max_each:
                problem(line)

        for r in session.execute(select(table).order_by(table.c.id).execution_options(yield_per=5000)):
            state = "?"
            if r.sig:
                checked += 1
                public = keys.get(r.signer or "")
                if public is None:
                    report(f"{table.name} {r.id}: signed as station {r.signer!r}, which is not registered")
                elif (state := row_state(session, table.name, fields_of, r, k, b)) == "broken":
                    report(text.format(id=r.id) + f" (its signature by station {r.signer!r} does not match)"
                           + _bound_hint(bound, b))
                else:
                    claims = _claimed_station(table.name, r, run_station)
                    if claims is not None and claims != r.signer:
                        report(f"{table.name} {r.id}: signed with the key of station {r.signer!r} but claims station "
                               f"{claims!r} (written by one station in another's name)")
            elif k is None:
                unchecked += 1
            else:
                checked += 1
                if (state := row_state(session, table.name, fields_of, r, k, b)) == "broken":
                    report(text.format(id=r.id) + _bound_hint(bound, b))
            if bound and seen is not None:
                seen[f"{table.name}:{r.id}"] = seal_digest(r) if state == "bound" else "" if state == "legacy" else "?"
        if bad > max_each:
            problem(f"... and {bad - max_each} more {table.name} row(s) changed outside Inspector")
    return checked, unchecked


def _bound_hint(bound: bool, b: Binding | None) -> str:
    if not bound or b is None:
        return ""
    return (" (or not written in this database under this id: copied in from another database, re-inserted, or "
            "an old seal on a row written after binding began)")


def _claimed_station(table: str, r: Any, run_station: dict[int, str]) -> str | None:
    """The station a row says it comes from (an inspection: its run's; an alarm: its own), None where a row
    may be written from any station (reviews, users, trust, promotions, an acknowledged alarm)."""
    if table == "inspections":
        return run_station.get(r.run_id, "")
    if table == "alarms" and r.acked_by is None:  # acknowledged from any panel, re-signed by that one
        return r.station
    return None


def anchor_sealed(session: Session, anchor: AuditAnchor) -> bool:
    return sealed(key(session), anchor.mac, *anchor_fields(anchor))

"""Seals over the rows that decide verdicts, roles and trust, so that ``audit verify`` sees a row changed behind
Inspector's back: an Ed25519 signature by the station that wrote the row when the session has a signer (a station
registered in a plant's database, issue 30: ``signer`` and ``sig`` columns, checked with the public keys in
``stations``), else an HMAC with the single station's key file (``mac``, as before).

What each seal covers is listed once here; the writers and ``verify_seals`` use the same lists.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from db.schema import (
    AlarmRecord,
    AuditAnchor,
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


def seal_row(session: Session, fields_of, row: Any) -> None:
    """Seal ``row`` from its current values: signed by this session's station, else HMAC-sealed."""
    signer = signer_of(session.info)
    if signer is not None:
        row.mac, row.signer, row.sig = "", signer.name, signer.sign(*fields_of(row), signer.name)
    else:
        row.mac, row.signer, row.sig = seal(key(session), *fields_of(row)), None, None


def public_keys(session: Session) -> dict[str, str]:
    """Station name -> public key (hex) of every registered station (read once per session)."""
    keys = session.info.get("_station_keys")
    if keys is None:
        keys = {n: k for n, k in session.execute(select(StationKey.name, StationKey.public_key))}
        session.info["_station_keys"] = keys
    return keys


def signature_holds(session: Session, fields_of, row: Any) -> bool:
    """A signed row's signature checked with the public key of the station it names as its signer."""
    public = public_keys(session).get(row.signer or "")
    return public is not None and verify(public, row.sig, *fields_of(row), row.signer)


def row_sealed(session: Session, fields_of, row: Any) -> bool:
    if getattr(row, "sig", None):
        return signature_holds(session, fields_of, row)
    return sealed(key(session), row.mac, *fields_of(row))


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


def verify_seals(session: Session, problem, max_each: int = 20) -> tuple[int, int]:
    """Check every sealed row: a signed one with its station's public key (and that station must be the one the
    row claims: its run's or its alarm's), an HMAC-sealed one with the key file when this data folder has it.
    Report each broken seal through ``problem``; return (rows checked, HMAC rows left unchecked for want of the
    key file)."""
    try:
        k: bytes | None = key(session, create=False)
    except StorageError:
        k = None
    keys = public_keys(session)
    run_station = {i: st for i, st in session.execute(select(Run.id, Run.station))}
    checked = unchecked = 0
    for model, fields_of, text in _CHECKS:
        table: Table = model.__table__  # type: ignore[assignment]
        bad = 0

        def report(line: str) -> None:
            nonlocal bad
            bad += 1
            if bad <= max_each:
                problem(line)

        for r in session.execute(select(table).order_by(table.c.id).execution_options(yield_per=5000)):
            if r.sig:
                checked += 1
                public = keys.get(r.signer or "")
                if public is None:
                    report(f"{table.name} {r.id}: signed as station {r.signer!r}, which is not registered")
                elif not verify(public, r.sig, *fields_of(r), r.signer):
                    report(text.format(id=r.id) + f" (its signature by station {r.signer!r} does not match)")
                else:
                    claims = _claimed_station(table.name, r, run_station)
                    if claims is not None and claims != r.signer:
                        report(f"{table.name} {r.id}: signed with the key of station {r.signer!r} but claims station "
                               f"{claims!r} (written by one station in another's name)")
            elif k is None:
                unchecked += 1
            else:
                checked += 1
                if not sealed(k, r.mac, *fields_of(r)):
                    report(text.format(id=r.id))
        if bad > max_each:
            problem(f"... and {bad - max_each} more {table.name} row(s) changed outside Inspector")
    return checked, unchecked


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

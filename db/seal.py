"""Seals (HMACs with the station's key, kept outside the database) over the rows that decide verdicts,
roles and trust, so that ``audit verify`` sees a row changed behind Inspector's back.

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
    TrustedFile,
    User,
    to_utc_naive,
)
from inspector.core.integrity import seal, sealed, station_key

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


def seal_values(k: bytes, fields_of, values: dict[str, Any]) -> str:
    return seal(k, *fields_of(_Values(values)))


def seal_row(session: Session, fields_of, row: Any) -> None:
    """Set ``row.mac`` from its current values."""
    row.mac = seal(key(session), *fields_of(row))


def row_sealed(session: Session, fields_of, row: Any) -> bool:
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


def verify_seals(session: Session, problem, max_each: int = 20) -> int:
    """Check every sealed row; report each broken seal through ``problem``; return the rows checked."""
    k = key(session)
    checked = 0
    for model, fields_of, text in _CHECKS:
        table: Table = model.__table__  # type: ignore[assignment]
        bad = 0
        for r in session.execute(select(table).order_by(table.c.id).execution_options(yield_per=5000)):
            checked += 1
            if not sealed(k, r.mac, *fields_of(r)):
                bad += 1
                if bad <= max_each:
                    problem(text.format(id=r.id))
        if bad > max_each:
            problem(f"... and {bad - max_each} more {table.name} row(s) changed outside Inspector")
    return checked


def anchor_sealed(session: Session, anchor: AuditAnchor) -> bool:
    return sealed(key(session), anchor.mac, *anchor_fields(anchor))

"""Alarms raised on a station and their acknowledgement: each sealed (``db.seal``) and audited in the same
transaction. Anyone allowed to run the station (an operator) may acknowledge; who did is taken from the users
table, as for every other protected action."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.dto import AlarmDTO
from db.repositories._common import utcnow
from db.repositories.audit import AuditRepo
from db.repositories.users import authorize
from db.schema import ALARM_RULES, AlarmRecord
from db.seal import alarm_fields, seal_row
from inspector.core.auth import Actor


def _dto(r: AlarmRecord) -> AlarmDTO:
    return AlarmDTO(r.id, r.station, r.run_id, r.rule, r.message, r.raised_at, r.acked_by, r.acked_at)


class AlarmRepo:
    @staticmethod
    def raise_(session: Session, station: str, run_id: int | None, rule: str, message: str) -> AlarmDTO:
        if rule not in ALARM_RULES:
            raise ValueError(f"expected an alarm rule among {list(ALARM_RULES)}, got {rule!r}")
        row = AlarmRecord(station=station, run_id=run_id, rule=rule, message=message, raised_at=utcnow())
        seal_row(session, alarm_fields, row)
        session.add(row)
        session.flush()
        AuditRepo.append(session, actor=f"station:{station}", action="alarm.raise", target=f"alarm:{row.id}",
                         detail={"rule": rule, "message": message, "run_id": run_id})
        return _dto(row)

    @staticmethod
    def acknowledge(session: Session, actor: Actor | None, alarm_id: int) -> AlarmDTO:
        """Record who acknowledged the alarm and when; LookupError for an unknown one, ValueError when it was
        acknowledged already (the first acknowledgement stands)."""
        who = authorize(session, actor, "run")
        row = session.get(AlarmRecord, alarm_id)
        if row is None:
            raise LookupError(f"no alarm {alarm_id}")
        if row.acked_by is not None:
            raise ValueError(f"alarm {alarm_id} was acknowledged already by {row.acked_by}")
        row.acked_by, row.acked_at = who.name, utcnow()
        seal_row(session, alarm_fields, row)
        session.flush()
        AuditRepo.append(session, actor=who.name, action="alarm.ack", target=f"alarm:{alarm_id}",
                         detail={"rule": row.rule})
        return _dto(row)

    @staticmethod
    def list(session: Session, station: str | None = None, open_only: bool = False, limit: int = 200) -> list[AlarmDTO]:
        """Alarms newest first, of one station or of the whole plant (issue 30), optionally only those not
        acknowledged yet."""
        q = select(AlarmRecord).order_by(AlarmRecord.id.desc()).limit(limit)
        if station:
            q = q.where(AlarmRecord.station == station)
        if open_only:
            q = q.where(AlarmRecord.acked_by.is_(None))
        return [_dto(r) for r in session.scalars(q)]

    @staticmethod
    def open(session: Session, station: str) -> list[AlarmDTO]:
        """The station's alarms not acknowledged yet, oldest first."""
        q = (select(AlarmRecord).where(AlarmRecord.station == station, AlarmRecord.acked_by.is_(None))
             .order_by(AlarmRecord.id))
        return [_dto(r) for r in session.scalars(q)]

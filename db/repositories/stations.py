"""The plant's stations (issue 30): each one's Ed25519 public key, registered by an admin, so that anyone can check
the rows a station signed with the database alone. The first station of a new plant (no users yet) is added by
whoever runs the command, as every first step of a fresh install; once users exist, by a signed-in admin."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from db.repositories._common import loads, utcnow
from db.repositories.audit import ANCHOR_ID, AuditRepo
from db.repositories.users import UserRepo, authorize
from db.schema import ZERO_HASH, AuditAnchor, AuditEntry, ModelVersion, Run, StationKey, StationStatus
from db.seal import signer_of
from inspector.core.auth import Actor
from inspector.core.signing import fingerprint


@dataclass(frozen=True)
class StationDTO:
    name: str
    public_key: str
    fingerprint: str
    added_by: str
    entries: int


@dataclass(frozen=True)
class StationStatusDTO:
    """A station's last report of itself (its outbox backlog, run and model) and when it came."""

    station: str
    backlog: int
    peak: int
    run_id: int | None
    model: str
    state: str  # "running" or "ended"
    reported_at: dt.datetime


def _dto(r: StationKey) -> StationDTO:
    return StationDTO(r.name, r.public_key, fingerprint(r.public_key), r.added_by, r.entries)


class StationRepo:
    @staticmethod
    def add(session: Session, actor: Actor | None, name: str, public_key: str) -> tuple[StationDTO, bool]:
        """Register station ``name`` with its public key (hex); returns it and whether it is new. The same key
        again changes nothing; another key for a registered name, or a key another station has, is refused
        (ValueError): a stolen key is retired with a new station name, never silently swapped."""
        if not name or len(name) > 200:
            raise ValueError(f"expected a station name of 1 to 200 characters, got {name!r}")
        if len(public_key) != 64:
            raise ValueError(f"expected an Ed25519 public key as 64 hex digits, got {len(public_key)} characters")
        who = authorize(session, actor, "stations")
        found = session.scalars(select(StationKey).where(StationKey.name == name)).first()
        if found is not None:
            if found.public_key == public_key:
                return _dto(found), False
            raise ValueError(f"station {name!r} is registered already with another key (fingerprint "
                             f"{fingerprint(found.public_key)}, not {fingerprint(public_key)}); a replaced panel PC "
                             "joins under a new station name")
        other = session.scalars(select(StationKey).where(StationKey.public_key == public_key)).first()
        if other is not None:
            raise ValueError(f"this key is station {other.name!r}'s already; each station signs with its own key "
                             "('inspector station key' in the new station's data folder)")
        anchors: Table = AuditAnchor.__table__  # type: ignore[assignment]
        if session.get(AuditAnchor, ANCHOR_ID) is None:  # every later audit entry takes its row lock first
            session.execute(insert(anchors).values(id=ANCHOR_ID, entries=0, last_id=0, last_hash=ZERO_HASH))
        row = StationKey(name=name, public_key=public_key, added_by=who.name, added_at=utcnow(), entries=0,
                         last_id=0, last_hash=ZERO_HASH)
        session.add(row)
        session.flush()
        session.info.pop("_station_keys", None)
        # audited in the chain of the station this is done from, or the single-station chain once users exist;
        # the first station of a new plant has no chain to be recorded in: its row (who, when) is the record
        if signer_of(session.info) is not None or UserRepo.exists(session):
            AuditRepo.append(session, actor=who.name, action="station.add", target=f"station:{name}",
                             detail={"fingerprint": fingerprint(public_key)})
        return _dto(row), True

    @staticmethod
    def by_key(session: Session, public_key: str) -> StationDTO | None:
        found = session.scalars(select(StationKey).where(StationKey.public_key == public_key)).first()
        return None if found is None else _dto(found)

    @staticmethod
    def get(session: Session, name: str) -> StationDTO | None:
        found = session.scalars(select(StationKey).where(StationKey.name == name)).first()
        return None if found is None else _dto(found)

    @staticmethod
    def models(session: Session) -> dict[str, tuple[str, str]]:
        """Station -> (action, model name) of the last model it took or refused (``model.take``/``model.refused``
        in its chain), else ("run", model of its latest run): which station runs which model."""
        out: dict[str, tuple[str, str]] = {}
        latest_run = (select(Run.station, ModelVersion.name).join(ModelVersion, ModelVersion.id == Run.model_id)
                      .order_by(Run.id))
        for station, name in session.execute(latest_run):
            out[station] = ("run", name)
        took = (select(AuditEntry.station, AuditEntry.action, AuditEntry.detail)
                .where(AuditEntry.action.in_(("model.take", "model.refused")), AuditEntry.station.is_not(None))
                .order_by(AuditEntry.id))
        for station, action, detail in session.execute(took):
            out[station] = (action.removeprefix("model."), str(loads(detail, {}).get("name", "")))
        return out

    @staticmethod
    def list(session: Session) -> list[StationDTO]:
        return [_dto(r) for r in session.scalars(select(StationKey).order_by(StationKey.name))]

    @staticmethod
    def report(session: Session, station: str, backlog: int, run_id: int | None, model: str,
               state: str = "running") -> None:
        """Overwrite ``station``'s report of itself (the plant view's row): its outbox backlog now, the largest of
        this run, its run and model."""
        if backlog < 0:
            raise ValueError(f"expected a backlog of 0 or more records, got {backlog}")
        row = session.get(StationStatus, station)
        if row is None:
            row = StationStatus(station=station, peak=0)
            session.add(row)
        peak = backlog if row.run_id != run_id else max(row.peak or 0, backlog)
        row.backlog, row.peak, row.run_id, row.model, row.state = backlog, peak, run_id, model[:200], state
        row.reported_at = utcnow()
        session.flush()

    @staticmethod
    def statuses(session: Session) -> list[StationStatusDTO]:
        """Every station's last report, by name."""
        return [StationStatusDTO(r.station, r.backlog, r.peak, r.run_id, r.model, r.state, r.reported_at)
                for r in session.scalars(select(StationStatus).order_by(StationStatus.station))]

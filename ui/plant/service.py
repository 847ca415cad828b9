"""The plant tab's side of the database: every method blocks, so the tab calls them on a pool thread."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from db.dto import AlarmDTO
from ui.review.service import Database

STALE_S = 20.0  # a running station reports every 5 s: a report older than this one is not coming through


@dataclass(frozen=True)
class StationRow:
    """One station as the plant view shows it."""

    name: str
    fingerprint: str  # "" : no key registered (a single station, or one that never joined with a key)
    model: str  # "runs NAME", "REFUSED NAME" or "" (never ran)
    backlog: int | None  # None: the station never reported
    peak: int | None
    state: str  # "running", "ended" or ""
    reported_at: dt.datetime | None

    def stale(self, now: dt.datetime) -> bool:
        """A running station whose last report is too old: it cannot reach the server, or it stopped abruptly."""
        return (self.state == "running" and self.reported_at is not None
                and (now - self.reported_at).total_seconds() > STALE_S)


@dataclass(frozen=True)
class PlantOverview:
    stations: tuple[StationRow, ...]
    read_at: dt.datetime

    @property
    def backlog(self) -> int:
        return sum(s.backlog or 0 for s in self.stations)


class PlantService:
    """The plant's stations and alarms, read from the shared database (blocking calls)."""

    def __init__(self, db: Database, station: str) -> None:
        self.db = db
        self.station = station  # this window's own station

    def overview(self) -> PlantOverview:
        from db.repositories.stations import StationRepo
        from db.writes import write

        def read(s):
            return StationRepo.list(s), StationRepo.models(s), StationRepo.statuses(s)

        keys, models, reports = write(self.db.sessions(), read, "Reading the plant's stations")
        fingerprints = {k.name: k.fingerprint for k in keys}
        by_name = {r.station: r for r in reports}
        rows = []
        for name in sorted((set(fingerprints) | set(models) | set(by_name)) - {""}):
            how, model = models.get(name, ("", ""))
            r = by_name.get(name)
            rows.append(StationRow(name, fingerprints.get(name, ""),
                                   f"{'REFUSED' if how == 'refused' else 'runs'} {model}" if how else "",
                                   r.backlog if r else None, r.peak if r else None, r.state if r else "",
                                   r.reported_at if r else None))
        return PlantOverview(tuple(rows), dt.datetime.now(dt.timezone.utc))

    def alarms(self, station: str | None, open_only: bool = False, limit: int = 200) -> list[AlarmDTO]:
        """Alarms newest first, of ``station`` or (None) of the whole plant."""
        from db.repositories.alarms import AlarmRepo
        from db.writes import write

        return write(self.db.sessions(), lambda s: AlarmRepo.list(s, station or None, open_only, limit),
                     "Reading the alarms")

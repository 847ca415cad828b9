"""Which station this data folder signs as (issue 30): its private key's public half looked up among the stations
registered in the database. A data folder with no key, or a key the database does not know, seals with HMAC as a
single station always did."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db.repositories.stations import StationRepo
from db.writes import write
from inspector.core.errors import StorageError
from inspector.core.signing import StationSigner, has_key, load_private

log = logging.getLogger(__name__)


def attach_signer(sessions: sessionmaker[Session], home: Path | None = None,
                  station: str | None = None) -> StationSigner | None:
    """Make ``sessions`` sign as this data folder's station when its key is registered; returns the signer.

    ``station``: the name this station runs as ([station] name); a key registered under another name is refused
    (StorageError), or every row it writes would claim one station and be signed by another."""
    if not has_key(home):
        return None
    key = load_private(home)
    signer_hex = StationSigner("?", key).public_hex
    found = write(sessions, lambda s: StationRepo.by_key(s, signer_hex), "Looking up this station's key")
    if found is None:
        if station is not None:
            other = write(sessions, lambda s: StationRepo.get(s, station), "Looking up this station")
            if other is not None:
                raise StorageError(f"Station {station!r} is registered in this database with another key (fingerprint "
                                   f"{other.fingerprint}) than this data folder's: use the data folder that holds "
                                   "its key, or register this one under a new station name.")
        return None
    if station is not None and found.name != station:
        raise StorageError(f"This data folder's key is registered as station {found.name!r}, but this station runs "
                           f"as {station!r} ([station] name): set [station] name = \"{found.name}\", or register a "
                           "new key for the other name.")
    signer = StationSigner(found.name, key)
    sessions.kw.setdefault("info", {})["signer"] = signer
    log.info("signing as station %s (key %s)", found.name, found.fingerprint)
    return signer

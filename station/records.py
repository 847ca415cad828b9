"""What the station reads from its record before judging: where its pictures go, which models it trusts.

Below the station's other modules (core, line, models), which all take these from here.
"""

from __future__ import annotations

import re

from inspector.detection.registry import ModelRegistry


def station_folder(station: str) -> str:
    """A folder name for a station name (any characters a file system may refuse become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", station).strip("._") or "station"


def image_namespace(sessions, subdir: str, station: str) -> str:
    """``<subdir>/<database id>/<station>``: two databases (or stations) never share an image folder."""
    from db.repositories.runs import database_id
    from db.writes import write

    ns = f"{write(sessions, database_id, 'Reading the database identity')}/{station_folder(station)}"
    return f"{subdir}/{ns}" if subdir else ns


def run_proof(subdir: str, run_id: int, started_at) -> str:
    """What a run writes into each of its image folders, and what the crash clean-up asks before it deletes
    there: the database's and station's namespace (a copied database has its own), the run and its start."""
    from db.schema import to_utc_naive

    return f"{subdir}\nrun {run_id} started {to_utc_naive(started_at).isoformat(timespec='microseconds')}\n"


def trusted_models(sessions) -> ModelRegistry:
    """The shipped models and those this station's database trusts (sealed rows only)."""
    from db import TrustRepo
    from db.writes import write

    return ModelRegistry(write(sessions, lambda s: TrustRepo.trusted(s, "model"), "Reading the trusted models"))

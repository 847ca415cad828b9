"""Moved to the top-level package ``station`` (shared by both fronts); kept so older imports still work."""

from station.core import *  # noqa: F403
from station.core import DEFAULT_SOURCE, Station, StationSpec, default_db_url, image_base, open_db  # noqa: F401

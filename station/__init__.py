"""The inspection station: database, model, source, pipeline, runner and line adapters wired from the
configuration. Both fronts (``inspector run`` and the window) build it from here, so the window never
imports the command line.
"""

from station.core import (
    DEFAULT_SOURCE,
    RetainingWriter,
    Station,
    StationSpec,
    default_db_url,
    image_base,
    open_db,
    open_station,
    reconcile,
    station_trust,
)
from station.records import image_namespace, station_folder, trusted_models

__all__ = ["DEFAULT_SOURCE", "RetainingWriter", "Station", "StationSpec", "default_db_url", "image_base",
           "image_namespace", "open_db", "open_station", "reconcile", "station_folder", "station_trust",
           "trusted_models"]

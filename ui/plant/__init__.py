"""The plant view (issue 30): every station of the shared database with its model and outbox backlog, and the
alarms of the plant or of one station. ``create_tab(spec)`` is what the window's composition root plugs in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from station import StationSpec


def create_tab(spec: StationSpec) -> QWidget:
    """The plant tab over the station's database (opened on a pool thread when the tab is first shown)."""
    from station import image_base
    from ui.plant.service import PlantService
    from ui.plant.tab import PlantTab
    from ui.review.service import Database

    return PlantTab(PlantService(Database(spec.db_url, image_base(spec.db_url, spec.config)[0]),
                                 spec.config.station_name))

"""The Models tab (QC and admin). ``create_tab(spec)`` is what the window's composition root plugs in as a tab."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from station import StationSpec


def create_tab(spec: StationSpec) -> QWidget:
    """The models tab over the station's database (opened on a pool thread when first needed)."""
    from station import image_base
    from ui.models.service import ModelsService
    from ui.models.tab import ModelsTab
    from ui.review.service import Database

    return ModelsTab(ModelsService(Database(spec.db_url, image_base(spec.db_url, spec.config)[0]), spec.config))

"""The QC review screen. ``create_tab(spec)`` is what the window's composition root plugs in as a tab."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    from station import StationSpec


def create_tab(spec: StationSpec) -> QWidget:
    """The review tab over the station's database (opened on a pool thread when the tab is first shown)."""
    from station import image_base
    from ui.review.service import Database
    from ui.review.tab import ReviewTab

    return ReviewTab(Database(spec.db_url, image_base(spec.db_url, spec.config)[0]))

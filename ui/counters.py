"""The run's counters: inspected, pass, fail, review, not inspected and yield, as big tiles."""

from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QWidget

from inspector.core.types import Verdict
from inspector.inspection.runner import RunStats
from ui.tiles import VERDICT_TILES, Tile

TILES = VERDICT_TILES


def yield_pct(passed: int, inspected: int, not_inspected: int) -> float | None:
    """Pass share of the parts that could be judged (NOT_INSPECTED left out), as in the run summary."""
    judged = inspected - not_inspected
    return 100.0 * passed / judged if judged > 0 else None


class CountersPanel(QWidget):
    """Six tiles fed by ``RunStats`` (the runner's committed counts, so they match the database)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(8)
        self.tiles: dict[str, Tile] = {}
        for i, (key, caption, colour) in enumerate(TILES):
            tile = Tile(caption, colour)
            self.tiles[key] = tile
            grid.addWidget(tile, 0, i)  # one row: the side column keeps its height for health
        self.compact: bool | None = None
        self.set_compact(False)
        self.reset()

    def set_compact(self, compact: bool) -> None:
        """Smaller figures for panel-PC screens (1024 or 1280 px wide)."""
        if compact == self.compact:
            return
        self.compact = compact
        for tile in self.tiles.values():
            tile.set_point_size(18 if compact else 28)

    def reset(self) -> None:
        for key, tile in self.tiles.items():
            tile.value.setText("–" if key == "yield" else "0")

    def show_stats(self, st: RunStats) -> None:
        c = st.counts
        values = {"inspected": st.inspected, "pass": c.get(Verdict.PASS.value, 0), "fail": c.get(Verdict.FAIL.value, 0),
                  "review": c.get(Verdict.REVIEW.value, 0), "not_inspected": c.get(Verdict.NOT_INSPECTED.value, 0)}
        for key, v in values.items():
            self.tiles[key].value.setText(f"{v:,}")
        y = yield_pct(values["pass"], values["inspected"], values["not_inspected"])
        self.tiles["yield"].value.setText("–" if y is None else f"{y:.1f} %")

    def value(self, key: str) -> str:
        return self.tiles[key].value.text()

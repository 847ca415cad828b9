"""The review table's model: one page of ``InspectionRow`` DTOs, never the whole table."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from db import InspectionRow
from inspector.core.types import Verdict
from ui import theme
from ui.review.service import local_text

COLUMNS = ("Time", "Run", "Part", "Machine", "Final", "Defects", "Reviewed")
TIME, RUN, PART, MACHINE, FINAL, DEFECTS, REVIEWED = range(len(COLUMNS))
ROW_ROLE = Qt.ItemDataRole.UserRole

Index = QModelIndex | QPersistentModelIndex


def verdict_colour(v: Verdict) -> QColor:
    """The verdict's colour, readable as text on the dark table (NOT_INSPECTED's grey is lightened)."""
    return QColor("#aab2bc") if v == Verdict.NOT_INSPECTED else QColor(theme.VERDICT_COLOURS[v][0]).lighter(125)


class InspectionTableModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[InspectionRow] = []
        self._bold = QFont()
        self._bold.setBold(True)

    def set_rows(self, rows: list[InspectionRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def replace_row(self, row: InspectionRow) -> int | None:
        """Show a row as it now reads (after a review); returns its index, None if it is not on this page."""
        i = self.index_of(row.id)
        if i is None:
            return None
        self.rows[i] = row
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
        return i

    def index_of(self, inspection_id: int) -> int | None:
        return next((i for i, r in enumerate(self.rows) if r.id == inspection_id), None)

    def row_at(self, i: int) -> InspectionRow | None:
        return self.rows[i] if 0 <= i < len(self.rows) else None

    # Qt's model interface -----------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt's names
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, col)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col in (MACHINE, FINAL):
                return QBrush(verdict_colour(r.machine_verdict if col == MACHINE else r.final_verdict))
            if col == REVIEWED and r.reviewed:
                return QBrush(QColor(theme.ACCENT).lighter(130))
            if col in (TIME, RUN):
                return QBrush(QColor(theme.MUTED))
            return None
        if role == Qt.ItemDataRole.FontRole and col == FINAL:
            return self._bold
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == TIME:
                return local_text(r.created_at)
            if col == PART:
                return f"{theme.part_name(r.run_id, r.seq)} · {r.frame_name}"
            return "\n".join(r.reasons) or None
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (RUN, REVIEWED):
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == ROW_ROLE:
            return r
        return None

    @staticmethod
    def _text(r: InspectionRow, col: int) -> str:
        if col == TIME:
            return r.created_at.astimezone().strftime("%m-%d %H:%M:%S")  # the year is in the detail view
        if col == RUN:
            return str(r.run_id)
        if col == PART:
            return f"#{r.seq + 1}  {PurePath(r.frame_name).name}"  # the whole path is in the tooltip
        if col == MACHINE:
            return theme.VERDICT_TEXT[r.machine_verdict]
        if col == FINAL:
            changed = r.final_verdict != r.machine_verdict
            return theme.VERDICT_TEXT[r.final_verdict] + (" ✎" if changed else "")
        if col == DEFECTS:
            return r.labels_summary or "–"
        return "✓" if r.reviewed else ""

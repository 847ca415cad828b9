"""The line's I/O on the live screen: each connection's state, the last trigger and result, missed
triggers, results not acknowledged; and a red banner while the PLC link is down.

Both show the plain dict ``station.line.LineLink.status()`` gives (None: this station has no line).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from ui import theme
from ui.health import RowsPanel

OK, WARN, BAD = "#3ccf6e", "#f2a900", "#e5484d"
ROWS = (("trigger", "Trigger"), ("ready", "Ready"), ("links", "Connection"), ("last_trigger", "Last trigger"),
        ("last_result", "Last result sent"), ("missed", "Missed triggers"), ("unacked", "Not acknowledged"))


def _part(d: dict | None, key: str = "part_id") -> str:
    if not d:
        return "–"
    pid = d.get(key) or "(no part id)"
    when = str(d.get("ts", ""))[11:19]
    return f"{pid} · {d['verdict']} · {when}" if "verdict" in d else f"{pid} · {when}"


def link_lines(status: dict[str, Any]) -> str:
    return "\n".join(f"{x['name']}: {'connected' if x['connected'] else x['detail']}" for x in status["links"]) \
        or "no connection configured"


class IoPanel(RowsPanel):
    """LINE I/O: hidden while the station has no line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("LINE I/O", ROWS, parent)
        self.hide()

    def _set(self, key: str, text: str, colour: str | None = None) -> None:
        label = self.values[key]
        label.setText(text)
        label.setStyleSheet(f"background: transparent; color: {colour};" if colour else "background: transparent;")

    def show_status(self, status: dict[str, Any] | None) -> None:
        if status is None:
            self.hide()
            return
        self.show()
        self._set("trigger", status["trigger"])
        self._set("ready", "ready" if status["ready"] else f"not ready: {status['reason']}",
                  OK if status["ready"] else WARN)
        self._set("links", link_lines(status), BAD if status["link_down"] else OK)
        self._set("last_trigger", _part(status["last_trigger"]))
        self._set("last_result", _part(status["last_result"]))
        self._set("missed", str(status["missed"]), WARN if status["missed"] else None)
        self._set("unacked", str(status["unacknowledged"]), WARN if status["unacknowledged"] else None)

    def value(self, key: str) -> str:
        return self.values[key].text()


class LinkDownBanner(QFrame):
    """Red, above everything, while a connection to the PLC is down; gone when it is back."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("linkDownBanner")
        self.setStyleSheet(f"QFrame#linkDownBanner {{ background: #6b1013; border: 2px solid {theme.ERROR};"
                           " border-radius: 6px; } QFrame#linkDownBanner QLabel { background: transparent; }")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setFont(QFont(self.font().family(), 15, QFont.Weight.Bold))
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 8, 12, 8)
        lay.addWidget(self.text, 1)
        self.hide()

    def show_status(self, status: dict[str, Any] | None) -> None:
        down = [x for x in (status or {}).get("links", []) if not x["connected"] and x["detail"] != "closed"]
        if not down:
            self.text.clear()
            self.hide()
            return
        names = "; ".join(f"{x['name']} ({x['detail']})" for x in down)
        self.text.setText(f"PLC LINK DOWN: {names}. Inspection goes on; results wait and are sent when the link "
                          "is back, triggers cannot reach the station.")
        self.show()

    @property
    def message(self) -> str:
        return "" if self.isHidden() else self.text.text()

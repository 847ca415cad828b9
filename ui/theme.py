"""A dark theme for a factory screen: high contrast, big type, one colour per verdict."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from inspector.core import palette
from inspector.core.identity import part_name  # noqa: F401 - the screens' part names come from here
from inspector.core.types import Verdict

BG = "#121417"
PANEL = "#1b1f24"
PANEL_EDGE = "#2a3038"
TEXT = "#e8eaed"
MUTED = "#9aa3ad"
ACCENT = "#3d8bfd"
ERROR = "#e5484d"

# background, text colour
VERDICT_COLOURS: dict[Verdict | None, tuple[str, str]] = {
    Verdict.PASS: ("#1e9e50", "#ffffff"),
    Verdict.FAIL: ("#d9342b", "#ffffff"),
    Verdict.REVIEW: ("#f2a900", "#1a1a1a"),
    Verdict.NOT_INSPECTED: ("#5f6670", "#ffffff"),
    None: ("#262b31", MUTED),
}

VERDICT_TEXT = {Verdict.PASS: "PASS", Verdict.FAIL: "FAIL", Verdict.REVIEW: "REVIEW",
                Verdict.NOT_INSPECTED: "NOT INSPECTED"}

# Not colour alone (red-green colour blindness makes PASS and FAIL one colour): each verdict has its own
# shape before the word, and the banner its own fill pattern (FAIL hatched, REVIEW dotted).
VERDICT_MARK = {Verdict.PASS: "\u2714", Verdict.FAIL: "\u2716", Verdict.REVIEW: "\u25c6",
                Verdict.NOT_INSPECTED: "\u2014"}
VERDICT_PATTERN: dict[Verdict | None, Qt.BrushStyle] = {Verdict.FAIL: Qt.BrushStyle.BDiagPattern,
                                                        Verdict.REVIEW: Qt.BrushStyle.Dense6Pattern}


def verdict_label(v: Verdict) -> str:
    """The verdict as the screens write it: its shape, then its word ("\u2716 FAIL")."""
    return f"{VERDICT_MARK[v]} {VERDICT_TEXT[v]}"

ROI_COLOUR = "#3d8bfd"


def class_colour(cls: int) -> QColor:
    """Box colour by class index, from the palette the reports use too (inspector/palette.py)."""
    return QColor(palette.class_colour(cls))


STYLE = f"""
QMainWindow, QDialog {{ background: {BG}; }}
QWidget {{ color: {TEXT}; }}
QToolBar {{ background: {PANEL}; border: none; border-bottom: 1px solid {PANEL_EDGE}; spacing: 4px; padding: 4px; }}
QToolBar QToolButton {{ padding: 5px 7px; border-radius: 4px; }}
QToolBar QToolButton:hover {{ background: #2b3139; }}
QToolBar QToolButton:checked {{ background: #36404b; }}
QToolBar QToolButton:disabled {{ color: #5c646e; }}
QMenuBar {{ background: {PANEL}; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: #2b3139; }}
QMenu {{ background: {PANEL}; border: 1px solid {PANEL_EDGE}; }}
QTabWidget::pane {{ border: none; }}
QTabBar::tab {{ background: {PANEL}; color: {MUTED}; padding: 8px 22px; border: 1px solid {PANEL_EDGE};
                border-bottom: none; margin-right: 2px; }}
QTabBar::tab:selected {{ background: {BG}; color: {TEXT}; border-top: 2px solid {ACCENT}; }}
QStatusBar {{ background: {PANEL}; color: {MUTED}; border-top: 1px solid {PANEL_EDGE}; }}
QFrame#panel {{ background: {PANEL}; border: 1px solid {PANEL_EDGE}; border-radius: 6px; }}
QLabel#caption {{ color: {MUTED}; font-size: 13px; text-transform: uppercase; }}
QLabel#panelTitle {{ color: {MUTED}; font-size: 13px; font-weight: bold; letter-spacing: 1px; }}
QLabel#fieldError {{ color: {ERROR}; font-size: 13px; }}
QLabel#fieldHelp {{ color: {MUTED}; font-size: 12px; }}
QLineEdit, QComboBox, QSpinBox {{ background: #0f1113; border: 1px solid {PANEL_EDGE}; border-radius: 4px;
                                  padding: 4px 6px; selection-background-color: {ACCENT}; }}
QLineEdit[invalid="true"] {{ border: 1px solid {ERROR}; }}
QPushButton {{ background: #2b3139; border: 1px solid {PANEL_EDGE}; border-radius: 4px; padding: 6px 16px; }}
QPushButton:hover {{ background: #36404b; }}
QPushButton:default {{ border: 1px solid {ACCENT}; }}
QPushButton:disabled {{ color: #5c646e; }}
QScrollArea {{ border: none; background: transparent; }}
QToolTip {{ background: {PANEL}; color: {TEXT}; border: 1px solid {PANEL_EDGE}; }}
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style with a dark palette and the stylesheet above."""
    app.setStyle("Fusion")
    font = app.font()
    font.setPointSize(11)  # stylesheets set no font sizes but captions', so widgets' own fonts apply
    app.setFont(font)
    pal = QPalette()
    for role, colour in ((QPalette.Window, BG), (QPalette.WindowText, TEXT), (QPalette.Base, "#0f1113"),
                         (QPalette.AlternateBase, PANEL), (QPalette.Text, TEXT), (QPalette.Button, "#2b3139"),
                         (QPalette.ButtonText, TEXT), (QPalette.Highlight, ACCENT),
                         (QPalette.HighlightedText, "#ffffff"), (QPalette.ToolTipBase, PANEL),
                         (QPalette.ToolTipText, TEXT), (QPalette.PlaceholderText, MUTED)):
        pal.setColor(role, QColor(colour))
    pal.setColor(QPalette.Disabled, QPalette.Text, QColor("#5c646e"))
    pal.setColor(QPalette.Disabled, QPalette.ButtonText, QColor("#5c646e"))
    app.setPalette(pal)
    app.setStyleSheet(STYLE)

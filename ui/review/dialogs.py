"""The review's small dialogs, keyboard first: the reason of an override, the class of a missed defect."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCompleter,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QVBoxLayout,
    QWidget,
)

from inspector.core.types import Verdict
from ui import theme


def _heading(text: str, verdict: Verdict | None = None) -> QLabel:
    lab = QLabel(text)
    lab.setFont(QFont(lab.font().family(), 15, QFont.Weight.Bold))
    if verdict is not None:
        bg, fg = theme.VERDICT_COLOURS[verdict]
        lab.setStyleSheet(f"background: {bg}; color: {fg}; padding: 6px 12px; border-radius: 5px;")
    return lab


class ReasonDialog(QDialog):
    """Why the verdict changes; Enter accepts (not with an empty reason), Esc cancels."""

    def __init__(self, verdict: Verdict, current: Verdict, recent: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.verdict = verdict
        name = theme.VERDICT_TEXT[verdict]
        self.setWindowTitle(f"Override to {name}")
        self.setMinimumWidth(480)
        note = QLabel(f"The part is {theme.VERDICT_TEXT[current]} now. The reason is kept with the review and "
                      "in the audit trail.")
        note.setObjectName("fieldHelp")
        note.setWordWrap(True)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("reason (required), e.g. reflection, not a scratch")
        if recent:
            completer = QCompleter(recent, self)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            completer.setFilterMode(Qt.MatchFlag.MatchContains)
            self.reason.setCompleter(completer)
        self.error = QLabel("")
        self.error.setObjectName("fieldError")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText(f"Override to {name}")
        ok.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(_heading(f"Override to {name}", verdict))
        lay.addWidget(note)
        lay.addWidget(self.reason)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.reason.setFocus()

    def text(self) -> str:
        return self.reason.text().strip()

    def accept(self) -> None:
        if not self.text():
            self.error.setText("An override needs a reason.")
            self.reason.setFocus()
            return
        super().accept()


class ClassDialog(QDialog):
    """Which class the missed defect is: arrows or the first letter, then Enter."""

    def __init__(self, classes: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Missed defect")
        self.setMinimumWidth(360)
        self.list = QListWidget()
        self.list.setStyleSheet("QListWidget::item { padding: 5px 8px; }")
        self.list.addItems(classes)
        self.list.setCurrentRow(0)
        self.list.itemActivated.connect(lambda _item: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add the box")
        buttons.button(QDialogButtonBox.StandardButton.Ok).setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(_heading("Which defect did the model miss?"))
        lay.addWidget(self.list)
        lay.addWidget(buttons)
        self.list.setFocus()

    def label(self) -> str | None:
        item = self.list.currentItem()
        return item.text() if item is not None else None

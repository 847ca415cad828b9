"""Signing in for protected actions (review, override, export), or creating the first admin on a fresh install.

The checks run on a pool thread (a password check costs ~50 ms of scrypt and writes the audit trail);
a wrong password or a lock-out is shown in the dialog, which stays open for another try.
"""

from __future__ import annotations

import logging
from typing import Protocol

from PySide6.QtCore import Qt, QThreadPool, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from inspector.core.auth import MIN_PASSWORD, Actor
from inspector.core.errors import InspectorError
from ui.workers import operator_message, run_job

log = logging.getLogger(__name__)


class AccountsLike(Protocol):
    """What the dialog needs (``ui.review.service.Accounts``); both block, so they run on the pool."""

    def sign_in(self, name: str, password: str) -> Actor: ...

    def create_first_admin(self, name: str, password: str) -> Actor: ...


def first_admin_problem(name: str, password: str, repeat: str) -> str | None:
    """Why the first-admin form cannot be sent yet, in one sentence; None when it can."""
    if not name.strip():
        return "Enter a user name."
    if len(password) < MIN_PASSWORD:
        return f"The password needs at least {MIN_PASSWORD} characters."
    if password != repeat:
        return "The two passwords differ; type the same password twice."
    return None


class LoginDialog(QDialog):
    """``first_user``: no user exists yet, so the form creates the first admin (then signs them in)."""

    signed_in = Signal(object)  # Actor

    def __init__(self, accounts: AccountsLike, pool: QThreadPool, first_user: bool, why: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.accounts = accounts
        self.pool = pool
        self.first_user = first_user
        self.actor: Actor | None = None
        self.busy = False
        self.setWindowTitle("Create the first administrator" if first_user else "Sign in")
        self.setMinimumWidth(460)
        heading = QLabel("Create the first administrator" if first_user else "Sign in to continue")
        heading.setFont(QFont(self.font().family(), 15, QFont.Weight.Bold))
        if first_user:
            text = (f"{why}\n" if why else "") + ("No user exists yet. The first user is an administrator, who can "
                                                  "then add QC users. The password needs at least "
                                                  f"{MIN_PASSWORD} characters.")
        else:
            text = why or "This needs a QC user (or an admin)."
        explain = QLabel(text)
        explain.setWordWrap(True)
        explain.setObjectName("fieldHelp")
        self.name = QLineEdit()
        self.name.setPlaceholderText("user name")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat = QLineEdit()
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Password", self.password)
        if first_user:
            form.addRow("Repeat password", self.repeat)
        else:
            self.repeat.hide()
        self.error = QLabel("")
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Create and sign in" if first_user else "Sign in")
        self.ok.setDefault(True)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAutoDefault(False)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(heading)
        lay.addWidget(explain)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self.name.setFocus(Qt.FocusReason.OtherFocusReason)

    def submit(self) -> None:
        """Check the form here, then the credentials on the pool; Enter in any field comes here."""
        if self.busy:
            return
        name, password = self.name.text().strip(), self.password.text()
        if self.first_user:
            problem = first_admin_problem(name, password, self.repeat.text())
            call = self.accounts.create_first_admin
        else:
            problem = None if name and password else "Enter your user name and password."
            call = self.accounts.sign_in
        if problem:
            self._show_error(problem)
            return
        self._set_busy(True)
        self.error.setText("Checking…")
        run_job(self.pool, lambda: call(name, password), self._done, self._failed, "sign-in")

    def _done(self, actor: Actor) -> None:
        self._set_busy(False)
        self.actor = actor
        log.info("signed in as %s (%s)", actor.name, actor.role.value)
        self.signed_in.emit(actor)
        self._show_recovery_code(actor.name)
        self.accept()

    def _show_recovery_code(self, name: str) -> None:
        """The first admin's one-time recovery code, shown once (not modal: nothing waits on it)."""
        code = getattr(self.accounts, "recovery_code", None)
        if not code:
            return
        self.accounts.recovery_code = None  # type: ignore[attr-defined]
        box = QMessageBox(QMessageBox.Icon.Information, "Recovery code",
                          f"Recovery code for {name}: {code}\n\nWrite it down and keep it offline: it is shown only "
                          f"now. If {name} is locked out, 'inspector user recover {name}' takes it once.",
                          parent=self.parentWidget())
        box.setModal(False)
        box.show()
        self.recovery_box = box

    def _failed(self, e: BaseException) -> None:
        self._set_busy(False)
        if isinstance(e, ValueError):  # a taken name or a refused password, from the repositories
            self._show_error(f"{str(e)[:1].upper()}{str(e)[1:]}.")
        elif isinstance(e, InspectorError):
            msg = str(e)
            self._show_error(msg[:1].upper() + msg[1:])
        else:
            self._show_error(operator_message(e))
        self.password.selectAll()
        self.password.setFocus()

    def _show_error(self, text: str) -> None:
        self.error.setText(text)

    def _set_busy(self, busy: bool) -> None:
        """Fields stay enabled (disabling them would move the focus, and Enter, to Cancel) but read-only."""
        self.busy = busy
        self.ok.setEnabled(not busy)
        for w in (self.name, self.password, self.repeat):
            w.setReadOnly(busy)

    def reject(self) -> None:
        if not self.busy:  # a check in flight finishes first (it is short)
            super().reject()

"""Local users and roles: who may do what, and slow salted password hashes (standard library scrypt).

Roles: ``operator`` (run, view), ``qc`` (review, override, export, report, train, recipes),
``admin`` (users, models, settings). Every protected action calls ``require`` on the actor that the
database resolved from its users table (``db.repositories.users.authorize``): the repositories for
users, reviews and trust decisions do it themselves, and the commands for train (registering its
output), report and export-dataset do it before they start. While the station's database has no
user (a fresh install), whoever runs Inspector acts as ``FRESH_INSTALL``, an admin, as the audit
trail records; the first user added must be an admin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from enum import Enum

from inspector.core.errors import PermissionDenied


class Role(str, Enum):
    OPERATOR = "operator"
    QC = "qc"
    ADMIN = "admin"


_RANK = {Role.OPERATOR: 0, Role.QC: 1, Role.ADMIN: 2}

#: the lowest role allowed to do each protected action
ACTIONS: dict[str, Role] = {
    "run": Role.OPERATOR,
    "view": Role.OPERATOR,
    "review": Role.QC,
    "override": Role.QC,
    "export": Role.QC,
    "train": Role.QC,
    "report": Role.QC,
    "users": Role.ADMIN,
    "recipe": Role.QC,
    "model": Role.ADMIN,
    "promote": Role.QC,  # promote or roll back the model that judges a station's parts (issue 15)
    "settings": Role.ADMIN,
    "stations": Role.ADMIN,  # register a station's public key in the plant's database (issue 30)
}

#: how a refusal names an action to a person ("olga (operator) may not change a recipe or product")
ACTION_WORDS: dict[str, str] = {"recipe": "change a recipe or product", "model": "trust a model",
                                "users": "manage users", "settings": "change protected settings",
                                "promote": "promote or roll back a model", "train": "train a model",
                                "report": "make a report", "export": "export data", "run": "run the line"}

MAX_FAILURES = 5
LOCKOUT_S = 300
MIN_PASSWORD = 8


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user, or the station's operator on a fresh install."""

    name: str
    role: Role

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("expected an actor name, got ''")
        if not isinstance(self.role, Role):
            raise ValueError(f"expected a Role, got {self.role!r}")


STATION_OPERATOR = Actor("station-operator", Role.OPERATOR)
#: who acts while the station's database has no users
FRESH_INSTALL = Actor("local-admin (no users yet)", Role.ADMIN)


def allowed(actor: Actor, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(sorted(ACTIONS))}")
    return _RANK[actor.role] >= _RANK[ACTIONS[action]]


def require(actor: Actor | None, action: str) -> Actor:
    """Raise PermissionDenied unless ``actor`` may do ``action``; return the actor."""
    if actor is None:
        raise PermissionDenied(f"'{action}' needs a signed-in user with the {ACTIONS[action].value} role.")
    if not allowed(actor, action):
        raise PermissionDenied(f"{actor.name} ({actor.role.value}) may not {ACTION_WORDS.get(action, action)}: it "
                               f"needs the {ACTIONS[action].value} role or higher.")
    return actor


# scrypt parameters: ~50 ms and 16 MiB per check on a small PC, so guessing is slow
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))

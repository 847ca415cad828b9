"""Local users and roles: who may do what, and slow salted password hashes (standard library scrypt).

Roles: ``operator`` (run, view), ``qc`` (review, override, export, report, train, recipes),
``admin`` (users, models, settings). Every protected action calls ``require`` on the actor that the
database resolved from its users table (``db.repositories.users.authorize``): the repositories for
users, reviews and trust decisions do it themselves, and the commands for train (registering its
output), report and export-dataset do it before they start. While the station's database has no
user (a fresh install), whoever runs Inspector acts as ``FRESH_INSTALL``, an admin, as the audit
trail records; the first user added must be an admin.

Protected writes take a signed-in session, not a name (issue 24): sign-in (``db.accounts``) checks the password
and issues a ``SignedIn``, an ``Actor`` with an expiry and a token sealed with the station's key; the
repositories refuse a bare ``Actor`` built by name, a token that does not match, and an expired one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
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


#: how long a sign-in lasts (a shift and a half); then the window or the command signs in again
SESSION_S = 12 * 3600


@dataclass(frozen=True)
class SignedIn(Actor):
    """A user whose password was checked at sign-in: valid until ``expires_at`` (UTC), with the token the station's
    key sealed then (``issue``). Only the sign-in makes one that a repository accepts."""

    expires_at: dt.datetime = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    token: str = field(default="", repr=False, compare=False)
    #: the user's session epoch at sign-in (the id of the last audit entry that ended their sessions: a sign-out, a
    #: password or role change, a recovery, an admin's revoke; 0 for none): a later one ends this session (issue 24)
    epoch: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.expires_at.tzinfo is None:
            raise ValueError(f"expected an aware expiry time, got {self.expires_at!r}")


def _token_mac(key: bytes, name: str, role: Role, expires_at: dt.datetime, nonce: str, epoch: int = 0) -> str:
    payload = json.dumps(["sign-in", name, role.value, expires_at.astimezone(dt.timezone.utc).isoformat(), nonce]
                         + ([int(epoch)] if epoch else []))
    return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def issue(key: bytes, actor: Actor, now: dt.datetime | None = None, ttl_s: float = SESSION_S,
          epoch: int = 0) -> SignedIn:
    """A session for ``actor`` whose password was just checked (``db.accounts.sign_in`` calls this, with the user's
    session ``epoch`` as the database knows it)."""
    if ttl_s <= 0:
        raise ValueError(f"expected a positive session length in seconds, got {ttl_s}")
    expires = (now or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(seconds=ttl_s)
    nonce = secrets.token_hex(8)
    mac = _token_mac(key, actor.name, actor.role, expires, nonce, epoch)
    return SignedIn(actor.name, actor.role, expires, f"{nonce}.{mac}", int(epoch))


def session_problem(key: bytes, actor: Actor, now: dt.datetime | None = None) -> str | None:
    """Why ``actor`` is no signed-in session this station accepts (one sentence), or None when it is one."""
    if not isinstance(actor, SignedIn) or not actor.token:
        return (f"{actor.name!r} is not signed in: a protected change needs a session from sign-in with a password "
                "(a name alone counts for nothing).")
    nonce, _, mac = actor.token.partition(".")
    if not hmac.compare_digest(_token_mac(key, actor.name, actor.role, actor.expires_at, nonce, actor.epoch), mac):
        return f"the session of {actor.name!r} was not issued by this station's sign-in: sign in again."
    if (now or dt.datetime.now(dt.timezone.utc)) >= actor.expires_at:
        return (f"the sign-in of {actor.name} expired at {actor.expires_at.isoformat(timespec='minutes')}: "
                "sign in again.")
    return None


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

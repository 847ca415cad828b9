"""User accounts as stored strings, and who is acting: the role always comes from this table.

Every change of a name, role, password or recovery code is checked against the acting user's role
as stored here (not as the caller claims), sealed (``db.seal``) and audited in the same transaction.
Password hashing and the lock-out policy's use live in the engine.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.dto import UserDTO
from db.repositories._common import user_dto, utcnow
from db.repositories.audit import AuditRepo, bind_row, had_users
from db.schema import ROLES, AuditEntry, User
from db.seal import key, row_sealed, user_fields
from inspector.core.auth import FRESH_INSTALL, Actor, Role, SignedIn, require, session_problem, verify_password
from inspector.core.errors import PermissionDenied


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"expected a role among {list(ROLES)}, got {role!r}")


#: audit actions that end every session of the user they name (issue 24): a session carries the id of the last such
#: entry at its sign-in (``SignedIn.epoch``) and counts only while no later one exists
ENDS_SESSIONS = ("user.signout", "user.password", "user.role", "user.recover", "user.revoke")


def session_epoch(session: Session, name: str) -> int:
    """The id of the last audit entry that ended ``name``'s sessions (0: none)."""
    q = select(func.max(AuditEntry.id)).where(AuditEntry.target == f"user:{name}",
                                              AuditEntry.action.in_(ENDS_SESSIONS))
    return int(session.execute(q).scalar() or 0)


def authorize(session: Session, actor: Actor | None, action: str, fresh_install: bool = True) -> Actor:
    """The acting user as the users table knows them, allowed to do ``action``; PermissionDenied otherwise.

    While the table is empty (a fresh install) whoever runs Inspector acts as ``FRESH_INSTALL`` (an
    admin) when ``fresh_install`` allows it. Once users exist, an actor must be one of them, with the
    role the table gives (and a sealed row): a claimed role counts for nothing.
    """
    if not UserRepo.exists(session):
        emptied = had_users(session)
        if emptied is not None:
            raise PermissionDenied(f"this station's users were removed outside Inspector ({emptied}): it does not "
                                   "go back to 'no users yet'; restore the database from its backup and run "
                                   "'inspector audit verify'.")
        if fresh_install:
            return require(FRESH_INSTALL, action)
        raise PermissionDenied(f"'{action}' needs a signed-in user, and this station has no users yet: "
                               "add an admin with 'inspector user add NAME --role admin'.")
    if actor is None:
        return require(None, action)
    refused = session_problem(key(session), actor)
    if refused is not None:
        raise PermissionDenied(refused)
    if isinstance(actor, SignedIn) and actor.epoch != session_epoch(session, actor.name):
        raise PermissionDenied(f"the session of {actor.name} was ended (signed out, password or role changed, or "
                               "revoked by an admin): sign in again.")
    user = UserRepo._find(session, actor.name)
    if user is None:
        raise PermissionDenied(f"{actor.name!r} is not a user of this station.")
    if not row_sealed(session, user_fields, user):
        raise PermissionDenied(f"the account {actor.name!r} was changed outside Inspector (its seal does not "
                               "match); an admin must check 'inspector audit verify'.")
    if user.role != Role(actor.role).value:
        raise PermissionDenied(f"{actor.name} is {user.role} on this station, not {Role(actor.role).value}.")
    return require(actor, action)  # the session itself: its name and role are the table's


class UserRepo:
    @staticmethod
    def add(session: Session, actor: Actor | None, name: str, role: str, password_hash: str,
            recovery_hash: str | None = None) -> UserDTO:
        """A new user, added by ``actor`` (an admin); the very first user must be an admin and adds themself.

        ValueError for an empty or taken name or an unknown role; PermissionDenied for an actor who may not.
        """
        _check_role(role)
        if not name or not name.strip():
            raise ValueError(f"expected a non-empty user name, got {name!r}")
        if not UserRepo.fresh(session):
            who = authorize(session, actor, "users").name
        elif role != Role.ADMIN.value:
            raise PermissionDenied("the first user must be an admin (role 'admin').")
        else:
            who = name
        if UserRepo._find(session, name) is not None:
            raise ValueError(f"expected a new user name, got {name!r}, which exists")
        user = User(name=name, role=role, password_hash=password_hash, failed_attempts=0, created_at=utcnow(),
                    recovery_hash=recovery_hash)
        session.add(user)
        bound = bind_row(session, user_fields, user)
        AuditRepo.append(session, actor=who, action="user.add", target=f"user:{name}", detail={"role": role, **bound})
        return user_dto(user)

    @staticmethod
    def exists(session: Session) -> bool:
        """Whether the station's users table has any row."""
        return session.execute(select(User.id).limit(1)).first() is not None

    @staticmethod
    def fresh(session: Session) -> bool:
        """A fresh install: no user now, and none ever (a database whose users were deleted behind Inspector's
        back is not fresh: see ``had_users``)."""
        return not UserRepo.exists(session) and had_users(session) is None

    @staticmethod
    def is_sealed(session: Session, name: str) -> bool:
        """Whether the user's row is as Inspector last wrote it."""
        user = UserRepo._need(session, name)
        return row_sealed(session, user_fields, user)

    @staticmethod
    def get(session: Session, name: str) -> UserDTO | None:
        user = UserRepo._find(session, name)
        return None if user is None else user_dto(user)

    @staticmethod
    def list(session: Session) -> list[UserDTO]:
        return [user_dto(u) for u in session.scalars(select(User).order_by(User.name))]

    @staticmethod
    def record_failure(session: Session, name: str, *, max_attempts: int = 5,
                       lock_for: dt.timedelta = dt.timedelta(minutes=15), now: dt.datetime | None = None) -> UserDTO:
        """Count a failed log-in; the ``max_attempts``-th in a row locks the account for ``lock_for``."""
        user = UserRepo._need(session, name)
        user.failed_attempts += 1
        if user.failed_attempts >= max_attempts:
            user.locked_until = (now or utcnow()) + lock_for
        session.flush()
        return user_dto(user)

    @staticmethod
    def record_success(session: Session, name: str) -> UserDTO:
        """A successful log-in clears the failure count and any lock."""
        user = UserRepo._need(session, name)
        user.failed_attempts = 0
        user.locked_until = None
        session.flush()
        return user_dto(user)

    @staticmethod
    def set_password(session: Session, actor: Actor | None, name: str, password_hash: str) -> UserDTO:
        """A new password, set by the user themself or by an admin; audited."""
        who = authorize(session, actor, "view" if actor is not None and actor.name == name else "users",
                        fresh_install=False)
        user = UserRepo._need(session, name)
        user.password_hash = password_hash
        bound = bind_row(session, user_fields, user)
        AuditRepo.append(session, actor=who.name, action="user.password", target=f"user:{name}", detail=bound)
        return user_dto(user)

    @staticmethod
    def set_role(session: Session, actor: Actor | None, name: str, role: str) -> UserDTO:
        """A new role, set by an admin; audited. The last admin cannot be demoted."""
        _check_role(role)
        who = authorize(session, actor, "users", fresh_install=False)
        user = UserRepo._need(session, name)
        old = user.role
        admins = len(session.execute(select(User.id).where(User.role == Role.ADMIN.value).limit(2)).all())
        if old == Role.ADMIN.value and role != old and admins < 2:
            raise PermissionDenied(f"{name} is the only admin: make another admin first.")
        user.role = role
        bound = bind_row(session, user_fields, user)
        AuditRepo.append(session, actor=who.name, action="user.role", target=f"user:{name}",
                         detail={"old_role": old, "new_role": role, **bound})
        return user_dto(user)

    @staticmethod
    def recover(session: Session, name: str, code: str, password_hash: str,
                new_recovery_hash: str) -> UserDTO | None:
        """Unlock a user with their one-time recovery code: new password, new code, audited either way.

        None for a wrong or used code (the failed attempt is audited: the caller commits, then refuses).
        """
        user = UserRepo._find(session, name)
        ok = (user is not None and user.recovery_hash is not None and row_sealed(session, user_fields, user)
              and verify_password(code, user.recovery_hash))
        if not ok or user is None:
            AuditRepo.append(session, actor=name or "?", action="user.recover.failed", target=f"user:{name}")
            return None
        user.password_hash = password_hash
        user.recovery_hash = new_recovery_hash
        user.failed_attempts = 0
        user.locked_until = None
        bound = bind_row(session, user_fields, user)
        AuditRepo.append(session, actor=name, action="user.recover", target=f"user:{name}",
                         detail={"note": "recovery code used; a new one was issued", **bound})
        return user_dto(user)

    @staticmethod
    def revoke(session: Session, actor: Actor | None, name: str) -> None:
        """End every session of ``name`` (an admin, or the user themself); audited. Their next protected change
        asks them to sign in again."""
        who = authorize(session, actor, "view" if actor is not None and actor.name == name else "users",
                        fresh_install=False)
        UserRepo._need(session, name)
        AuditRepo.append(session, actor=who.name, action="user.revoke", target=f"user:{name}")

    @staticmethod
    def sign_out(session: Session, actor: Actor) -> bool:
        """End the sessions of a signed-in user at their sign-out (audited); False (nothing written) for an actor
        whose session counts no more anyway."""
        if not isinstance(actor, SignedIn) or session_problem(key(session), actor) is not None \
                or actor.epoch != session_epoch(session, actor.name) or UserRepo._find(session, actor.name) is None:
            return False
        AuditRepo.append(session, actor=actor.name, action="user.signout", target=f"user:{actor.name}")
        return True

    @staticmethod
    def _find(session: Session, name: str) -> User | None:
        return session.scalars(select(User).where(User.name == name)).first()

    @staticmethod
    def _need(session: Session, name: str) -> User:
        user = UserRepo._find(session, name)
        if user is None:
            raise LookupError(f"no user named {name!r}")
        return user

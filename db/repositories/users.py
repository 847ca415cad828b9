"""User accounts as stored strings. Password hashing and the lock-out policy's use live in the engine."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.dto import UserDTO
from db.repositories._common import user_dto, utcnow
from db.schema import ROLES, User


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"expected a role among {list(ROLES)}, got {role!r}")


class UserRepo:
    @staticmethod
    def add(session: Session, name: str, role: str, password_hash: str) -> UserDTO:
        """A new user; ValueError for an empty or taken name or an unknown role."""
        _check_role(role)
        if not name or not name.strip():
            raise ValueError(f"expected a non-empty user name, got {name!r}")
        if UserRepo._find(session, name) is not None:
            raise ValueError(f"expected a new user name, got {name!r}, which exists")
        user = User(name=name, role=role, password_hash=password_hash, failed_attempts=0, created_at=utcnow())
        session.add(user)
        session.flush()
        return user_dto(user)

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
    def set_password(session: Session, name: str, password_hash: str) -> UserDTO:
        user = UserRepo._need(session, name)
        user.password_hash = password_hash
        session.flush()
        return user_dto(user)

    @staticmethod
    def set_role(session: Session, name: str, role: str) -> UserDTO:
        _check_role(role)
        user = UserRepo._need(session, name)
        user.role = role
        session.flush()
        return user_dto(user)

    @staticmethod
    def _find(session: Session, name: str) -> User | None:
        return session.scalars(select(User).where(User.name == name)).first()

    @staticmethod
    def _need(session: Session, name: str) -> User:
        user = UserRepo._find(session, name)
        if user is None:
            raise LookupError(f"no user named {name!r}")
        return user

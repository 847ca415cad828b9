"""Signing in and managing users: the role checks at the database boundary, each change audited."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from db.dto import UserDTO
from db.repositories import AuditRepo, UserRepo
from inspector.auth import LOCKOUT_S, MAX_FAILURES, Actor, Role, hash_password, require, verify_password
from inspector.errors import PermissionDenied

log = logging.getLogger(__name__)


def sign_in(sessions, name: str, password: str, now: dt.datetime | None = None) -> Actor:
    """Check a sign-in in its own transaction, so a failure is counted even though it raises."""
    from db.writes import write

    result = write(sessions, lambda s: check_login(s, name, password, now), "Signing in")
    if isinstance(result, PermissionDenied):
        raise result
    return result


def check_login(session: Session, name: str, password: str, now: dt.datetime | None = None) -> Actor | PermissionDenied:
    """The signed-in actor, or the PermissionDenied to raise once the failure is recorded.

    An unknown name and a wrong password get the same words and cost the same time.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    user = UserRepo.get(session, name)
    if user is None:
        verify_password(password, "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA")  # same cost either way
        AuditRepo.append(session, actor=name or "?", action="login.failed", target="user:unknown")
        return PermissionDenied("wrong user name or password.")
    if user.locked(now):
        AuditRepo.append(session, actor=name, action="login.refused", target=f"user:{name}", detail={"locked": True})
        return PermissionDenied(f"{name} is locked after {MAX_FAILURES} failed sign-ins; try again later "
                               "or ask an admin.")
    if not verify_password(password, user.password_hash):
        after = UserRepo.record_failure(session, name, max_attempts=MAX_FAILURES,
                                        lock_for=dt.timedelta(seconds=LOCKOUT_S), now=now)
        AuditRepo.append(session, actor=name, action="login.failed", target=f"user:{name}",
                         detail={"failed_attempts": after.failed_attempts})
        return PermissionDenied("wrong user name or password.")
    UserRepo.record_success(session, name)
    AuditRepo.append(session, actor=name, action="login", target=f"user:{name}")
    return Actor(user.name, Role(user.role))


def create_user(session: Session, actor: Actor | None, name: str, role: Role | str, password: str) -> UserDTO:
    """Add a user. Only an admin may, except for the very first user, who must be an admin."""
    role = Role(role)
    if UserRepo.list(session):
        require(actor, "users")
        who = actor.name  # type: ignore[union-attr]
    else:
        if role != Role.ADMIN:
            raise PermissionDenied("the first user must be an admin (role 'admin').")
        who = name
    user = UserRepo.add(session, name, role.value, hash_password(password))
    AuditRepo.append(session, actor=who, action="user.add", target=f"user:{name}", detail={"role": role.value})
    return user


def has_users(session: Session) -> bool:
    return bool(UserRepo.list(session))

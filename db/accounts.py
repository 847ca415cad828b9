"""Signing in and managing users: the role checks at the database boundary, each change audited."""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from sqlalchemy.orm import Session

from db.dto import UserDTO
from db.repositories import AuditRepo, UserRepo
from db.repositories.users import session_epoch
from db.seal import key
from inspector.core.auth import (
    LOCKOUT_S,
    MAX_FAILURES,
    Actor,
    Role,
    SignedIn,
    hash_password,
    issue,
    verify_password,
)
from inspector.core.errors import PermissionDenied

log = logging.getLogger(__name__)


_NO_USER_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA"


def sign_in(sessions, name: str, password: str, now: dt.datetime | None = None) -> SignedIn:
    """Check a sign-in: the password is checked (scrypt, slow) outside any transaction, then the outcome is
    recorded in one short write transaction, so a failure is counted even though it raises and the line's
    commits never wait for (or break) the hash. Returns the session that protected writes take (``SignedIn``)."""
    from db.writes import write

    seen = write(sessions, lambda s: UserRepo.get(s, name), "Signing in")
    seen_hash = seen.password_hash if seen is not None else None
    ok = verify_password(password, seen_hash or _NO_USER_HASH)  # same cost for an unknown name
    result = write(sessions, lambda s: record_login(s, name, seen_hash, ok, now), "Signing in")
    if isinstance(result, PermissionDenied):
        raise result
    return result


def check_login(session: Session, name: str, password: str,
                now: dt.datetime | None = None) -> SignedIn | PermissionDenied:
    """The signed-in actor, or the PermissionDenied to raise once the failure is recorded (all in ``session``).

    An unknown name and a wrong password get the same words and cost the same time.
    """
    user = UserRepo.get(session, name)
    seen_hash = user.password_hash if user is not None else None
    ok = verify_password(password, seen_hash or _NO_USER_HASH)
    return record_login(session, name, seen_hash, ok, now)


def record_login(session: Session, name: str, seen_hash: str | None, ok: bool,
                 now: dt.datetime | None = None) -> SignedIn | PermissionDenied:
    """Record a sign-in whose password check (against ``seen_hash``) gave ``ok``; a password changed since that
    check counts as a wrong one."""
    now = now or dt.datetime.now(dt.timezone.utc)
    user = UserRepo.get(session, name)
    if user is None:
        AuditRepo.append(session, actor=name or "?", action="login.failed", target="user:unknown")
        return PermissionDenied("wrong user name or password.")
    if not UserRepo.is_sealed(session, name):
        AuditRepo.append(session, actor=name, action="login.refused", target=f"user:{name}",
                         detail={"seal": "broken"})
        return PermissionDenied(f"the account {name!r} was changed outside Inspector; an admin must check "
                                "'inspector audit verify'.")
    if user.locked(now):
        AuditRepo.append(session, actor=name, action="login.refused", target=f"user:{name}", detail={"locked": True})
        return PermissionDenied(f"{name} is locked after {MAX_FAILURES} failed sign-ins; try again later, "
                                "ask an admin, or use the recovery code with 'inspector user recover NAME'.")
    if not ok or user.password_hash != seen_hash:
        after = UserRepo.record_failure(session, name, max_attempts=MAX_FAILURES,
                                        lock_for=dt.timedelta(seconds=LOCKOUT_S), now=now)
        AuditRepo.append(session, actor=name, action="login.failed", target=f"user:{name}",
                         detail={"failed_attempts": after.failed_attempts})
        return PermissionDenied("wrong user name or password.")
    UserRepo.record_success(session, name)
    # the clock's now, not the lock-out's; the epoch: a later sign-out, password or role change ends this session
    signed = issue(key(session), Actor(user.name, Role(user.role)), epoch=session_epoch(session, name))
    AuditRepo.append(session, actor=name, action="login", target=f"user:{name}",
                     detail={"until": signed.expires_at.isoformat(timespec="seconds")})
    return signed


def new_recovery_code() -> tuple[str, str]:
    """(code to show once, its hash to store)."""
    code = "-".join(secrets.token_hex(3) for _ in range(4))
    return code, hash_password(code)


def create_user(session: Session, actor: Actor | None, name: str, role: Role | str,
                password: str) -> tuple[UserDTO, str | None]:
    """Add a user (``UserRepo.add`` checks the actor). The first user, an admin, also gets a one-time
    recovery code: returned here to be shown once, stored only hashed."""
    role = Role(role)
    code, code_hash = new_recovery_code() if not has_users(session) else (None, None)
    user = UserRepo.add(session, actor, name, role.value, hash_password(password), code_hash)
    return user, code


def add_user(sessions, actor: Actor | None, name: str, role: Role | str, password: str,
             doing: str = "Adding a user") -> tuple[UserDTO, str | None]:
    """``create_user`` in its own short write transaction, the slow hashes (password, recovery code) computed
    before it, so that a station whose line commits at full rate takes the new user at once."""
    from db.writes import write

    role = Role(role)
    password_hash = hash_password(password)
    code, code_hash = new_recovery_code()

    def add(s: Session) -> tuple[UserDTO, str | None]:
        first = not has_users(s)
        user = UserRepo.add(s, actor, name, role.value, password_hash, code_hash if first else None)
        return user, code if first else None
    return write(sessions, add, doing)


def recover(sessions, name: str, code: str, new_password: str) -> str:
    """Reset a (locked-out) user's password with their recovery code, in its own transaction; returns the new
    code. PermissionDenied for a wrong or used code, after the attempt is audited."""
    from db.writes import write

    new_code, new_hash = new_recovery_code()
    password_hash = hash_password(new_password)
    user = write(sessions, lambda s: UserRepo.recover(s, name, code, password_hash, new_hash), "Recovering the account")
    if user is None:
        raise PermissionDenied("wrong user name or recovery code (each code works once).")
    return new_code


def has_users(session: Session) -> bool:
    """Whether the station has (or has had) users: False only on a fresh install."""
    return not UserRepo.fresh(session)

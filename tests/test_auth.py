"""Users and roles: slow salted hashes, lock-out, role checks at the database boundary, audited."""

import datetime as dt
import os
import subprocess
import sys

import pytest

from db import AuditRepo, open_database, session_factory
from db.accounts import create_user, sign_in
from inspector.core.auth import (
    SESSION_S,
    STATION_OPERATOR,
    Actor,
    Role,
    SignedIn,
    allowed,
    hash_password,
    issue,
    require,
    session_problem,
    verify_password,
)
from inspector.core.errors import PermissionDenied
from inspector.core.integrity import station_key


def test_hashes_are_salted_and_verify():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("correct horse", a) and not verify_password("wrong horse!", a)
    assert not verify_password("x", "garbage") and not verify_password("x", "")
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


@pytest.mark.parametrize("role, action, ok", [
    (Role.OPERATOR, "run", True), (Role.OPERATOR, "review", False), (Role.OPERATOR, "users", False),
    (Role.QC, "review", True), (Role.QC, "override", True), (Role.QC, "train", True), (Role.QC, "model", False),
    (Role.ADMIN, "users", True), (Role.ADMIN, "recipe", True), (Role.ADMIN, "review", True),
])
def test_role_table(role, action, ok):
    assert allowed(Actor("x", role), action) is ok
    if not ok:
        with pytest.raises(PermissionDenied, match=action):
            require(Actor("x", role), action)


@pytest.fixture
def sessions(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'u.db'}")
    yield session_factory(engine)
    engine.dispose()


def test_first_user_must_be_admin_then_only_admins_add(sessions):
    with pytest.raises(PermissionDenied, match="first user must be an admin"), sessions.begin() as s:
        create_user(s, None, "op", Role.OPERATOR, "password1")
    with sessions.begin() as s:
        create_user(s, None, "boss", Role.ADMIN, "password1")
    with pytest.raises(PermissionDenied), sessions.begin() as s:
        create_user(s, None, "mallory", Role.ADMIN, "password1")
    with pytest.raises(PermissionDenied), sessions.begin() as s:
        create_user(s, STATION_OPERATOR, "mallory", Role.ADMIN, "password1")
    boss = sign_in(sessions, "boss", "password1")
    with sessions.begin() as s:
        create_user(s, boss, "anna", Role.QC, "password2")
    who = sign_in(sessions, "anna", "password2")
    assert (who.name, who.role) == ("anna", Role.QC)
    with sessions() as s:
        actions = [e.action for e in AuditRepo.list(s, limit=50)]
        assert "user.add" in actions and "login" in actions
        assert AuditRepo.verify(s).ok


def test_lockout_after_repeated_failures(sessions):
    with sessions.begin() as s:
        create_user(s, None, "boss", Role.ADMIN, "password1")
    for _ in range(5):
        with pytest.raises(PermissionDenied, match="wrong user name or password"):
            sign_in(sessions, "boss", "nope-nope")
    with pytest.raises(PermissionDenied, match="locked"):
        sign_in(sessions, "boss", "password1")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert sign_in(sessions, "boss", "password1", now=later).role == Role.ADMIN
    with pytest.raises(PermissionDenied, match="wrong user name or password"):
        sign_in(sessions, "nobody", "password1")


def test_cli_model_add_needs_an_admin_once_users_exist(tmp_path):
    db = f"sqlite:///{tmp_path / 'a.db'}"
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not really a model, but a file to trust")
    env = dict(os.environ, INSPECTOR_NEW_PASSWORD="password1")
    env.pop("INSPECTOR_PASSWORD", None)

    def cli(*args, **extra):
        return subprocess.run([sys.executable, "-m", "inspector.cli", *args], capture_output=True, text=True,
                              env={**env, **extra}, timeout=60, stdin=subprocess.DEVNULL)

    assert cli("user", "add", "boss", "--role", "admin", "--db", db).returncode == 0
    r = cli("model", "add", str(model), "--db", db)
    assert r.returncode == 2 and "needs a signed-in user" in r.stderr
    r = cli("model", "add", str(model), "--db", db, "--user", "boss", INSPECTOR_PASSWORD="bad-password")
    assert r.returncode == 2 and "wrong user name or password" in r.stderr
    r = cli("model", "add", str(model), "--db", db, "--user", "boss", INSPECTOR_PASSWORD="password1")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("action, words", [("recipe", "olga (operator) may not change a recipe or product: it needs "
                                                      "the qc role or higher."),
                                           ("review", "olga (operator) may not review: it needs the qc role")])
def test_a_refusal_reads_as_a_sentence(action, words):
    """Issue 26: the product editor's refusal read "olga (operator) may not recipe"."""
    from inspector.core.auth import require

    with pytest.raises(PermissionDenied) as e:
        require(Actor("olga", Role.OPERATOR), action)
    assert str(e.value).startswith(words)


def _station_with_boss(sessions):
    from db.accounts import create_user, sign_in

    with sessions.begin() as s:
        create_user(s, None, "boss", Role.ADMIN, "password1")
    boss = sign_in(sessions, "boss", "password1")
    with sessions.begin() as s:
        create_user(s, boss, "otto", Role.OPERATOR, "password2")
    return boss


@pytest.mark.parametrize("forged", [
    lambda boss: Actor("boss", Role.ADMIN),  # a name and a role, as any code could build them
    lambda boss: SignedIn("boss", Role.ADMIN, boss.expires_at, "00.00"),  # a token not made by the sign-in
    lambda boss: SignedIn("otto", Role.ADMIN, boss.expires_at, boss.token),  # boss's token under another name
    lambda boss: issue(b"k" * 32, Actor("boss", Role.ADMIN)),  # signed with another key
    lambda boss: SignedIn("boss", Role.ADMIN, boss.expires_at + dt.timedelta(days=30), boss.token),  # prolonged
])
def test_protected_writes_refuse_a_forged_actor(sessions, forged):
    """Issue 24: the repositories take a signed-in session, not a name: no password reset, role, trust, override
    or promotion 'as boss' without boss's password."""
    from db import PromotionRepo, TrustRepo, UserRepo

    boss = _station_with_boss(sessions)
    who = forged(boss)
    calls = [lambda s: UserRepo.set_password(s, who, "boss", "scrypt$mine"),
             lambda s: UserRepo.set_role(s, who, "otto", "admin"),
             lambda s: UserRepo.add(s, who, "mallory", "admin", "scrypt$x"),
             lambda s: TrustRepo.add(s, who, "model", "12" * 32, "evil.onnx"),
             lambda s: PromotionRepo.record(s, who, "cell-1", "promote", "12" * 32, "/m", "m", "why", {"12" * 32: ""})]
    for call in calls:
        with sessions.begin() as s, pytest.raises(PermissionDenied, match="not signed in|sign in again"):
            call(s)
    with sessions.begin() as s:  # the real session does it
        assert UserRepo.set_role(s, boss, "otto", "qc").role == "qc"


def test_an_expired_session_is_refused(sessions):
    from db import TrustRepo
    from db.accounts import sign_in

    _station_with_boss(sessions)
    boss = sign_in(sessions, "boss", "password1")
    assert session_problem(station_key(), boss) is None
    later = boss.expires_at + dt.timedelta(seconds=1)
    assert "expired" in session_problem(station_key(), boss, now=later)
    old = issue(station_key(), Actor("boss", Role.ADMIN), now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(
        seconds=SESSION_S + 5))
    with sessions.begin() as s, pytest.raises(PermissionDenied, match="expired"):
        TrustRepo.add(s, old, "model", "12" * 32, "evil.onnx")


def _otto(sessions):
    """boss (admin) and otto (operator), each signed in; otto's own password change is a protected write."""
    boss = _station_with_boss(sessions)
    return boss, sign_in(sessions, "otto", "password2")


def _refused(sessions, actor, call) -> None:
    with sessions.begin() as s, pytest.raises(PermissionDenied, match="was ended .* sign in again"):
        call(s, actor)


def _own_password(s, who):
    from db import UserRepo

    return UserRepo.set_password(s, who, who.name, hash_password("password-new-1"))


def test_a_session_ends_at_its_sign_out(sessions):
    """Issue 24: sign-out revoked nothing before; a token kept from a signed-in window still worked for 12 h."""
    from db import TrustRepo, UserRepo

    boss, _ = _otto(sessions)
    kept = sign_in(sessions, "boss", "password1")  # a second session of boss (another window)
    with sessions.begin() as s:
        TrustRepo.add(s, boss, "model", "12" * 32, "a.onnx")
        assert UserRepo.sign_out(s, boss)
    for who in (boss, kept):
        _refused(sessions, who, lambda s, w: TrustRepo.add(s, w, "model", "34" * 32, "b.onnx"))
    again = sign_in(sessions, "boss", "password1")
    with sessions.begin() as s:
        assert not UserRepo.sign_out(s, boss)  # ended already: nothing more to write
        TrustRepo.add(s, again, "model", "34" * 32, "b.onnx")  # a new sign-in
        assert [e.action for e in AuditRepo.list(s)].count("user.signout") == 1


def test_a_password_change_ends_the_users_sessions(sessions):
    from db import UserRepo

    boss, otto = _otto(sessions)
    with sessions.begin() as s:  # an admin resets otto's password: otto's session (perhaps a thief's) ends
        UserRepo.set_password(s, boss, "otto", hash_password("password-by-admin"))
    _refused(sessions, otto, _own_password)
    otto = sign_in(sessions, "otto", "password-by-admin")
    with sessions.begin() as s:  # otto changes their own: that ends their own session too
        _own_password(s, otto)
    _refused(sessions, otto, _own_password)
    with sessions.begin() as s:  # boss's sessions are boss's
        UserRepo.set_role(s, boss, "otto", "qc")


def test_a_role_change_ends_the_users_sessions(sessions):
    from db import UserRepo

    boss, otto = _otto(sessions)
    with sessions.begin() as s:
        UserRepo.set_role(s, boss, "otto", "qc")
    _refused(sessions, otto, _own_password)
    with sessions.begin() as s:
        _own_password(s, sign_in(sessions, "otto", "password2"))


def test_an_admin_revokes_a_users_sessions_from_the_command_line(sessions, tmp_path, monkeypatch, capsys):
    from db import UserRepo
    from inspector.cli import main

    boss, otto = _otto(sessions)
    with sessions.begin() as s, pytest.raises(PermissionDenied):  # an operator ends nobody else's sessions
        UserRepo.revoke(s, otto, "boss")
    url = f"sqlite:///{tmp_path / 'u.db'}"
    monkeypatch.setenv("INSPECTOR_PASSWORD", "password2")
    assert main(["user", "revoke", "boss", "--db", url, "--user", "otto"]) != 0
    monkeypatch.setenv("INSPECTOR_PASSWORD", "password1")
    assert main(["user", "revoke", "otto", "--db", url, "--user", "boss"]) == 0
    assert "every session of otto is ended" in capsys.readouterr().out
    _refused(sessions, otto, _own_password)
    with sessions.begin() as s:
        UserRepo.set_role(s, boss, "otto", "qc")  # boss's own session still counts
        assert any(e.action == "user.revoke" and e.target == "user:otto" and e.actor == "boss"
                   for e in AuditRepo.list(s))

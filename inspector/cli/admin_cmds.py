"""Admin commands: ``inspector user add|list`` and ``inspector model add``.

While no user exists (a fresh install), whoever has a shell on the station acts as its
administrator, as the audit log records; once users exist, these commands need ``--user`` and that
user's password (asked for, or read from INSPECTOR_PASSWORD for scripts).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from inspector.auth import Actor, Role, require
from inspector.errors import ConfigError, PermissionDenied

FRESH_INSTALL_ACTOR = Actor("local-admin (no users yet)", Role.ADMIN)


def _password(prompt: str) -> str:
    env = os.environ.get("INSPECTOR_PASSWORD")
    if env:
        return env
    if not sys.stdin.isatty():
        raise PermissionDenied("a password is needed: run in a terminal or set INSPECTOR_PASSWORD.")
    return getpass.getpass(prompt)


def _sessions(a: argparse.Namespace):
    from inspector.cli.station import default_db_url, open_db

    return open_db(getattr(a, "db", None) or default_db_url())


def signed_in(a: argparse.Namespace, sessions, action: str) -> Actor:
    """The actor for a protected command: a signed-in user, or the local admin on a fresh install."""
    from db.accounts import has_users, sign_in

    with sessions.begin() as s:
        if not has_users(s):
            return require(FRESH_INSTALL_ACTOR, action)
    if not getattr(a, "user", None):
        raise PermissionDenied(f"'{action}' needs a signed-in user: add --user NAME.")
    password = _password(f"password for {a.user}: ")
    return require(sign_in(sessions, a.user, password), action)


def _user_add(a: argparse.Namespace) -> int:
    from db.accounts import create_user, has_users

    engine, sessions = _sessions(a)
    try:
        with sessions.begin() as s:
            first = not has_users(s)
        actor = None if first else signed_in(a, sessions, "users")
        password = os.environ.get("INSPECTOR_NEW_PASSWORD") or _password(f"new password for {a.name}: ")
        try:
            from db.writes import write

            u = write(sessions, lambda s: create_user(s, actor, a.name, a.role, password), f"Adding the user {a.name}")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        print(f"user {u.name} added with role {u.role}")
        return 0
    finally:
        engine.dispose()


def _user_list(a: argparse.Namespace) -> int:
    from db import UserRepo

    engine, sessions = _sessions(a)
    try:
        with sessions() as s:
            for u in UserRepo.list(s):
                print(f"{u.name:<20} {u.role:<9} {'locked' if u.locked() else ''}")
        return 0
    finally:
        engine.dispose()


def _model_add(a: argparse.Namespace) -> int:
    from db import AuditRepo
    from inspector.registry import ModelRegistry

    engine, sessions = _sessions(a)
    try:
        actor = signed_in(a, sessions, "model")
        h = ModelRegistry().add(Path(a.file), actor=actor.name)
        with sessions.begin() as s:
            AuditRepo.append(s, actor=actor.name, action="model.trust", target=f"model:{h}",
                             detail={"file": str(Path(a.file).resolve())})
        print(f"trusted {a.file} (sha256 {h})")
        return 0
    finally:
        engine.dispose()


def register(sub) -> None:
    u = sub.add_parser("user", help="local users and roles")
    usub = u.add_subparsers(dest="user_command", required=True)
    ua = usub.add_parser("add", help="add a user (the first one must be an admin)")
    ua.add_argument("name")
    ua.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
    ua.add_argument("--db", default=None)
    ua.add_argument("--user", default=None, help="the admin doing this (needed once users exist)")
    ua.set_defaults(func=_user_add)
    ul = usub.add_parser("list", help="list users")
    ul.add_argument("--db", default=None)
    ul.set_defaults(func=_user_list)

    m = sub.add_parser("model", help="trusted model files")
    msub = m.add_subparsers(dest="model_command", required=True)
    ma = msub.add_parser("add", help="trust a model file: its SHA-256 goes into the registry (admin)")
    ma.add_argument("file")
    ma.add_argument("--db", default=None, help="database holding the users and the audit log")
    ma.add_argument("--user", default=None, help="admin user (needed once users exist)")
    ma.set_defaults(func=_model_add)

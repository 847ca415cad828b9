"""Signing in on the command line: the password from the environment or the terminal, the station's
database, and the actor a protected command acts as."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from inspector.core.auth import FRESH_INSTALL, Actor, require
from inspector.core.errors import PermissionDenied


def ask_secret(prompt: str, env: str) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise PermissionDenied(f"{prompt.rstrip(': ')} is needed: run in a terminal or set {env}.")
    return getpass.getpass(prompt)


def ask_password(prompt: str) -> str:
    return ask_secret(prompt, "INSPECTOR_PASSWORD")


def open_sessions(a: argparse.Namespace):
    from station import default_db_url, open_db

    return open_db(getattr(a, "db", None) or default_db_url())


def signed_in(a: argparse.Namespace, sessions, action: str) -> Actor:
    """The actor for a protected command: a signed-in user, or the local admin while the station has no users."""
    from db.accounts import has_users, sign_in

    with sessions.begin() as s:
        if not has_users(s):
            return require(FRESH_INSTALL, action)
    if not getattr(a, "user", None):
        raise PermissionDenied(f"'{action}' needs a signed-in user with the {role(action)} role: add --user NAME.")
    password = ask_password(f"password for {a.user}: ")
    return require(sign_in(sessions, a.user, password), action)


def role(action: str) -> str:
    from inspector.core.auth import ACTIONS

    return ACTIONS[action].value


def db_user(p: argparse.ArgumentParser, who: str) -> None:
    p.add_argument("--db", default=None, help="the station's database (default: sqlite in the user's data folder)")
    p.add_argument("--user", default=None, help=f"the signed-in {who} doing this (needed once users exist)")

"""Passwords outside ``config.toml``, and never in a log or on stderr.

A password comes from the environment (``INSPECTOR_DB_PASSWORD``, ``INSPECTOR_MQTT_PASSWORD``,
``INSPECTOR_OPCUA_PASSWORD``) or from ``secrets.toml`` in the data folder (``db_password``, ``mqtt_password``,
``opcua_password``; readable by its owner only, else refused). One still written in ``config.toml`` is used,
with a warning to move it. Every password so read, and the password part of any ``scheme://user:pw@host``,
is masked by ``redact`` (the command line's log formatters and its error line call it).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from inspector.core.errors import ConfigError

log = logging.getLogger(__name__)

SECRETS_FILE = "secrets.toml"
#: secret name -> (environment variable, where it goes in the configuration)
SLOTS = {
    "db_password": ("INSPECTOR_DB_PASSWORD", ("storage", "db_url")),
    "mqtt_password": ("INSPECTOR_MQTT_PASSWORD", ("line", "mqtt", "password")),
    "opcua_password": ("INSPECTOR_OPCUA_PASSWORD", ("line", "opcua", "password")),
}
_known: set[str] = set()
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")


def remember(secret: str) -> None:
    """Mask ``secret`` wherever ``redact`` sees it from now on."""
    if secret and len(secret) >= 3:
        _known.add(secret)


def redact(text: str) -> str:
    """``text`` with URL passwords and every remembered secret replaced by ``***``."""
    text = _URL_PASSWORD.sub(r"\1***@", str(text))
    for s in sorted(_known, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def secrets_file(home: Path) -> Path:
    return home / SECRETS_FILE


def read_secrets(home: Path) -> dict[str, str]:
    """The secrets file in ``home`` ({} when there is none); ConfigError when others may read it or it is bad."""
    path = secrets_file(home)
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    if sys.platform != "win32" and st.st_mode & 0o077:
        raise ConfigError(f"{path} may be read by other accounts (mode {st.st_mode & 0o777:o}): "
                          f"run 'chmod 600 {path}' first.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a valid secrets file ({e}).") from None
    unknown = set(data) - set(SLOTS)
    if unknown or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path}: expected only text values for {', '.join(SLOTS)}; got {sorted(data)}.")
    return dict(data)


def _slot(data: dict[str, Any], where: tuple[str, ...]) -> dict[str, Any] | None:
    for key in where[:-1]:
        data = data.get(key) if isinstance(data.get(key), dict) else None  # type: ignore[assignment]
        if data is None:
            return None
    return data


def _url_password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` for its user (a URL without a user is returned as it is)."""
    u = urlsplit(url)
    if not u.username:
        return url
    host = u.netloc.rsplit("@", 1)[1]
    return u._replace(netloc=f"{quote(u.username, safe='')}:{quote(password, safe='')}@{host}").geturl()


def url_with_secret(url: str) -> str:
    """A database URL whose user has no password, given one from ``INSPECTOR_DB_PASSWORD`` or the secrets file."""
    from inspector.core.home import data_home

    try:
        u = urlsplit(url)
    except ValueError:
        return url
    if not u.username or u.password:
        if u.password:
            remember(u.password)
        return url
    value = os.environ.get(SLOTS["db_password"][0]) or read_secrets(data_home()).get("db_password")
    if not value:
        return url
    remember(value)
    return with_password(url, value)


def apply_secrets(data: dict[str, Any], where: str, home: Path) -> dict[str, Any]:
    """Put the passwords from the environment or the secrets file into a configuration read from ``where``;
    warn for each one found in the file itself. Every password is remembered for ``redact``."""
    stored = None
    for name, (env, path) in SLOTS.items():
        holder = _slot(data, path)
        if holder is None:
            continue
        key = path[-1]
        given = holder.get(key)
        in_file = (_url_password(given) if key == "db_url" else given) if isinstance(given, str) else ""
        if in_file:
            remember(in_file)
            log.warning("%s holds a password (%s): move it to the environment (%s) or to %s, readable by this "
                        "account only", where, name, env, secrets_file(home))
        value = os.environ.get(env)
        if value is None:
            stored = read_secrets(home) if stored is None else stored
            value = stored.get(name)
        if not value:
            continue
        remember(value)
        if key == "db_url":
            if isinstance(given, str) and "://" in given:
                holder[key] = with_password(given, value)
        else:
            holder[key] = value
    return data

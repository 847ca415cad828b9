"""Each database's own identity (``database_info.db_id``), which names its image folder; a copy gets its own.

A copied SQLite file or a ``createdb -T`` copy carries the original's ``db_id``. Alone, both would write the
same image folder with the same run numbers, and the crash clean-up of one would delete the other's pictures.
So the identity records where it lives (``db_home``): for an SQLite file its path and its file number (device
and inode), for PostgreSQL the database's name, its creation marker (the database's OID, new in every copy)
and the server's system identifier. When these no longer match, the database was copied (or restored from a
backup): it gets a new ``db_id`` (the old one kept as ``copied_from``), so its images go to a folder of its own.

A file moved or renamed keeps its inode and its identity (its new path is recorded). Where the file system has
no inode numbers (0), the path alone decides.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from db.schema import DatabaseInfo

log = logging.getLogger(__name__)


def database_id(session: Session) -> str:
    """This database's identity; a new one (and its home recorded) when the database is a copy of another.

    Call it inside a write transaction (``db.writes.write``)."""
    here = _home(session)
    found = session.get(DatabaseInfo, "db_id", with_for_update=True)
    if found is None:  # a database made by ``create_all`` in a test, not by the migrations
        found = DatabaseInfo(key="db_id", value=uuid.uuid4().hex)
        session.add(found)
    if here is None:
        session.flush()
        return found.value
    home = session.get(DatabaseInfo, "db_home", with_for_update=True)
    if home is None:  # the first start since identities record their home: this is the database it names
        session.add(DatabaseInfo(key="db_home", value=json.dumps(here, sort_keys=True)))
    else:
        try:
            was = json.loads(home.value)
        except ValueError:
            was = {}
        if not same_database(was, here):
            old = found.value
            found.value = uuid.uuid4().hex
            _set(session, "copied_from", old)
            log.warning("this database is a copy of database %s (%s, now %s): it gets its own identity %s and "
                        "its own image folder", old, _where(was), _where(here), found.value)
        if was != here:
            home.value = json.dumps(here, sort_keys=True)
    session.flush()
    return found.value


def same_database(was: dict[str, Any], here: dict[str, Any]) -> bool:
    """Whether the home an identity recorded and where the database is now are one database."""
    if was.get("kind") != here.get("kind"):
        return False
    if here["kind"] == "sqlite":
        if here.get("ino") and was.get("ino"):  # moved or renamed: the same inode (on the same disk or path)
            return here["ino"] == was["ino"] and (here.get("dev") == was.get("dev") or here["path"] == was.get("path"))
        return here["path"] == was.get("path")
    return all(here.get(k) == was.get(k) for k in ("name", "oid", "system") if here.get(k) is not None)


def _set(session: Session, key: str, value: str) -> None:
    row = session.get(DatabaseInfo, key)
    if row is None:
        session.add(DatabaseInfo(key=key, value=value))
    else:
        row.value = value


def _where(home: dict[str, Any]) -> str:
    if home.get("kind") == "sqlite":
        return f"file {home.get('path')}"
    return f"database {home.get('name')} (oid {home.get('oid')})"


def _home(session: Session) -> dict[str, Any] | None:
    """Where this database lives now, or None where that cannot be told (in memory, another backend)."""
    bind = session.get_bind()
    name = bind.dialect.name
    if name == "sqlite":
        rows = session.execute(text("PRAGMA database_list")).all()
        path = next((r[2] for r in rows if r[1] == "main"), "")
        if not path:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return {"kind": "sqlite", "path": os.path.realpath(path), "dev": st.st_dev, "ino": st.st_ino}
    if name == "postgresql":
        db, oid = session.execute(text("SELECT current_database(), (SELECT oid FROM pg_database "
                                       "WHERE datname = current_database())")).one()
        system = None
        try:
            with session.begin_nested():
                system = str(session.execute(text("SELECT system_identifier FROM pg_control_system()")).scalar())
        except SQLAlchemyError:  # not allowed for this role: the name and the OID decide
            system = None
        return {"kind": "postgresql", "name": db, "oid": int(oid), "system": system}
    return None

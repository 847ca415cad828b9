"""Alembic, run from code: the scripts live in ``db/migrations`` inside the package, found from ``__file__``."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, inspect

from db.failures import free_mb, mask_url, sqlite_path
from inspector.core.errors import StorageError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    """An alembic Config that needs no alembic.ini on disk."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "db/migrations has no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(engine: Engine, url: str) -> Path | None:
    """Create a fresh database at head, or back up an older SQLite file and upgrade it.

    Returns the backup's path when one was made. Raises StorageError for a file that is not an
    Inspector database or was written by a newer Inspector.
    """
    cfg = alembic_config(url)
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        tables = [t for t in inspect(conn).get_table_names() if not t.startswith("sqlite_")]
    if current == head:
        return None
    where = mask_url(url)
    if current is None and tables:
        raise StorageError(f"The database {where} holds tables ({', '.join(sorted(tables)[:3])}, ...) but no "
                           "Inspector schema version; choose another file or an empty database.")
    if current is not None:
        try:
            script.get_revision(current)
        except CommandError as e:
            raise StorageError(f"The database {where} was written by a newer Inspector (schema {current}); "
                               "install that version or open another database.") from e
    backup = None
    path = sqlite_path(url)
    if current is not None and path is not None:
        backup = backup_sqlite(engine, path, current)
    elif current is not None:
        log.warning("upgrading %s from %s to %s without a backup: back it up with the server's own tools",
                    where, current, head)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    log.info("database %s: schema %s -> %s", where, current or "(new)", head)
    return backup


def backup_sqlite(engine: Engine, path: Path, revision: str) -> Path:
    """Copy the database (WAL content included) to ``<file>.bak-<revision>`` with SQLite's backup API."""
    target = path.with_name(f"{path.name}.bak-{revision}")
    tmp = target.with_name(target.name + ".part")
    raw = engine.raw_connection()
    try:
        dst = sqlite3.connect(tmp)
        try:
            raw.driver_connection.backup(dst)  # type: ignore[union-attr]
        finally:
            dst.close()
        os.replace(tmp, target)
    except (OSError, sqlite3.Error) as e:
        tmp.unlink(missing_ok=True)
        free = free_mb(path)
        room = f" ({free:.1f} MB free)" if free is not None else ""
        raise StorageError(f"Cannot back up the database {path} to {target} before upgrading it ({e}){room}; "
                           "free some space or make the folder writable, then start again.") from e
    finally:
        raw.close()
    log.info("backed up %s to %s before upgrading it", path, target)
    return target

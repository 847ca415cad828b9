"""Alembic environment for Inspector. ``db.migrate`` passes a connection in ``config.attributes``;
the alembic command line (``alembic -c db/migrations/alembic.ini ...``) builds one from the URL."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from db.schema import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: Any) -> None:
    # render_as_batch: SQLite cannot ALTER most things, so alembic rebuilds the table instead
    context.configure(target_metadata=target_metadata, render_as_batch=True, compare_type=True, **kwargs)


def run_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
               dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from db.engine import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///inspector-dev.db")
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

"""Fail-safe storage: the database's own identity, the process that owns each run, a unique key per inspection.

- ``database_info``: one row per key; ``db_id`` (a uuid made once, here) names this database's image folder, so
  that two databases never share one and crash clean-up touches only its own files.
- ``runs.host``, ``runs.pid``, ``runs.process_started``: a run is closed as interrupted only when the process that
  owns it is provably gone.
- ``inspections.uid``: a unique key made when the part was inspected, so that a forward retried after a lost commit
  acknowledgement (store-and-forward) never doubles a record.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    info = op.create_table('database_info',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_database_info'))
    )
    op.bulk_insert(info, [{"key": "db_id", "value": uuid.uuid4().hex}])
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('pid', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('process_started', sa.Float(), nullable=True))
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uid', sa.String(length=32), nullable=True))
    op.create_index('ix_inspections_uid', 'inspections', ['uid'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_inspections_uid', table_name='inspections')
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_column('uid')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('process_started')
        batch_op.drop_column('pid')
        batch_op.drop_column('host')
    op.drop_table('database_info')

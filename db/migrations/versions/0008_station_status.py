"""Plant view (issue 30): ``station_status``, one row per station, overwritten by the station every few seconds
with its outbox backlog, run and model. It is not part of the record (not signed): the plant view shows how old
each report is, since a station cut off from the server cannot update its row.

Revision ID: 0008_station_status
Revises: 0007_plant
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_station_status'
down_revision: str | None = '0007_plant'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'station_status',
        sa.Column('station', sa.String(length=200), nullable=False),
        sa.Column('backlog', sa.Integer(), nullable=False),
        sa.Column('peak', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('model', sa.String(length=200), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('reported_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('station', name=op.f('pk_station_status')),
    )


def downgrade() -> None:
    op.drop_table('station_status')

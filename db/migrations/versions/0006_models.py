"""Champion and challenger (issue 15): promotions and rollbacks of a station's model, and shadow verdicts.

- ``model_promotions``: append-only, sealed; the latest row of a station names the model that judges its parts
  (the configuration's model until the first row).
- ``shadow_results``: a challenger's verdict on a share of live parts beside the active model's; never a part's
  verdict.

Revision ID: 0006
Revises: 0004 (re-pointed to 0005 when merged after it; nothing here depends on 0005)
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VERDICTS = "('PASS', 'FAIL', 'REVIEW', 'NOT_INSPECTED')"


def upgrade() -> None:
    op.create_table(
        'model_promotions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('station', sa.String(length=200), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('previous_sha256', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.CheckConstraint("action IN ('promote', 'rollback')", name=op.f('ck_model_promotions_action')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_model_promotions')),
    )
    op.create_index('ix_model_promotions_station', 'model_promotions', ['station', 'id'], unique=False)
    op.create_table(
        'shadow_results',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('station', sa.String(length=200), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('inspection_id', sa.Integer(), nullable=True),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('model_sha256', sa.String(length=64), nullable=False),
        sa.Column('verdict', sa.String(length=16), nullable=False),
        sa.Column('active_sha256', sa.String(length=64), nullable=False),
        sa.Column('active_verdict', sa.String(length=16), nullable=False),
        sa.Column('reasons', sa.Text(), nullable=False),
        sa.Column('latency_ms', sa.Float(), nullable=False),
        sa.CheckConstraint(f"verdict IN {_VERDICTS}", name=op.f('ck_shadow_results_verdict')),
        sa.CheckConstraint(f"active_verdict IN {_VERDICTS}", name=op.f('ck_shadow_results_active_verdict')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shadow_results')),
    )
    op.create_index('ix_shadow_results_station', 'shadow_results', ['station', 'model_sha256', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_shadow_results_station', table_name='shadow_results')
    op.drop_table('shadow_results')
    op.drop_index('ix_model_promotions_station', table_name='model_promotions')
    op.drop_table('model_promotions')

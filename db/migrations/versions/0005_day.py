"""The plant's day: product, lot, work order and shift on each inspection, and the alarms table.

- ``inspections.product``, ``lot``, ``work_order``, ``shift`` (NULL on rows written before): set from the
  live screen (or the line) and stamped on each part; ``shift`` is ``DATE/NAME``, the date the shift started.
  Indexed with (created_at, id) for the review filters and reports.
- ``alarms``: each alarm a rule raised, and who acknowledged it when (sealed; both are audit entries too).

Seals: an inspection's seal covers its product, lot, work order and shift only when one of them is set, so
the seals of older rows hold as they are (``db.seal.inspection_fields``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DAY = (('product', 100), ('lot', 100), ('work_order', 100), ('shift', 40))
_INDEXED = ('product', 'lot', 'shift')


def upgrade() -> None:
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        for name, size in _DAY:
            batch_op.add_column(sa.Column(name, sa.String(length=size), nullable=True))
    for name in _INDEXED:
        op.create_index(f'ix_inspections_{name}_created', 'inspections', [name, 'created_at', 'id'], unique=False)
    op.create_table(
        'alarms',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('station', sa.String(length=200), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('rule', sa.String(length=32), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('raised_at', sa.DateTime(), nullable=False),
        sa.Column('acked_by', sa.String(length=200), nullable=True),
        sa.Column('acked_at', sa.DateTime(), nullable=True),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.CheckConstraint("rule IN ('fail_streak', 'low_yield', 'not_inspected')", name=op.f('ck_alarms_rule')),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_alarms_run_id_runs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alarms')),
    )
    op.create_index('ix_alarms_station_raised', 'alarms', ['station', 'raised_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alarms_station_raised', table_name='alarms')
    op.drop_table('alarms')
    for name in _INDEXED:
        op.drop_index(f'ix_inspections_{name}_created', table_name='inspections')
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        for name, _ in reversed(_DAY):
            batch_op.drop_column(name)

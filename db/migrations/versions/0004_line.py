"""On the line: the PLC's part id and the trigger's other keys kept with each triggered inspection.

- ``inspections.part_id``: the trigger's ``part_id`` (NULL for a free-running part); unique within a run, so a
  PLC that triggers the same part again is answered with the same record, never a second one.
- ``inspections.trigger``: the trigger message's other keys and the protocol it came by (JSON), NULL without one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('part_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('trigger', sa.Text(), nullable=True))
    op.create_index('ix_inspections_run_part', 'inspections', ['run_id', 'part_id'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_inspections_run_part', table_name='inspections')
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_column('trigger')
        batch_op.drop_column('part_id')

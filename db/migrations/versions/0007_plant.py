"""One plant, many stations (issue 30): each station's Ed25519 public key and the end of its audit chain in
``stations``; on every sealed table the station that signed a row and its signature; on ``audit_log`` the
station whose chain an entry belongs to. Older rows keep their HMAC seals (``signer`` NULL) and stay checkable
with the key file that sealed them. Only nullable columns are added: no table is rewritten.

Revision ID: 0007_plant
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_plant'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SIGNED = ("inspections", "reviews", "users", "trusted_files", "alarms", "model_promotions")


def upgrade() -> None:
    op.create_table(
        'stations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('public_key', sa.String(length=64), nullable=False),
        sa.Column('added_by', sa.String(length=200), nullable=False),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.Column('entries', sa.Integer(), nullable=False),
        sa.Column('last_id', sa.Integer(), nullable=False),
        sa.Column('last_hash', sa.String(length=64), nullable=False),
        sa.Column('anchor_sig', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stations')),
        sa.UniqueConstraint('name', name=op.f('uq_stations_name')),
    )
    for table in _SIGNED:
        op.add_column(table, sa.Column('signer', sa.String(length=200), nullable=True))
        op.add_column(table, sa.Column('sig', sa.Text(), nullable=True))
    op.add_column('audit_log', sa.Column('station', sa.String(length=200), nullable=True))
    op.create_index('ix_audit_log_station', 'audit_log', ['station', 'id'], unique=False)
    _alarm_rules(_RULES + ("model_refused",))


_RULES = ("fail_streak", "low_yield", "not_inspected")


def _alarm_rules(rules: tuple[str, ...]) -> None:
    """A station that cannot load a model promoted for it raises a ``model_refused`` alarm: the rule's CHECK."""
    check = f"rule IN ({', '.join(repr(r) for r in rules)})"
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f('ck_alarms_rule'), 'alarms', type_='check')
        op.create_check_constraint(op.f('ck_alarms_rule'), 'alarms', check)
        return
    # SQLite cannot alter a CHECK: the (small) table is copied into one defined with the new rule list
    alarms = sa.Table(
        'alarms', sa.MetaData(),
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('station', sa.String(length=200), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('rule', sa.String(length=32), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('raised_at', sa.DateTime(), nullable=False),
        sa.Column('acked_by', sa.String(length=200), nullable=True),
        sa.Column('acked_at', sa.DateTime(), nullable=True),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.Column('signer', sa.String(length=200), nullable=True),
        sa.Column('sig', sa.Text(), nullable=True),
        sa.CheckConstraint(check, name='ck_alarms_rule'),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name='fk_alarms_run_id_runs'),
        sa.PrimaryKeyConstraint('id', name='pk_alarms'),
        sa.Index('ix_alarms_station_raised', 'station', 'raised_at'),
    )
    with op.batch_alter_table('alarms', copy_from=alarms, recreate='always'):
        pass


def downgrade() -> None:
    _alarm_rules(_RULES)
    op.drop_index('ix_audit_log_station', table_name='audit_log')
    with op.batch_alter_table('audit_log') as batch_op:
        batch_op.drop_column('station')
    for table in _SIGNED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column('sig')
            batch_op.drop_column('signer')
    op.drop_table('stations')

"""Trust: trusted model and recipe hashes in the database, the recipe hash of each inspection, recovery
codes, and seals (HMACs with the station's key file) on inspections, reviews, users, trusted files and
the audit anchor. Rows that exist already are sealed here with this data folder's key: they are vouched
for as they stand at the upgrade.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEALED = ("inspections", "reviews", "users", "audit_anchor")


def upgrade() -> None:
    op.create_table(
        'trusted_files',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('added_by', sa.String(length=200), nullable=False),
        sa.Column('added_at', sa.DateTime(), nullable=False),
        sa.Column('mac', sa.String(length=64), nullable=False),
        sa.CheckConstraint("kind IN ('model', 'recipe')", name=op.f('ck_trusted_files_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_trusted_files')),
        sa.UniqueConstraint('kind', 'sha256', name='uq_trusted_files_kind_sha256'),
    )
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipe_sha256', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=False, server_default=''))
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=False, server_default=''))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recovery_hash', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=False, server_default=''))
    with op.batch_alter_table('audit_anchor', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mac', sa.String(length=64), nullable=False, server_default=''))
    _seal_existing_rows()


def _seal_existing_rows() -> None:
    """Seal what an older Inspector wrote (nothing in a new database), so that later changes show."""
    from db import seal
    from inspector.core.integrity import seal as mac
    from inspector.core.integrity import station_key

    conn = op.get_bind()
    meta = sa.MetaData()
    fields = {"inspections": seal.inspection_fields, "reviews": seal.review_fields, "users": seal.user_fields,
              "audit_anchor": seal.anchor_fields}
    key: bytes | None = None
    for name in _SEALED:
        table = sa.Table(name, meta, autoload_with=conn)
        rows = conn.execute(sa.select(table)).fetchall()
        if not rows:
            continue
        key = key or station_key()
        conn.execute(sa.update(table).where(table.c.id == sa.bindparam("rid")).values(mac=sa.bindparam("m")),
                     [{"rid": r.id, "m": mac(key, *fields[name](r))} for r in rows])


def downgrade() -> None:
    for name in ("audit_anchor", "users", "reviews", "inspections"):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_column('mac')
            if name == "users":
                batch_op.drop_column('recovery_hash')
            if name == "inspections":
                batch_op.drop_column('recipe_sha256')
    op.drop_table('trusted_files')

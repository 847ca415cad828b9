"""The initial schema: models, runs, inspections, detections, reviews, the audit trail and users.

Times are naive UTC (db.schema.UTCDateTime). The audit anchor starts with its one row.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_anchor',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.Column('last_id', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_anchor'))
    )
    op.bulk_insert(sa.table("audit_anchor", sa.column("id", sa.Integer), sa.column("entries", sa.Integer),
                            sa.column("last_id", sa.Integer), sa.column("last_hash", sa.String)),
                   [{"id": 1, "entries": 0, "last_id": 0, "last_hash": "0" * 64}])
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('classes', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('sha256', name=op.f('uq_model_versions_sha256'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("role IN ('operator', 'qc', 'admin')", name=op.f('ck_users_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('recipe', sa.Text(), nullable=False),
    sa.Column('recipe_name', sa.String(length=200), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('station', sa.String(length=200), nullable=False),
    sa.Column('mode', sa.String(length=50), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('end_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['model_id'], ['model_versions.id'], name=op.f('fk_runs_model_id_model_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_started_at'), ['started_at'], unique=False)

    op.create_table('inspections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('reasons', sa.Text(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('image_path', sa.Text(), nullable=True),
    sa.Column('frame_name', sa.Text(), nullable=False),
    sa.Column('model_sha256', sa.String(length=64), nullable=False),
    sa.CheckConstraint("verdict IN ('PASS', 'FAIL', 'REVIEW', 'NOT_INSPECTED')",
                       name=op.f('ck_inspections_verdict')),
    sa.CheckConstraint('latency_ms >= 0', name=op.f('ck_inspections_latency')),
    sa.CheckConstraint('seq >= 0', name=op.f('ck_inspections_seq')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_inspections_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspections'))
    )
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.create_index('ix_inspections_latest',
                              [sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
        batch_op.create_index('ix_inspections_run_created', ['run_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_inspections_verdict_created', ['verdict', 'created_at', 'id'], unique=False)

    op.create_table('detections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inspection_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('cls', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('x1', sa.Float(), nullable=False),
    sa.Column('y1', sa.Float(), nullable=False),
    sa.Column('x2', sa.Float(), nullable=False),
    sa.Column('y2', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id'],
                            name=op.f('fk_detections_inspection_id_inspections')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_detections'))
    )
    with op.batch_alter_table('detections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_detections_inspection_id'), ['inspection_id'], unique=False)
        batch_op.create_index('ix_detections_label', ['label', 'created_at', 'inspection_id'], unique=False)

    op.create_table('reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inspection_id', sa.Integer(), nullable=False),
    sa.Column('inspection_created_at', sa.DateTime(), nullable=False),
    sa.Column('reviewer', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('old_verdict', sa.String(length=16), nullable=False),
    sa.Column('new_verdict', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.CheckConstraint("action IN ('confirm', 'override', 'false_detection', 'missed_defect')",
                       name=op.f('ck_reviews_action')),
    sa.CheckConstraint("new_verdict IN ('PASS', 'FAIL', 'REVIEW', 'NOT_INSPECTED')",
                       name=op.f('ck_reviews_new_verdict')),
    sa.CheckConstraint("old_verdict IN ('PASS', 'FAIL', 'REVIEW', 'NOT_INSPECTED')",
                       name=op.f('ck_reviews_old_verdict')),
    sa.ForeignKeyConstraint(['inspection_id'], ['inspections.id'], name=op.f('fk_reviews_inspection_id_inspections')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews'))
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index('ix_reviews_inspection', ['inspection_id', 'id'], unique=False)
        batch_op.create_index('ix_reviews_created', ['inspection_created_at', 'inspection_id'], unique=False)
        batch_op.create_index('ix_reviews_verdict_created', ['new_verdict', 'inspection_created_at', 'inspection_id'],
                              unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_reviews_verdict_created')
        batch_op.drop_index('ix_reviews_created')
        batch_op.drop_index('ix_reviews_inspection')

    op.drop_table('reviews')
    with op.batch_alter_table('detections', schema=None) as batch_op:
        batch_op.drop_index('ix_detections_label')
        batch_op.drop_index(batch_op.f('ix_detections_inspection_id'))

    op.drop_table('detections')
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_index('ix_inspections_verdict_created')
        batch_op.drop_index('ix_inspections_run_created')
        batch_op.drop_index('ix_inspections_latest')

    op.drop_table('inspections')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_started_at'))
        batch_op.drop_index(batch_op.f('ix_runs_model_id'))

    op.drop_table('runs')
    op.drop_table('users')
    op.drop_table('model_versions')
    op.drop_table('audit_log')
    op.drop_table('audit_anchor')

"""stored markouts and daily analytics rollups

Revision ID: 3e9f6b2d8a17
Revises: 7c41d0a9e2b5
Create Date: 2026-12-04 16:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db


revision: str = '3e9f6b2d8a17'
down_revision: str | None = '7c41d0a9e2b5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Markouts of each fill, written by the analytics job once its last horizon has closed.
    op.create_table('fill_markout',
    sa.Column('fill_id', sa.Uuid(), nullable=False),
    sa.Column('filled_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('markout_1m_usd', sa.Float(), nullable=True),
    sa.Column('markout_5m_usd', sa.Float(), nullable=True),
    sa.Column('markout_30m_usd', sa.Float(), nullable=True),
    sa.Column('computed_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['fill_id'], ['fill.id'], name=op.f('fk_fill_markout_fill_id_fill'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('fill_id', name=op.f('pk_fill_markout'))
    )
    with op.batch_alter_table('fill_markout', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fill_markout_filled_at'), ['filled_at'], unique=False)

    # Daily rollups of the reports' additive measures, and their watermarks.
    op.create_table('analytics_rollup',
    sa.Column('report', sa.String(length=40), nullable=False),
    sa.Column('cube', sa.String(length=120), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    *(sa.Column(f'k{i}', sa.String(length=200), nullable=True) for i in range(4)),
    *(sa.Column(f'm{i}', sa.Float(), nullable=True) for i in range(12)),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_rollup'))
    )
    with op.batch_alter_table('analytics_rollup', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_rollup_report_cube_day', ['report', 'cube', 'day'], unique=False)

    op.create_table('analytics_rollup_state',
    sa.Column('report', sa.String(length=40), nullable=False),
    sa.Column('cube', sa.String(length=120), nullable=False),
    sa.Column('through', sa.Date(), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('report', 'cube', name=op.f('pk_analytics_rollup_state'))
    )


def downgrade() -> None:
    op.drop_table('analytics_rollup_state')
    with op.batch_alter_table('analytics_rollup', schema=None) as batch_op:
        batch_op.drop_index('ix_analytics_rollup_report_cube_day')
    op.drop_table('analytics_rollup')
    with op.batch_alter_table('fill_markout', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fill_markout_filled_at'))
    op.drop_table('fill_markout')

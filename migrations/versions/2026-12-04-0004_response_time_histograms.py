"""daily histograms for exact percentiles (response times)

Revision ID: 8b5d1f3c6e20
Revises: 3e9f6b2d8a17
Create Date: 2026-12-04 17:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '8b5d1f3c6e20'
down_revision: str | None = '3e9f6b2d8a17'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Per day and cube group, the histogram of a report's integer observation (response
    # times in whole ms): distinct values and their counts as little-endian int64 arrays.
    op.create_table('analytics_histogram',
    sa.Column('report', sa.String(length=40), nullable=False),
    sa.Column('cube', sa.String(length=120), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    *(sa.Column(f'k{i}', sa.String(length=200), nullable=True) for i in range(4)),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.Column('obs_values', sa.LargeBinary(), nullable=False),
    sa.Column('obs_counts', sa.LargeBinary(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_histogram'))
    )
    with op.batch_alter_table('analytics_histogram', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_histogram_report_cube_day', ['report', 'cube', 'day'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('analytics_histogram', schema=None) as batch_op:
        batch_op.drop_index('ix_analytics_histogram_report_cube_day')
    op.drop_table('analytics_histogram')

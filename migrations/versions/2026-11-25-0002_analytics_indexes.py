"""indexes for the analytics queries

Revision ID: 7c41d0a9e2b5
Revises: 522d571f225d
Create Date: 2026-11-25 12:00:00.000000

"""
from collections.abc import Sequence

from alembic import op

revision: str = '7c41d0a9e2b5'
down_revision: str | None = '522d571f225d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Each analytics query scans one time window of one log table; these are its range scans.
    op.create_index('ix_dealer_request_created_at', 'dealer_request', ['created_at'], unique=False)
    op.create_index('ix_dealer_quote_received_at', 'dealer_quote', ['received_at'], unique=False)
    op.create_index(
        'ix_fill_counterparty_filled_at', 'fill', ['counterparty', 'filled_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_fill_counterparty_filled_at', table_name='fill')
    op.drop_index('ix_dealer_quote_received_at', table_name='dealer_quote')
    op.drop_index('ix_dealer_request_created_at', table_name='dealer_request')

"""Budget holds: each reservation's money per budget window, with an expiry.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:00:00

A run that never ends (its process died) leaves its holds; the sweeper releases those past
``expires_at``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aimesh.store.tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = aimesh.store.tables.UTCDateTime()


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "budget_holds",
        sa.Column("reservation_id", sa.String(length=32), nullable=False),
        sa.Column("budget_id", sa.String(length=32), nullable=False),
        sa.Column("window_start", UTC, nullable=False),
        sa.Column("nusd", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.String(length=32), nullable=True),
        sa.Column("expires_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reservation_id", "budget_id"),
    )
    op.create_index("ix_budget_holds_expires_at", "budget_holds", ["expires_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_budget_holds_expires_at", table_name="budget_holds")
    op.drop_table("budget_holds")

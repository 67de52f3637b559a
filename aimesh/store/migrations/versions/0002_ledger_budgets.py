"""Model-call ledger and budgets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 01:30:00

The ledger is append-only like the audit log: a trigger refuses every UPDATE.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aimesh.store.tables

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER model_ledger_append_only BEFORE UPDATE ON model_ledger "
        "BEGIN SELECT RAISE(ABORT, 'model_ledger is append-only'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION model_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'model_ledger is append-only'; END $$",
        "CREATE TRIGGER model_ledger_append_only BEFORE UPDATE ON model_ledger "
        "FOR EACH ROW EXECUTE FUNCTION model_ledger_append_only()",
    ],
}
USD = aimesh.store.tables.USD(length=40)
UTC = aimesh.store.tables.UTCDateTime()


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "model_ledger",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=True),
        sa.Column("network_id", sa.String(length=32), nullable=True),
        sa.Column("task_id", sa.String(length=32), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("agent", sa.String(length=40), nullable=True),
        sa.Column("tool", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("model_requested", sa.String(length=100), nullable=False),
        sa.Column("model_used", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("streamed", sa.Boolean(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("cached_tokens", sa.Integer(), nullable=True),
        sa.Column("reasoning_tokens", sa.Integer(), nullable=True),
        sa.Column("cost_usd", USD, nullable=True),
        sa.Column("price_source", sa.String(length=64), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_model_ledger_tenant_at", "model_ledger", ["tenant", "at"])
    op.create_index("ix_model_ledger_task_id", "model_ledger", ["task_id"])
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("limit_usd", USD, nullable=False),
        sa.Column("on_limit", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_budgets_scope", "budgets", ["tenant", "scope", "scope_id", "period"], unique=True
    )
    op.create_table(
        "budget_windows",
        sa.Column("budget_id", sa.String(length=32), nullable=False),
        sa.Column("window_start", UTC, nullable=False),
        sa.Column("spent_nusd", sa.BigInteger(), nullable=False),
        sa.Column("reserved_nusd", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("budget_id", "window_start"),
    )
    for statement in APPEND_ONLY.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS model_ledger_append_only() CASCADE")
    op.drop_table("budget_windows")
    op.drop_index("ix_budgets_scope", table_name="budgets")
    op.drop_table("budgets")
    op.drop_index("ix_model_ledger_task_id", table_name="model_ledger")
    op.drop_index("ix_model_ledger_tenant_at", table_name="model_ledger")
    op.drop_table("model_ledger")

"""Client books: one row per version of a tenant's client book.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:00:00

The rows of a version live in a Parquet file under the data directory; this table holds its
schema, checksum, mapping and the status of its models.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aimesh.store.tables

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = aimesh.store.tables.UTCDateTime()


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "book_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("label", sa.JSON(), nullable=True),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_at", UTC, nullable=True),
        sa.Column("ready_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_book_versions_tenant_version", "book_versions", ["tenant", "version"], unique=True
    )
    op.create_index("ix_book_versions_status", "book_versions", ["status"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_book_versions_status", table_name="book_versions")
    op.drop_index("ix_book_versions_tenant_version", table_name="book_versions")
    op.drop_table("book_versions")

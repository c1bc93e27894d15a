"""Settlement epochs, entitlements and published trees.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.store.types import UInt256, UtcDateTime

__all__ = ["downgrade", "upgrade"]

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "settlement_epochs",
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("from_block", sa.BigInteger(), nullable=False),
        sa.Column("to_block", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("total", UInt256(), nullable=False),
        sa.Column("distributable", UInt256(), nullable=False),
        sa.Column("held_total", UInt256(), nullable=False),
        sa.Column("accounts", sa.BigInteger(), nullable=False),
        sa.Column("usages", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("tree_file", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("computed_at", UtcDateTime(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("published_block", sa.BigInteger(), nullable=True),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token", "epoch"),
    )
    op.create_table(
        "settlement_entitlements",
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("cumulative", UInt256(), nullable=False),
        sa.Column("amount", UInt256(), nullable=False),
        sa.Column("tree_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("token", "epoch", "account"),
    )
    op.create_table(
        "settlement_held",
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("dataset_id", UInt256(), nullable=False),
        sa.Column("contributor", sa.String(length=66), nullable=False),
        sa.Column("amount", UInt256(), nullable=False),
        sa.PrimaryKeyConstraint("token", "epoch", "dataset_id", "contributor"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("settlement_held")
    op.drop_table("settlement_entitlements")
    op.drop_table("settlement_epochs")

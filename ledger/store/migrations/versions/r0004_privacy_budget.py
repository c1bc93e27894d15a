"""Privacy budget reservations and spends per (grant, dataset).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 01:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.store.types import UInt256, UtcDateTime

__all__ = ["downgrade", "upgrade"]

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "privacy_budgets",
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.Column("dataset_id", UInt256(), nullable=False),
        sa.Column("budget_micro", sa.BigInteger(), nullable=False),
        sa.Column("spent_micro", sa.BigInteger(), nullable=False),
        sa.Column("reserved_micro", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("grant_id", "dataset_id"),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("reservation_id", sa.String(length=66), nullable=False),
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.Column("dataset_id", UInt256(), nullable=False),
        sa.Column("amount_micro", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("reservation_id", "grant_id", "dataset_id"),
    )
    with op.batch_alter_table("budget_reservations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_budget_reservations_status"), ["status"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("budget_reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budget_reservations_status"))
    op.drop_table("budget_reservations")
    op.drop_table("privacy_budgets")

"""FAIR metadata documents of registered datasets (by metadata hash).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 01:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.store.types import UInt256, UtcDateTime

__all__ = ["downgrade", "upgrade"]

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "dataset_metadata",
        sa.Column("metadata_hash", sa.String(length=66), nullable=False),
        sa.Column("dataset_id", UInt256(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("keywords", sa.Text(), nullable=False),
        sa.Column("license", sa.String(length=64), nullable=False),
        sa.Column("publisher", sa.String(length=200), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("stored_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("metadata_hash"),
    )
    with op.batch_alter_table("dataset_metadata", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dataset_metadata_dataset_id"), ["dataset_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_dataset_metadata_license"), ["license"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("dataset_metadata", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_metadata_license"))
        batch_op.drop_index(batch_op.f("ix_dataset_metadata_dataset_id"))
    op.drop_table("dataset_metadata")

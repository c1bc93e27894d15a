"""Receipts, receipt batches and their anchors.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 01:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.store.types import UInt256, UtcDateTime

__all__ = ["downgrade", "upgrade"]

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "receipts",
        sa.Column("receipt_hash", sa.String(length=66), nullable=False),
        sa.Column("job_id", sa.String(length=66), nullable=False),
        sa.Column("result_hash", sa.String(length=66), nullable=False),
        sa.Column("executor", sa.String(length=42), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=132), nullable=False),
        sa.Column("batched", sa.Boolean(), nullable=False),
        sa.Column("batch_root", sa.String(length=66), nullable=True),
        sa.Column("batch_proof", sa.Text(), nullable=True),
        sa.Column("stored_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("receipt_hash"),
        sa.UniqueConstraint("job_id"),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipts_result_hash"), ["result_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_receipts_batch_root"), ["batch_root"], unique=False)
        batch_op.create_index(batch_op.f("ix_receipts_stored_at"), ["stored_at"], unique=False)

    op.create_table(
        "receipt_datasets",
        sa.Column("dataset_id", UInt256(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("receipt_hash", sa.String(length=66), nullable=False),
        sa.Column("previous_receipt", sa.String(length=66), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("grant_id", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "position"),
        sa.UniqueConstraint("dataset_id", "receipt_hash"),
    )
    with op.batch_alter_table("receipt_datasets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_receipt_datasets_receipt_hash"), ["receipt_hash"], unique=False
        )

    op.create_table(
        "receipt_batches",
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("executor", sa.String(length=42), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sealed_at", UtcDateTime(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("anchored_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("root"),
    )
    with op.batch_alter_table("receipt_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipt_batches_status"), ["status"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("receipt_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipt_batches_status"))
    op.drop_table("receipt_batches")
    with op.batch_alter_table("receipt_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipt_datasets_receipt_hash"))
    op.drop_table("receipt_datasets")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipts_stored_at"))
        batch_op.drop_index(batch_op.f("ix_receipts_batch_root"))
        batch_op.drop_index(batch_op.f("ix_receipts_result_hash"))
    op.drop_table("receipts")

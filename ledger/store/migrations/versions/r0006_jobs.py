"""Jobs, their steps and the outbox of chain transactions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.store.types import UtcDateTime

__all__ = ["downgrade", "upgrade"]

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "pipeline_jobs",
        sa.Column("job_id", sa.String(length=66), nullable=False),
        sa.Column("consumer", sa.String(length=42), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("request_json", sa.Text(), nullable=False),
        sa.Column("batched", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("failed_at_status", sa.String(length=24), nullable=True),
        sa.Column("budgets_json", sa.Text(), nullable=True),
        sa.Column("outcome_json", sa.Text(), nullable=True),
        sa.Column("result_hash", sa.String(length=66), nullable=True),
        sa.Column("result_path", sa.String(length=1000), nullable=True),
        sa.Column("receipt_hash", sa.String(length=66), nullable=True),
        sa.Column("receipt_json", sa.Text(), nullable=True),
        sa.Column("record_tx", sa.String(length=66), nullable=True),
        sa.Column("record_block", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )
    with op.batch_alter_table("pipeline_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pipeline_jobs_consumer"), ["consumer"], unique=False)
        batch_op.create_index(batch_op.f("ix_pipeline_jobs_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_pipeline_jobs_created_at"), ["created_at"], unique=False
        )
    op.create_table(
        "job_outbox",
        sa.Column("job_id", sa.String(length=66), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=66), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "action", "key"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("job_outbox")
    with op.batch_alter_table("pipeline_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pipeline_jobs_created_at"))
        batch_op.drop_index(batch_op.f("ix_pipeline_jobs_status"))
        batch_op.drop_index(batch_op.f("ix_pipeline_jobs_consumer"))
    op.drop_table("pipeline_jobs")

"""Jobs, their steps and the outbox of chain transactions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["downgrade", "upgrade"]

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""


def downgrade() -> None:
    """Revert this revision."""

"""Settlement epochs, entitlements and published trees.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["downgrade", "upgrade"]

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""


def downgrade() -> None:
    """Revert this revision."""

"""What every derived table shares: the position of the event that wrote the row.

`LoggedRow` is the base of append-only tables, one row per event, keyed by the event's natural
key, its position ``(block_number, log_index)`` on the chain. `CreatedRow` is the base of state
tables (datasets, grants, escrows, executors, catalog algorithms), keyed by the entity's own id:
it records the event that created the entity and the last block that changed it. Rolling back
to block ``n`` deletes every row with ``block_number > n`` from both kinds; state rows are then
recomputed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from ledger.store.types import UtcDateTime

__all__ = ["ADDRESS_LENGTH", "HASH_LENGTH", "CreatedRow", "LoggedRow"]

#: ``0x`` + 40 hex digits, EIP-55 checksummed.
ADDRESS_LENGTH = 42
#: ``0x`` + 64 lowercase hex digits.
HASH_LENGTH = 66


class LoggedRow(SQLModel):
    """Position of the event a row of an append-only table comes from."""

    block_number: int = Field(primary_key=True, sa_type=BigInteger, ge=0)
    log_index: int = Field(primary_key=True, ge=0)
    tx_hash: str = Field(max_length=HASH_LENGTH)
    block_time: datetime = Field(sa_type=UtcDateTime)


class CreatedRow(SQLModel):
    """Position of the event that created a state row, and of the latest change to it."""

    block_number: int = Field(sa_type=BigInteger, index=True, ge=0)
    log_index: int = Field(ge=0)
    tx_hash: str = Field(max_length=HASH_LENGTH)
    block_time: datetime = Field(sa_type=UtcDateTime)
    updated_block: int = Field(sa_type=BigInteger, ge=0)
    updated_at: datetime = Field(sa_type=UtcDateTime)

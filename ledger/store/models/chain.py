"""The indexer's own tables: every raw event, the cursor, and the hashes of recent blocks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger
from sqlmodel import Field, SQLModel

from ledger.store.models.base import ADDRESS_LENGTH, HASH_LENGTH, LoggedRow
from ledger.store.types import UtcDateTime

__all__ = ["ChainEvent", "IndexCursor", "IndexedBlock"]

_NO_SEQUENCE = {"autoincrement": False}


class ChainEvent(LoggedRow, table=True):
    """One log of a deployed contract, decoded with its ABI; rollback and rebuilds start here.

    `args` maps parameter names to JSON values: integers as numbers (exact, any size), bytes and
    hashes as ``0x`` hex, addresses checksummed, structs as objects.
    """

    __tablename__ = "events"

    block_hash: str = Field(max_length=HASH_LENGTH)
    tx_index: int = Field(ge=0)
    address: str = Field(max_length=ADDRESS_LENGTH)
    contract: str = Field(max_length=64)
    event: str = Field(max_length=128)
    # JSON, not JSONB: stored as sent, which keeps backfills fast; rollbacks read it by block.
    args: dict[str, Any] = Field(sa_type=JSON)


class IndexCursor(SQLModel, table=True):
    """How far the index of one chain reaches: the last indexed block and its hash.

    `deploy_block_hash` identifies the deployment indexed, so another one is never mixed in.
    """

    __tablename__ = "cursor"

    chain_id: int = Field(primary_key=True, sa_type=BigInteger, ge=1, sa_column_kwargs=_NO_SEQUENCE)
    block_number: int = Field(sa_type=BigInteger, ge=0)
    block_hash: str = Field(max_length=HASH_LENGTH)
    deploy_block: int = Field(sa_type=BigInteger, ge=0)
    deploy_block_hash: str = Field(max_length=HASH_LENGTH)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class IndexedBlock(SQLModel, table=True):
    """The hash of a recently indexed block, to find the fork point after a reorg."""

    __tablename__ = "blocks"

    number: int = Field(primary_key=True, sa_type=BigInteger, ge=0, sa_column_kwargs=_NO_SEQUENCE)
    hash: str = Field(max_length=HASH_LENGTH)
    block_time: datetime = Field(sa_type=UtcDateTime)

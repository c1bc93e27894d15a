"""Settlement: computed and published entitlement epochs, cumulative entitlements, held amounts.

Written by ``ledger.settlement``, not by the indexer: an epoch row is stored (status
``computed``) with its entitlements in one transaction before its root is sent, and marked
``published`` once the chain holds it, so a crash between the two never sends twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, String, Text
from sqlmodel import Field, SQLModel

from ledger.store.models.base import ADDRESS_LENGTH, HASH_LENGTH
from ledger.store.types import UInt256, UtcDateTime

__all__ = ["EpochStatus", "SettlementEntitlement", "SettlementEpoch", "SettlementHeld"]

_NO_SEQUENCE = {"autoincrement": False}


class EpochStatus(StrEnum):
    """Where an epoch stands."""

    COMPUTED = "computed"
    PUBLISHED = "published"


class SettlementEpoch(SQLModel, table=True):
    """One token's epoch: the block range it covers, its tree's root and total, and status."""

    __tablename__ = "settlement_epochs"

    token: str = Field(primary_key=True, max_length=ADDRESS_LENGTH)
    epoch: int = Field(primary_key=True, sa_type=BigInteger, ge=1, sa_column_kwargs=_NO_SEQUENCE)
    chain_id: int = Field(sa_type=BigInteger, ge=1)
    from_block: int = Field(sa_type=BigInteger, ge=0)
    to_block: int = Field(sa_type=BigInteger, ge=0)
    root: str = Field(max_length=HASH_LENGTH)
    total: int = Field(sa_type=UInt256)
    distributable: int = Field(sa_type=UInt256)
    held_total: int = Field(sa_type=UInt256)
    accounts: int = Field(sa_type=BigInteger, ge=0)
    usages: int = Field(sa_type=BigInteger, ge=0)
    summary: dict[str, Any] = Field(sa_type=JSON)
    tree_file: str = Field(sa_type=Text)
    status: EpochStatus = Field(default=EpochStatus.COMPUTED, sa_type=String(16))
    computed_at: datetime = Field(sa_type=UtcDateTime)
    tx_hash: str | None = Field(default=None, max_length=HASH_LENGTH)
    published_block: int | None = Field(default=None, sa_type=BigInteger)
    published_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class SettlementEntitlement(SQLModel, table=True):
    """An account's cumulative entitlement in a token after an epoch, and its leaf position."""

    __tablename__ = "settlement_entitlements"

    token: str = Field(primary_key=True, max_length=ADDRESS_LENGTH)
    epoch: int = Field(primary_key=True, sa_type=BigInteger, ge=1, sa_column_kwargs=_NO_SEQUENCE)
    account: str = Field(primary_key=True, max_length=ADDRESS_LENGTH)
    cumulative: int = Field(sa_type=UInt256)
    amount: int = Field(sa_type=UInt256)
    tree_index: int = Field(sa_type=BigInteger, ge=0)


class SettlementHeld(SQLModel, table=True):
    """Base units held for a contributor pseudonym without a payout address, after an epoch."""

    __tablename__ = "settlement_held"

    token: str = Field(primary_key=True, max_length=ADDRESS_LENGTH)
    epoch: int = Field(primary_key=True, sa_type=BigInteger, ge=1, sa_column_kwargs=_NO_SEQUENCE)
    dataset_id: int = Field(primary_key=True, sa_type=UInt256)
    contributor: str = Field(primary_key=True, max_length=HASH_LENGTH)
    amount: int = Field(sa_type=UInt256)

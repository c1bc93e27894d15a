"""RevenueVault: escrows and what became of them, captures, refunds, epochs and claims."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, String
from sqlmodel import Field, SQLModel

from ledger.store.models.base import ADDRESS_LENGTH, HASH_LENGTH, CreatedRow, LoggedRow
from ledger.store.types import UInt256, UtcDateTime

__all__ = [
    "Capture",
    "Claim",
    "EpochRecord",
    "Escrow",
    "EscrowBase",
    "EscrowStatus",
    "Refund",
]


class EscrowStatus(StrEnum):
    """What became of an escrow (``IRevenueVault.EscrowStatus`` without ``None``)."""

    HELD = "held"
    CAPTURED = "captured"
    REFUNDED = "refunded"


class EscrowBase(SQLModel):
    """A job's payment for one grant, and its status."""

    escrow_id: str = Field(primary_key=True, max_length=HASH_LENGTH)
    job_id: str = Field(max_length=HASH_LENGTH, index=True)
    grant_id: str = Field(max_length=HASH_LENGTH, index=True)
    payer: str = Field(max_length=ADDRESS_LENGTH, index=True)
    token: str = Field(max_length=ADDRESS_LENGTH)
    amount: int = Field(sa_type=UInt256)
    refund_after: datetime = Field(sa_type=UtcDateTime)
    status: EscrowStatus = Field(default=EscrowStatus.HELD, sa_type=String(16))
    settled_block: int | None = Field(default=None, sa_type=BigInteger)


class Escrow(EscrowBase, CreatedRow, table=True):
    """Created by ``Escrowed``; its status follows ``Captured`` and ``Refunded``."""

    __tablename__ = "escrows"


class Capture(LoggedRow, table=True):
    """A ``Captured`` event: an escrow became revenue of a dataset (`amount` is net of `fee`)."""

    __tablename__ = "captures"

    escrow_id: str = Field(max_length=HASH_LENGTH, index=True)
    dataset_id: int = Field(sa_type=UInt256, index=True)
    token: str = Field(max_length=ADDRESS_LENGTH)
    amount: int = Field(sa_type=UInt256)
    fee: int = Field(sa_type=UInt256)


class Refund(LoggedRow, table=True):
    """A ``Refunded`` event: an escrow went back to its payer."""

    __tablename__ = "refunds"

    escrow_id: str = Field(max_length=HASH_LENGTH, index=True)
    payer: str = Field(max_length=ADDRESS_LENGTH)
    token: str = Field(max_length=ADDRESS_LENGTH)
    amount: int = Field(sa_type=UInt256)


class EpochRecord(LoggedRow, table=True):
    """An ``EpochPublished`` event: a token's cumulative entitlement root for an epoch."""

    __tablename__ = "epochs"

    token: str = Field(max_length=ADDRESS_LENGTH, index=True)
    epoch: int = Field(sa_type=UInt256)
    root: str = Field(max_length=HASH_LENGTH)
    total: int = Field(sa_type=UInt256)


class Claim(LoggedRow, table=True):
    """A ``Claimed`` event: what an account was paid, and its cumulative entitlement."""

    __tablename__ = "claims"

    token: str = Field(max_length=ADDRESS_LENGTH, index=True)
    account: str = Field(max_length=ADDRESS_LENGTH, index=True)
    amount: int = Field(sa_type=UInt256)
    cumulative: int = Field(sa_type=UInt256)

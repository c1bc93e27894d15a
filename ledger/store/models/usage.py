"""UsageLedger: recorded jobs, each grant's part in them, and anchored receipt batches."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlmodel import Field

from ledger.store.models.base import ADDRESS_LENGTH, HASH_LENGTH, LoggedRow
from ledger.store.types import UInt256

__all__ = ["BatchAnchor", "JobRecord", "UsageRecord"]


class JobRecord(LoggedRow, table=True):
    """A ``JobRecorded`` event: a job and the hash of its receipt."""

    __tablename__ = "jobs"

    job_id: str = Field(max_length=HASH_LENGTH, index=True)
    executor: str = Field(max_length=ADDRESS_LENGTH, index=True)
    consumer: str = Field(max_length=ADDRESS_LENGTH, index=True)
    algorithm_hash: str = Field(max_length=HASH_LENGTH)
    purpose: str = Field(max_length=HASH_LENGTH)
    receipt_hash: str = Field(max_length=HASH_LENGTH)
    grant_count: int = Field(sa_type=UInt256)


class UsageRecord(LoggedRow, table=True):
    """A ``UsageRecorded`` event: one grant's part of a job, with what was paid for it."""

    __tablename__ = "usage_records"

    job_id: str = Field(max_length=HASH_LENGTH, index=True)
    grant_id: str = Field(max_length=HASH_LENGTH, index=True)
    dataset_id: int = Field(sa_type=UInt256, index=True)
    dataset_version: int = Field(sa_type=BigInteger, ge=0)
    uses: int = Field(sa_type=BigInteger, ge=0)
    epsilon: int = Field(sa_type=UInt256)
    token: str = Field(max_length=ADDRESS_LENGTH)
    amount: int = Field(sa_type=UInt256)
    fee: int = Field(sa_type=UInt256)


class BatchAnchor(LoggedRow, table=True):
    """A ``BatchAnchored`` event: the Merkle root of a batch of receipts and who anchored it."""

    __tablename__ = "batch_anchors"

    root: str = Field(max_length=HASH_LENGTH, index=True)
    executor: str = Field(max_length=ADDRESS_LENGTH)
    count: int = Field(sa_type=BigInteger, ge=0)

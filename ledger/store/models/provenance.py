"""Provenance: the executor's signed receipts, each dataset's hash chain of them, and receipt
batches with their anchoring state (written by `ledger.provenance`, not by the indexer)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from ledger.store.models.base import ADDRESS_LENGTH, HASH_LENGTH
from ledger.store.types import UInt256, UtcDateTime

__all__ = ["BatchStatus", "ReceiptBatchRow", "ReceiptDatasetRow", "ReceiptRow"]

#: ``0x`` + 130 hex digits: a 65-byte ECDSA signature.
SIGNATURE_LENGTH = 132


class ReceiptRow(SQLModel, table=True):
    """A signed receipt: its canonical JSON, signature and, once its batch is sealed, the root
    and inclusion proof. One per job."""

    __tablename__ = "receipts"

    receipt_hash: str = Field(primary_key=True, max_length=HASH_LENGTH)
    job_id: str = Field(max_length=HASH_LENGTH, unique=True)
    result_hash: str = Field(max_length=HASH_LENGTH, index=True)
    executor: str = Field(max_length=ADDRESS_LENGTH)
    chain_id: int = Field(sa_type=BigInteger, ge=1)
    # The RFC 8785 bytes as UTF-8 text, exactly what was hashed.
    canonical: str = Field(sa_type=Text)
    signature: str = Field(max_length=SIGNATURE_LENGTH)
    batched: bool = Field(default=False)
    batch_root: str | None = Field(default=None, max_length=HASH_LENGTH, index=True)
    # JSON list of 0x hex siblings (StandardMerkleTree proof of the leaf ("bytes32" hash)).
    batch_proof: str | None = Field(default=None, sa_type=Text)
    stored_at: datetime = Field(sa_type=UtcDateTime, index=True)


class ReceiptDatasetRow(SQLModel, table=True):
    """A receipt's place in one dataset's hash chain (`position` 1, 2, ...): the unique key
    makes two receipts claiming the same predecessor impossible."""

    __tablename__ = "receipt_datasets"
    __table_args__ = (UniqueConstraint("dataset_id", "receipt_hash"),)

    dataset_id: int = Field(primary_key=True, sa_type=UInt256)
    position: int = Field(primary_key=True, sa_type=BigInteger, ge=1)
    receipt_hash: str = Field(max_length=HASH_LENGTH, index=True)
    previous_receipt: str | None = Field(default=None, max_length=HASH_LENGTH)
    version: int = Field(sa_type=BigInteger, ge=1)
    grant_id: str = Field(max_length=HASH_LENGTH)


class BatchStatus(StrEnum):
    """Where a receipt batch is: sealed (root fixed, proofs stored) or anchored on chain."""

    SEALED = "sealed"
    ANCHORED = "anchored"


class ReceiptBatchRow(SQLModel, table=True):
    """A sealed batch of receipts and, once ``anchorBatch`` is confirmed, where it landed."""

    __tablename__ = "receipt_batches"

    root: str = Field(primary_key=True, max_length=HASH_LENGTH)
    executor: str = Field(max_length=ADDRESS_LENGTH)
    chain_id: int = Field(sa_type=BigInteger, ge=1)
    count: int = Field(sa_type=BigInteger, ge=1)
    status: BatchStatus = Field(default=BatchStatus.SEALED, sa_type=String(16), index=True)
    sealed_at: datetime = Field(sa_type=UtcDateTime)
    tx_hash: str | None = Field(default=None, max_length=HASH_LENGTH)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    anchored_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

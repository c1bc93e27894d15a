"""The job pipeline's own state: one row per job (its step in the state machine) and an outbox
row per chain transaction the pipeline sends (so a restart knows what may have landed)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, String, Text
from sqlmodel import Field, SQLModel

from ledger.store.models.base import ADDRESS_LENGTH, HASH_LENGTH
from ledger.store.types import UtcDateTime

__all__ = ["JobStatus", "OutboxAction", "OutboxEntry", "OutboxStatus", "PipelineJob"]


class JobStatus(StrEnum):
    """Where a job is in the pipeline; each value is reached only after the previous step's
    effect is durable (file written, chain transaction confirmed, row committed)."""

    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    AUTHORIZED = "authorized"
    COMPUTED = "computed"
    RECEIPTED = "receipted"
    RECORDED = "recorded"
    ANCHORED = "anchored"
    DONE = "done"
    REFUNDING = "refunding"
    FAILED = "failed"


class OutboxAction(StrEnum):
    """The chain transactions of a job."""

    ESCROW = "escrow"
    RECORD = "record"
    REFUND = "refund"


class OutboxStatus(StrEnum):
    """An outbox entry: intended (maybe sent), confirmed on chain, or not needed after all."""

    INTENDED = "intended"
    CONFIRMED = "confirmed"
    SKIPPED = "skipped"


class PipelineJob(SQLModel, table=True):
    """A job of the pipeline (not to be confused with ``jobs``, the index of ``JobRecorded``)."""

    __tablename__ = "pipeline_jobs"

    job_id: str = Field(primary_key=True, max_length=HASH_LENGTH)
    consumer: str = Field(max_length=ADDRESS_LENGTH, index=True)
    status: JobStatus = Field(sa_type=String(24), index=True)
    request_json: str = Field(sa_type=Text)
    batched: bool = Field(default=False)
    reason: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, max_length=500)
    failed_at_status: str | None = Field(default=None, max_length=24)
    budgets_json: str | None = Field(default=None, sa_type=Text)
    outcome_json: str | None = Field(default=None, sa_type=Text)
    result_hash: str | None = Field(default=None, max_length=HASH_LENGTH)
    result_path: str | None = Field(default=None, max_length=1000)
    receipt_hash: str | None = Field(default=None, max_length=HASH_LENGTH)
    receipt_json: str | None = Field(default=None, sa_type=Text)
    record_tx: str | None = Field(default=None, max_length=HASH_LENGTH)
    record_block: int | None = Field(default=None, sa_type=BigInteger)
    gas_used: int = Field(default=0, sa_type=BigInteger)
    attempts: int = Field(default=0)
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime, index=True)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class OutboxEntry(SQLModel, table=True):
    """A chain transaction of a job: written before it is sent, confirmed after it landed.

    `key` tells entries of one action apart (the grant id of an escrow or a refund, empty for
    the job's one record). A restart reconciles ``intended`` entries against the chain's state
    (``receiptOf``, ``escrowOf``) before anything is sent again.
    """

    __tablename__ = "job_outbox"

    job_id: str = Field(primary_key=True, max_length=HASH_LENGTH)
    action: OutboxAction = Field(primary_key=True, sa_type=String(16))
    key: str = Field(primary_key=True, max_length=HASH_LENGTH)
    status: OutboxStatus = Field(sa_type=String(16))
    tx_hash: str | None = Field(default=None, max_length=HASH_LENGTH)
    attempts: int = Field(default=0)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)

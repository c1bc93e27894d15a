"""Submitting a job, on the consumer's side: check the request against the chain, store it, and
escrow the payment with the consumer's own key. The service only observes the escrows.

Nothing is written when the request is refused (bad input, a grant the chain says does not allow
the job, a price above ``--pay``). Once the job row exists, the escrows are sent one by one; if
one fails, the job is marked ``refunding`` so the worker refunds those that landed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from eth_typing import ChecksumAddress

from ledger.chain.sender import TxSender
from ledger.errors import ChainError, ContractRevert
from ledger.jobs.chain import JobChain
from ledger.jobs.errors import JobDatasetNotFoundError, JobRefusedError, JobRequestError
from ledger.jobs.request import DatasetSpec, JobRequestSpec, new_job_id
from ledger.jobs.store import JobStore
from ledger.rights.check import JobRequest
from ledger.rights.typed_data import Grant
from ledger.store.models.jobs import (
    JobStatus,
    OutboxAction,
    OutboxEntry,
    OutboxStatus,
    PipelineJob,
)

__all__ = ["CheckedJob", "Submitted", "check_job", "store_job", "submit_job"]


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submitted job: its id, status and what was escrowed (token, amount per grant)."""

    job_id: str
    status: str
    escrows: tuple[tuple[str, int, str], ...]


@dataclass(frozen=True, slots=True)
class CheckedJob:
    """A job request the chain allows: dataset versions fixed, a fresh id, and what is due per
    priced grant as ``(grant, amount, grant id)``; nothing stored yet."""

    request: JobRequestSpec
    job_id: bytes
    due: tuple[tuple[Grant, int, str], ...]

    @property
    def job_hex(self) -> str:
        """The job id as 0x hex."""
        return "0x" + self.job_id.hex()

    @property
    def total(self) -> int:
        """What the grants ask in all (base units, any tokens)."""
        return sum(amount for _, amount, _ in self.due)


def check_job(
    chain: JobChain, request: JobRequestSpec, *, executor: ChecksumAddress, uses: int = 1
) -> CheckedJob:
    """Check `request` against the chain for `executor`: dataset versions left open are fixed
    to the chain's latest; each grant is checked (``checkUse``, with no privacy spend).

    Raises:
        JobDatasetNotFoundError: a dataset is not registered.
        JobRequestError: a version does not exist.
        JobRefusedError: the chain says a grant does not allow the job.
    """
    datasets = []
    for i, spec in enumerate(request.datasets):
        try:
            head = chain.head_version(spec.dataset_id)
        except ContractRevert:
            raise JobDatasetNotFoundError(f"datasets[{i}].datasetId") from None
        version = head if spec.version is None else spec.version
        if not 1 <= version <= head:
            raise JobRequestError(f"datasets[{i}].version", f"a version from 1 to {head}")
        datasets.append(DatasetSpec(spec.dataset_id, version))
    request = replace(request, datasets=tuple(datasets))
    at = chain.now()
    for index, grant in enumerate(request.grants):
        decision = chain.check(
            grant,
            JobRequest(
                dataset_id=grant.dataset_id,
                consumer=request.consumer,
                algorithm_hash=request.algorithm_hash,
                purpose=request.purpose,
                uses=uses,
                epsilon=0,
                executor=executor,
                at=at,
            ),
        )
        if not decision.allowed:
            assert decision.reason is not None
            raise JobRefusedError(index, decision.reason.value, decision.detail)
    due = tuple(
        (grant, grant.price_per_use * uses, "0x" + chain.grant_id(grant).hex())
        for grant in request.grants
        if grant.price_per_use > 0
    )
    return CheckedJob(request, new_job_id(request), due)


def store_job(store: JobStore, checked: CheckedJob, *, batched: bool = False) -> None:
    """Store a checked job as ``awaiting_payment`` with an escrow intent per priced grant."""
    now = datetime.now(UTC)
    store.create(
        PipelineJob(
            job_id=checked.job_hex,
            consumer=checked.request.consumer,
            status=JobStatus.AWAITING_PAYMENT,
            request_json=json.dumps(checked.request.to_json(), sort_keys=True),
            batched=batched,
            created_at=now,
            updated_at=now,
        ),
        [
            OutboxEntry(
                job_id=checked.job_hex,
                action=OutboxAction.ESCROW,
                key=key,
                status=OutboxStatus.INTENDED,
                attempts=1,
                created_at=now,
                updated_at=now,
            )
            for _, _, key in checked.due
        ],
    )


def submit_job(
    store: JobStore,
    chain: JobChain,
    consumer: TxSender,
    request: JobRequestSpec,
    *,
    executor: ChecksumAddress,
    pay: int | None,
    batched: bool = False,
    uses: int = 1,
) -> Submitted:
    """Store a job and escrow its payment from `consumer` (who must be the grantee).

    The request is checked first (`check_job`).

    Raises:
        JobRequestError: the key is not the grantee's, a version does not exist, a priced job
            without ``pay`` or with prices above it.
        JobRefusedError: the chain says a grant does not allow the job.
        ContractRevert, TransactionFailedError, RpcUnavailableError: an escrow failed (the job is
            then ``refunding`` or ``failed``, never left half paid).
    """
    if consumer.address != request.consumer:
        raise JobRequestError("consumer key", "the key of the grants' grantee")
    checked = check_job(chain, request, executor=executor, uses=uses)
    total = checked.total
    if checked.due and pay is None:
        raise JobRequestError("pay", f"given for a priced job (the grants ask {total})")
    if pay is not None and total > pay:
        raise JobRequestError("pay", f"at least the grants' price ({total})")
    store_job(store, checked, batched=batched)
    job_id, job_hex = checked.job_id, checked.job_hex
    escrows: list[tuple[str, int, str]] = []
    for grant, amount, key in checked.due:
        try:
            receipt = chain.escrow(
                consumer, job_id, bytes.fromhex(key[2:]), grant.payment_token, amount
            )
        except ChainError:
            status = JobStatus.REFUNDING if escrows else JobStatus.FAILED
            store.advance(
                job_hex,
                JobStatus.AWAITING_PAYMENT,
                status,
                reason="payment_failed",
                detail="the consumer's escrow transaction failed",
                failed_at_status=JobStatus.AWAITING_PAYMENT.value,
            )
            raise
        tx_hash = receipt["transactionHash"].to_0x_hex()
        store.settle(job_hex, OutboxAction.ESCROW, key, OutboxStatus.CONFIRMED, tx_hash)
        escrows.append((grant.payment_token, amount, tx_hash))
    return Submitted(job_hex, JobStatus.AWAITING_PAYMENT.value, tuple(escrows))

"""What the consumer may see of a job: its status (never data), and its result (grantee only)."""

from __future__ import annotations

import json
from typing import Any, Final

from ledger.jobs.errors import JobAccessDeniedError, JobNotReadyError
from ledger.jobs.results import RECEIPT_FILE, ResultStore
from ledger.jobs.store import JobStore
from ledger.store.models.jobs import JobStatus

__all__ = ["RELEASED", "job_result", "job_status"]

#: Statuses in which the result is recorded on chain and may be released to the grantee.
RELEASED: Final = frozenset({JobStatus.RECORDED, JobStatus.ANCHORED, JobStatus.DONE})


def job_status(store: JobStore, job_id: str) -> dict[str, Any]:
    """A job's status as JSON: step, failure reason, hashes and the record transaction.

    Raises:
        JobNotFoundError: no such job.
    """
    job = store.get(job_id.lower())
    return {
        "job_id": job.job_id,
        "consumer": job.consumer,
        "status": job.status.value,
        "result_available": job.status in RELEASED,
        "reason": job.reason,
        "detail": job.detail,
        "failed_at": job.failed_at_status,
        "batched": job.batched,
        "result_hash": job.result_hash if job.status in RELEASED else None,
        "receipt_hash": job.receipt_hash,
        "record_tx": job.record_tx,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }


def job_result(store: JobStore, results: ResultStore, job_id: str, caller: str) -> dict[str, Any]:
    """The result of a job and its signed receipt, for the grantee only.

    Raises:
        JobNotFoundError: no such job.
        JobAccessDeniedError: `caller` is not the job's consumer (the grants' grantee).
        JobNotReadyError: the job has not been recorded yet, or failed.
        ResultStoreError: the files are unreadable.
    """
    job = store.get(job_id.lower())
    if caller.lower() != job.consumer.lower():
        raise JobAccessDeniedError(job.job_id, caller)
    if job.status not in RELEASED:
        raise JobNotReadyError(job.job_id, job.status.value, job.reason)
    document = json.loads(results.read(job.job_id))
    receipt = json.loads(results.read(job.job_id, RECEIPT_FILE))
    return {
        "job_id": job.job_id,
        "status": job.status.value,
        "result": document["result"],
        "result_hash": document["result_hash"],
        "receipt_hash": job.receipt_hash,
        "record_tx": job.record_tx,
        "receipt": receipt,
    }

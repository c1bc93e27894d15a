"""Errors of the job pipeline (subclasses of `ledger.errors.LedgerError`).

JobError                      the job pipeline cannot do what was asked
├── JobRequestError           a job request is malformed (names the field and the rule; also a
│                             ValueError); nothing was written
├── JobNotFoundError          no job with this id (also a LookupError)
├── JobAccessDeniedError      the caller is not the job's grantee (also a PermissionError)
├── JobNotReadyError          the job has no result (yet, or it failed: the reason is named)
├── JobStepUnavailableError   a part the pipeline needs is not installed or configured
├── JobShareError             a worker's share of the jobs is not (i, n) with 0 <= i < n (also a
│                             ValueError)
└── ResultStoreError          a result file cannot be written or read
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = [
    "JobAccessDeniedError",
    "JobDatasetNotFoundError",
    "JobError",
    "JobNotFoundError",
    "JobNotReadyError",
    "JobRefusedError",
    "JobRequestError",
    "JobShareError",
    "JobStateError",
    "JobStepUnavailableError",
    "ResultStoreError",
]


class JobError(LedgerError):
    """Raised when the job pipeline cannot do what was asked."""


class JobRequestError(JobError, ValueError):
    """Raised when a job request is malformed; names the field and the rule (never a value)."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"job request field {field!r} must be {rule}")


class JobDatasetNotFoundError(JobRequestError, LookupError):
    """Raised when a job names a dataset id that is not registered; names the field."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "a registered dataset id")


class JobNotFoundError(JobError, LookupError):
    """Raised when no job has the given id."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id} (check the id, or the database LEDGER_DATABASE_URL)")


class JobAccessDeniedError(JobError, PermissionError):
    """Raised when someone other than the job's grantee asks for its result."""

    def __init__(self, job_id: str, caller: str) -> None:
        self.job_id = job_id
        self.caller = caller
        super().__init__(
            f"job {job_id}: {caller} is not the grantee; results go to the grantee only "
            "(use the grantee's key, LEDGER_CONSUMER_KEY or --key-env)"
        )


class JobNotReadyError(JobError):
    """Raised when a job has no result to give: still running, or failed (with its reason)."""

    def __init__(self, job_id: str, status: str, reason: str | None = None) -> None:
        self.job_id = job_id
        self.status = status
        self.reason = reason
        if reason:
            message = f"job {job_id} failed ({reason}): it has no result"
        else:
            message = f"job {job_id} is {status}: no result yet (run `ledger job worker`)"
        super().__init__(message)


class JobStepUnavailableError(JobError):
    """Raised when a part the pipeline needs (compute engine, receipts, settlement) is missing."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"job step {step!r} is unavailable: {reason}")


class ResultStoreError(JobError):
    """Raised when a result file cannot be written or read."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"result of job {job_id}: {reason}")


class JobRefusedError(JobError):
    """Raised at submission when the chain says a grant does not allow the job (nothing sent)."""

    def __init__(self, grant_index: int, reason: str, detail: str) -> None:
        self.grant_index = grant_index
        self.reason = reason
        self.detail = detail
        super().__init__(f"grant {grant_index} does not allow this job: {reason} ({detail})")


class JobShareError(JobError, ValueError):
    """Raised when a worker's share of the jobs is not (i, n) with 0 <= i < n."""

    def __init__(self, index: int, count: int) -> None:
        self.index = index
        self.count = count
        super().__init__(
            f"worker share must be (i, n) with n >= 1 and 0 <= i < n, got ({index}, {count})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.index, self.count))


class JobStateError(JobError):
    """Raised when the chain and a job's recorded state contradict each other (e.g. an escrow
    captured for a job that is failing); the job is left at its step for an operator."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id}: {reason}; left at its step for an operator to look at")

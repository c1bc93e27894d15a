"""The job pipeline: a persistent state machine that takes a paid request to a recorded result,
exactly once, restartable at any step.

    awaiting_payment ─▶ paid ─▶ authorized ─▶ computed ─▶ receipted ─▶ recorded ─▶ anchored ─▶ done
          │               │          │                         │
          └───────────────┴──────────┴─────────────────────────┴──▶ refunding ─▶ failed

Each arrow commits only after the step's effect is durable: the escrows seen on chain, the grant
re-checked on chain, the result file written (fsync + rename) before its hash is stored, the
receipt stored before it is recorded, ``recordUsage`` confirmed before ``recorded``. Chain
transactions go through the outbox: an entry is written before sending, and a restart asks the
chain whether it landed (``receiptOf(jobId)``, ``escrowOf``) before sending again. The contracts
make the rest impossible to repeat: a job id is recorded once, an escrow captured or refunded
once. A job that cannot run records nothing and its escrows are refunded by the executor (which
holds ``REFUNDER_ROLE`` after ``ledger deploy``); its result file, if any, is deleted.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from ledger.chain.sender import TxSender
from ledger.errors import ContractRevert, LedgerError
from ledger.jobs.chain import EscrowStatus, GrantUse, JobChain
from ledger.jobs.crash import crash_point
from ledger.jobs.errors import JobShareError, JobStateError
from ledger.jobs.request import JobRequestSpec
from ledger.jobs.results import ResultStore
from ledger.jobs.steps import (
    AnchorStep,
    ComputeInput,
    ComputeOutcome,
    ComputeStep,
    DatasetInput,
    DatasetLocator,
    JobFailure,
    ReceiptDataset,
    ReceiptInput,
    ReceiptStep,
    WeightsInput,
    WeightsStep,
)
from ledger.jobs.store import TERMINAL, JobConflictError, JobStore, worker_identity
from ledger.rights.check import JobRequest
from ledger.store.models.jobs import JobStatus, OutboxAction, OutboxStatus, PipelineJob

__all__ = ["JobPipeline", "PipelineOptions"]

_log = logging.getLogger(__name__)
_ZERO: Final = bytes(32)
_AFTER_RECORD: Final = frozenset({JobStatus.RECORDED, JobStatus.ANCHORED})
# Errors of recordUsage that mean the grant no longer allows the job (nothing was recorded).
_RECORD_REFUSALS: Final = {
    "AccessGrantsRevoked": "revoked",
    "AccessGrantsOwnerChanged": "owner_changed",
    "AccessGrantsOutsideWindow": "expired",
    "AccessGrantsUsesExceeded": "uses_exceeded",
    "AccessGrantsBudgetExceeded": "budget_exceeded",
    "AccessGrantsUnknownGrant": "unknown_grant",
    "UsageLedgerNotExecutor": "executor_not_allowed",
    "UsageLedgerUnknownVersion": "unknown_dataset",
    "RevenueVaultEscrowNotHeld": "payment_missing",
    "RevenueVaultCaptureMismatch": "payment_mismatch",
}


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """How the pipeline runs.

    Args:
        payment_timeout: Seconds a job waits for its escrows before it fails (``payment_missing``).
        lease: Seconds a worker holds a job it works on.
        uses: Uses consumed per grant per job.
        batched: Receipts go into Merkle batches anchored by the batcher (besides the per-job
            ``recordUsage``, which consumes the grants and captures the payment).
    """

    payment_timeout: float = 600.0
    lease: float = 300.0
    uses: int = 1
    batched: bool = False


class JobPipeline:
    """Advances jobs; one per worker process. See the module notes."""

    def __init__(
        self,
        store: JobStore,
        chain: JobChain,
        executor: TxSender,
        results: ResultStore,
        *,
        compute: ComputeStep,
        receipts: ReceiptStep,
        locator: DatasetLocator,
        anchors: AnchorStep | None = None,
        weights: WeightsStep | None = None,
        options: PipelineOptions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.chain = chain
        self.executor = executor
        self.results = results
        self.compute = compute
        self.receipts = receipts
        self.locator = locator
        self.anchors = anchors
        self.weights = weights
        self.options = options or PipelineOptions()
        self.clock = clock
        self.identity = worker_identity()
        #: Faults met so far (job id, status, error type, message): steps left for a retry.
        self.faults: list[tuple[str, str, str, str]] = []
        # A job's request never changes: parsed once per job, not once per step.
        self._requests: dict[str, JobRequestSpec] = {}
        # Jobs as their last step left them (status and the values it wrote), by id.
        self._moved: dict[str, PipelineJob] = {}
        self._steps: dict[JobStatus, Callable[[PipelineJob], bool]] = {
            JobStatus.AWAITING_PAYMENT: self._observe_payment,
            JobStatus.PAID: self._authorize,
            JobStatus.AUTHORIZED: self._compute,
            JobStatus.COMPUTED: self._receipt,
            JobStatus.RECEIPTED: self._record,
            JobStatus.RECORDED: self._anchor,
            JobStatus.ANCHORED: self._weights,
            JobStatus.REFUNDING: self._refund,
        }

    # -- driving --------------------------------------------------------------------------

    def run_pending(
        self, *, force_anchor: bool = False, threads: int = 1, share: tuple[int, int] = (0, 1)
    ) -> int:
        """Advance every unfinished job as far as it goes now; returns steps taken.

        With `force_anchor`, partial receipt batches are anchored so batched jobs finish. With
        `threads` > 1, that many jobs advance at once (each job in one thread at a time: a
        pass hands every job id to one thread and waits for all of them). `share` = (i, n):
        this worker takes only the jobs whose id is i modulo n (n worker processes, each
        with its own executor key, split the jobs between them).
        """
        index, count = share
        if count < 1 or not 0 <= index < count:
            raise JobShareError(index, count)
        pool = ThreadPoolExecutor(threads) if threads > 1 else None
        try:
            total = 0
            while True:
                steps = self._pass(pool, share)
                if self.anchors is not None and self.anchors.flush(force=force_anchor) > 0:
                    steps += 1 + self._pass(pool, share)
                total += steps
                if steps == 0:
                    return total
        finally:
            if pool is not None:
                pool.shutdown()

    def _pass(self, pool: ThreadPoolExecutor | None, share: tuple[int, int] = (0, 1)) -> int:
        index, count = share
        ids = self.store.runnable(limit=100 * count)
        if count > 1:
            ids = [job_id for job_id in ids if int(job_id[2:], 16) % count == index]
        if pool is None:
            return sum(self.advance(job_id) for job_id in ids)
        return sum(pool.map(self.advance, ids))

    def advance(self, job_id: str) -> int:
        """Run a job's steps until it is finished or waits; returns steps taken (0 if another
        worker holds it)."""
        if not self.store.claim(job_id, self.identity, self.options.lease):
            return 0
        taken = 0
        self._moved.pop(job_id, None)
        try:
            job = self.store.get(job_id)
            while True:
                step = self._steps.get(job.status)
                if step is None or job.status in TERMINAL:
                    self._requests.pop(job_id, None)
                    return taken
                try:
                    moved = step(job)
                except JobConflictError:
                    return taken
                except JobFailure as failure:
                    self._moved.pop(job_id, None)
                    if job.status in _AFTER_RECORD:
                        # Recorded and paid: the job cannot fail any more; retry later.
                        self._fault(job, failure)
                        return taken
                    self._fail(job, failure.reason, failure.detail)
                    moved = True
                except LedgerError as exc:
                    # The node, the database or a part is down: the job keeps its step and
                    # the next pass retries it (nothing of the step was recorded as done).
                    self._fault(job, exc)
                    return taken
                if not moved:
                    return taken
                taken += 1
                # The step's own UPDATE moved the row; read it back only if the step did not
                # say what it wrote (a failed job, or a step without `_advance`).
                noted = self._moved.pop(job_id, None)
                job = noted if noted is not None else self.store.get(job_id)
        finally:
            self.store.release(job_id, self.identity)

    # -- steps ----------------------------------------------------------------------------

    def _observe_payment(self, job: PipelineJob) -> bool:
        request = self._request(job)
        job_id = bytes.fromhex(job.job_id[2:])
        missing = False
        for grant in request.grants:
            due = grant.price_per_use * self.options.uses
            if due == 0:
                continue
            escrow_id = self.chain.escrow_id(job_id, self.chain.grant_id(grant), job.consumer)
            escrow = self.chain.escrow_of(escrow_id)
            if escrow.status == EscrowStatus.NONE:
                missing = True
            elif escrow.status != EscrowStatus.HELD:
                raise JobFailure("payment_mismatch", "an escrow of this job is not held")
            elif escrow.token != grant.payment_token or escrow.amount != due:
                raise JobFailure(
                    "payment_mismatch", "an escrow's token or amount differs from the price"
                )
        if missing:
            waited = self.clock() - job.created_at.timestamp()
            if waited > self.options.payment_timeout:
                raise JobFailure("payment_missing", "no escrow arrived in time")
            return False
        self._advance(job, JobStatus.AWAITING_PAYMENT, JobStatus.PAID)
        crash_point("paid")
        return True

    def _authorize(self, job: PipelineJob) -> bool:
        request = self._request(job)
        at = self.chain.now()
        budgets: dict[str, tuple[int, int]] = {}
        for grant, dataset in zip(request.grants, request.datasets, strict=True):
            check = JobRequest(
                dataset_id=grant.dataset_id,
                consumer=request.consumer,
                algorithm_hash=request.algorithm_hash,
                purpose=request.purpose,
                uses=self.options.uses,
                epsilon=0,
                executor=self.executor.address,
                at=at,
            )
            decision, spent = self.chain.check_with_state(grant, check)
            if not decision.allowed:
                assert decision.reason is not None
                raise JobFailure(decision.reason.value, decision.detail)
            assert dataset.version is not None
            budgets[str(grant.dataset_id)] = (grant.epsilon_budget, spent)
        self._advance(
            job,
            JobStatus.PAID,
            JobStatus.AUTHORIZED,
            budgets_json=json.dumps(budgets),
        )
        crash_point("authorized")
        return True

    def _compute(self, job: PipelineJob) -> bool:
        request = self._request(job)
        budgets = json.loads(job.budgets_json or "{}")
        inputs = []
        for grant, dataset in zip(request.grants, request.datasets, strict=True):
            assert dataset.version is not None
            budget, spent = budgets[str(dataset.dataset_id)]
            inputs.append(
                DatasetInput(
                    dataset_id=dataset.dataset_id,
                    version=dataset.version,
                    data_dir=self.locator.data_dir(dataset.dataset_id, dataset.version),
                    grant_id=_hex(self.chain.grant_id(grant)),
                    budget_micro=int(budget),
                    spent_micro=int(spent),
                )
            )
        outcome = self.compute.run(
            ComputeInput(
                job_id=job.job_id,
                algorithm=request.algorithm,
                algorithm_hash=_hex(request.algorithm_hash),
                params=request.params,
                datasets=tuple(inputs),
            )
        )
        document = {
            "format": "ledger.jobs.result/1",
            "job_id": job.job_id,
            "result": outcome.result,
            "result_hash": outcome.result_hash,
        }
        path = self.results.write_result(job.job_id, _json_bytes(document))
        crash_point("computed:written")
        self._advance(
            job,
            JobStatus.AUTHORIZED,
            JobStatus.COMPUTED,
            outcome_json=json.dumps(outcome.to_json(), sort_keys=True),
            result_hash=outcome.result_hash,
            result_path=str(path),
        )
        crash_point("computed")
        return True

    def _receipt(self, job: PipelineJob) -> bool:
        request = self._request(job)
        outcome = _outcome(job)
        addresses = self.chain.deployment.addresses
        issued = self.receipts.issue(
            ReceiptInput(
                job_id=job.job_id,
                chain_id=self.chain.chain_id,
                contracts={
                    "registry": addresses["DataRegistry"],
                    "grants": addresses["AccessGrants"],
                    "usage_ledger": addresses["UsageLedger"],
                    "vault": addresses["RevenueVault"],
                },
                consumer=request.consumer,
                purpose=_hex(request.purpose),
                executor=self.executor.address,
                algorithm_hash=outcome.algorithm_hash,
                runtime_hash=outcome.runtime_hash,
                parameters_hash=outcome.parameters_hash,
                result_hash=outcome.result_hash,
                suppression_k=outcome.suppression_k,
                requested_at=int(job.created_at.timestamp()),
                completed_at=int(self.clock()),
                datasets=self._receipt_datasets(request, outcome),
                batched=self.options.batched,
            )
        )
        self.results.write_receipt(job.job_id, issued.document.encode())
        self._advance(
            job,
            JobStatus.COMPUTED,
            JobStatus.RECEIPTED,
            receipt_hash=issued.hash,
            receipt_json=issued.document,
            batched=self.options.batched,
        )
        crash_point("receipted")
        return True

    def _record(self, job: PipelineJob) -> bool:
        if not self._ours(job):
            return False
        request = self._request(job)
        outcome = _outcome(job)
        assert job.receipt_hash is not None
        ours = bytes.fromhex(job.receipt_hash[2:])
        job_id = bytes.fromhex(job.job_id[2:])
        entry = self.store.intend(job.job_id, OutboxAction.RECORD, "")
        crash_point("record:intended")
        tx_hash: str | None = None
        gas = 0
        block: int | None = None
        # A first attempt cannot have landed; any later one asks the chain before resending.
        landed = _ZERO if entry.attempts == 1 else self.chain.receipt_of(job_id)
        if landed == _ZERO:
            uses = [
                GrantUse(
                    grant=grant,
                    dataset_version=int(dataset.version or 0),
                    uses=self.options.uses,
                    epsilon=outcome.epsilon_spent.get(dataset.dataset_id, 0),
                )
                for grant, dataset in zip(request.grants, request.datasets, strict=True)
            ]
            try:
                receipt = self.chain.record_usage(
                    self.executor,
                    job_id=job_id,
                    consumer=request.consumer,
                    algorithm_hash=request.algorithm_hash,
                    purpose=request.purpose,
                    receipt_hash=ours,
                    uses=uses,
                )
            except ContractRevert as exc:
                if exc.error != "UsageLedgerJobExists":
                    reason = _RECORD_REFUSALS.get(exc.error)
                    if reason is None:
                        raise
                    raise JobFailure(
                        reason, f"the chain refused the record ({exc.error})"
                    ) from None
                landed = self.chain.receipt_of(job_id)
            else:
                landed = ours
                tx_hash = receipt["transactionHash"].to_0x_hex()
                gas = int(receipt["gasUsed"])
                block = int(receipt["blockNumber"])
                crash_point("record:sent")
        if landed != ours:
            # Another receipt under this job id: never ours to release (cannot happen with
            # random job ids unless a second service shares the database).
            raise JobFailure("record_conflict", "the chain holds another receipt for this job")
        recorded = {"record_tx": tx_hash, "record_block": block, "gas_used": job.gas_used + gas}
        self.store.settle(
            job.job_id,
            OutboxAction.RECORD,
            "",
            OutboxStatus.CONFIRMED,
            tx_hash,
            advance=(JobStatus.RECEIPTED, JobStatus.RECORDED, recorded),
        )
        self._note(job, JobStatus.RECORDED, recorded)
        crash_point("recorded")
        return True

    def _anchor(self, job: PipelineJob) -> bool:
        if job.batched:
            if self.anchors is None or not self._ours(job):
                return False
            assert job.receipt_hash is not None
            self.anchors.add(job.job_id, job.receipt_hash)
            document = self.anchors.inclusion(job.receipt_hash)
            if document is None:
                return False
            self.results.write_receipt(job.job_id, document.encode())
            self._advance(job, JobStatus.RECORDED, JobStatus.ANCHORED, receipt_json=document)
        else:
            self._advance(job, JobStatus.RECORDED, JobStatus.ANCHORED)
        crash_point("anchored")
        return True

    def _weights(self, job: PipelineJob) -> bool:
        if self.weights is not None:
            request = self._request(job)
            outcome = _outcome(job)
            assert job.receipt_hash is not None
            self.weights.record(
                WeightsInput(
                    job_id=job.job_id,
                    receipt_hash=job.receipt_hash,
                    datasets=self._receipt_datasets(request, outcome),
                    data_dirs={
                        d.dataset_id: self.locator.data_dir(d.dataset_id, int(d.version or 0))
                        for d in request.datasets
                    },
                )
            )
        self._advance(job, JobStatus.ANCHORED, JobStatus.DONE)
        crash_point("done")
        return True

    def _refund(self, job: PipelineJob) -> bool:
        request = self._request(job)
        job_id = bytes.fromhex(job.job_id[2:])
        for grant in request.grants:
            if grant.price_per_use == 0:
                continue
            grant_id = self.chain.grant_id(grant)
            escrow_id = self.chain.escrow_id(job_id, grant_id, job.consumer)
            key = _hex(grant_id)
            escrow = self.chain.escrow_of(escrow_id)
            if escrow.status == EscrowStatus.NONE:
                self.store.settle(job.job_id, OutboxAction.REFUND, key, OutboxStatus.SKIPPED, None)
                continue
            if escrow.status == EscrowStatus.CAPTURED:
                # Captured means recorded: recordUsage is the only capturer and it records the
                # job in the same transaction. A failed job never reaches it.
                raise JobStateError(job.job_id, f"escrow {_hex(escrow_id)} captured while failing")
            tx_hash = None
            if escrow.status == EscrowStatus.HELD:
                self.store.intend(job.job_id, OutboxAction.REFUND, key)
                receipt = self.chain.refund(self.executor, escrow_id)
                tx_hash = receipt["transactionHash"].to_0x_hex()
                crash_point("refund:sent")
            self.store.settle(job.job_id, OutboxAction.REFUND, key, OutboxStatus.CONFIRMED, tx_hash)
        self._advance(job, JobStatus.REFUNDING, JobStatus.FAILED)
        crash_point("failed")
        return True

    # -- helpers --------------------------------------------------------------------------

    def _advance(
        self, job: PipelineJob, expected: JobStatus, new: JobStatus, **values: Any
    ) -> None:
        """`JobStore.advance`, then the same change on `job` for the next step."""
        self.store.advance(job.job_id, expected, new, **values)
        self._note(job, new, values)

    def _note(self, job: PipelineJob, new: JobStatus, values: dict[str, Any]) -> None:
        for name, value in values.items():
            setattr(job, name, value)
        job.status = new
        self._moved[job.job_id] = job

    def _request(self, job: PipelineJob) -> JobRequestSpec:
        request = self._requests.get(job.job_id)
        if request is None:
            if len(self._requests) > 10_000:
                self._requests.clear()
            request = _parse_request(job)
            self._requests[job.job_id] = request
        return request

    def _ours(self, job: PipelineJob) -> bool:
        """Whether this worker's key signed the job's receipt: the record and the batch anchor
        must come from the receipt's executor (``ledger verify`` checks both), so a worker
        with another key leaves the job to it."""
        executor = _receipt_executor(job)
        return executor is None or executor.lower() == self.executor.address.lower()

    def _fault(self, job: PipelineJob, exc: Exception) -> None:
        _log.warning("job %s: %s at %s: %s", job.job_id, type(exc).__name__, job.status, exc)
        self.faults.append((job.job_id, job.status.value, type(exc).__name__, str(exc)[:300]))

    def _fail(self, job: PipelineJob, reason: str, detail: str) -> None:
        _log.info("job %s failed at %s: %s", job.job_id, job.status.value, reason)
        self.results.discard(job.job_id)
        self._advance(
            job,
            job.status,
            JobStatus.REFUNDING,
            reason=reason[:64],
            detail=detail[:500],
            failed_at_status=job.status.value,
            result_path=None,
        )
        crash_point("refunding")

    def _receipt_datasets(
        self, request: JobRequestSpec, outcome: ComputeOutcome
    ) -> tuple[ReceiptDataset, ...]:
        lines = []
        for grant, dataset in zip(request.grants, request.datasets, strict=True):
            version = int(dataset.version or 0)
            lines.append(
                ReceiptDataset(
                    dataset_id=dataset.dataset_id,
                    version=version,
                    commitment=_hex(self.chain.commitment_of(dataset.dataset_id, version)),
                    grant_id=_hex(self.chain.grant_id(grant)),
                    uses=self.options.uses,
                    epsilon_spent=outcome.epsilon_spent.get(dataset.dataset_id, 0),
                )
            )
        return tuple(lines)


def _parse_request(job: PipelineJob) -> JobRequestSpec:
    return JobRequestSpec.from_json(json.loads(job.request_json))


def _receipt_executor(job: PipelineJob) -> str | None:
    """The executor address a job's stored receipt names (None if it cannot be read)."""
    try:
        executor = json.loads(job.receipt_json or "")["receipt"]["executor"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(executor) if isinstance(executor, str) else None


def _outcome(job: PipelineJob) -> ComputeOutcome:
    assert job.outcome_json is not None
    return ComputeOutcome.from_json(json.loads(job.outcome_json))


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()

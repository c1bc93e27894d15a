"""The pipeline's steps bound to the real parts: ``ledger.compute`` (engine), ``ledger.provenance``
(receipts, batches) and ``ledger.settlement`` (contributor weights).

Imports are lazy: a part that is not installed raises `JobStepUnavailableError` naming it when
the pipeline is built, not at import time of ``ledger.jobs``.
"""

from __future__ import annotations

import importlib
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from web3.contract import Contract

from ledger.chain.sender import TxSender
from ledger.errors import LedgerError
from ledger.jobs.errors import JobStepUnavailableError
from ledger.jobs.steps import (
    ComputeInput,
    ComputeOutcome,
    IssuedReceipt,
    JobFailure,
    ReceiptInput,
    WeightsInput,
)

__all__ = [
    "BatcherAnchors",
    "EngineCompute",
    "ProvenanceReceipts",
    "SettlementWeights",
    "resolve_algorithm",
]


_CHAIN_RETRIES = 5


def _module(step: str, name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise JobStepUnavailableError(step, f"{name} cannot be imported ({exc})") from None


def resolve_algorithm(algorithm: str) -> str:
    """The code hash (``0x`` hex) of a catalog name, or `algorithm` itself if it is a hash.

    Raises:
        JobStepUnavailableError: the catalog cannot be imported.
        LedgerError: the catalog does not know the name (``UnknownAlgorithmError``).
    """
    if algorithm.startswith("0x") and len(algorithm) == 66:
        return algorithm.lower()
    catalog = _module("compute", "ledger.compute.catalog")
    return str(catalog.entry(algorithm).hash)


class EngineCompute:
    """`ComputeStep` over ``ledger.compute.engine.ComputeEngine`` (templates, DP with the budget
    ledger in the database, sandbox, release policy). The job id is the budget reservation id,
    so a restarted job never reserves twice. Refusals of the engine (budget, parameters,
    sandbox, release policy) become `JobFailure`s with the error's class as the reason code;
    their messages hold no data (the engine's rule)."""

    def __init__(self, db: Engine, *, k: int = 10, backend: Any = None) -> None:
        self._mod = _module("compute", "ledger.compute.engine")
        budget = _module("compute", "ledger.compute.budget")
        self._engine = self._mod.ComputeEngine(budget=budget.BudgetLedger(db), backend=backend)
        self._k = k

    def run(self, request: ComputeInput) -> ComputeOutcome:
        """Run the request through the engine."""
        mod = self._mod
        compute_request = mod.ComputeRequest(
            algorithm=request.algorithm_hash,
            params=request.params,
            datasets=[
                mod.DatasetRef(d.dataset_id, d.version, d.data_dir) for d in request.datasets
            ],
            grants=[
                mod.GrantBudget(d.grant_id, d.dataset_id, d.budget_micro, d.spent_micro)
                for d in request.datasets
            ],
            k=self._k,
            reservation_id=request.job_id,
        )
        try:
            result = self._engine.run(compute_request)
        except LedgerError as exc:
            raise JobFailure(_code(type(exc).__name__), str(exc)[:500]) from None
        spent = {d.dataset_id: 0 for d in request.datasets}
        for item in result.epsilon_spent:
            spent[int(item.dataset_id)] = spent.get(int(item.dataset_id), 0) + int(
                item.epsilon_micro
            )
        return ComputeOutcome(
            result=dict(result.result),
            result_hash=str(result.result_hash),
            algorithm_hash=str(result.algorithm_hash),
            runtime_hash=str(result.runtime_hash),
            parameters_hash=str(result.parameters_hash),
            epsilon_spent=spent,
            suppression_k=int(result.suppression_k),
        )


class ProvenanceReceipts:
    """`ReceiptStep` over ``ledger.provenance``: build, sign with the executor key, store with
    its per-dataset hash chain; a job's stored receipt is returned as is on a second call."""

    def __init__(self, engine: Engine, executor_key: str) -> None:
        self._receipt = _module("receipts", "ledger.provenance.receipt")
        self._store = _module("receipts", "ledger.provenance.store")
        self._errors = _module("receipts", "ledger.provenance.errors")
        self._engine = engine
        self._key = executor_key
        # Receipts on one dataset form a hash chain: issue them one at a time in this process,
        # and rebuild on the new head when another process stored one meanwhile.
        self._lock = threading.Lock()

    def issue(self, receipt: ReceiptInput) -> IssuedReceipt:
        """The job's signed receipt, stored (see the class notes).

        Raises:
            ReceiptChainConflictError: other processes kept extending the dataset's chain.
        """
        conflict = self._errors.ReceiptChainConflictError
        for attempt in range(_CHAIN_RETRIES):
            try:
                with self._lock:
                    return self._issue(receipt)
            except conflict:
                if attempt + 1 == _CHAIN_RETRIES:
                    raise
        raise AssertionError("unreachable")

    def _issue(self, receipt: ReceiptInput) -> IssuedReceipt:
        with Session(self._engine) as session:
            existing = self._store.find_receipt(session, receipt.job_id)
            if existing is not None and existing.receipt.job_id == receipt.job_id.lower():
                return IssuedReceipt(existing.hash, existing.to_json())
            heads = self._store.previous_receipts(session, [d.dataset_id for d in receipt.datasets])
            built = self._receipt.Receipt.of(
                job_id=receipt.job_id.lower(),
                chain_id=receipt.chain_id,
                contracts=receipt.contracts,
                consumer=receipt.consumer,
                purpose=receipt.purpose,
                executor=receipt.executor,
                algorithm_hash=receipt.algorithm_hash,
                runtime_hash=receipt.runtime_hash,
                parameters_hash=receipt.parameters_hash,
                result_hash=receipt.result_hash,
                suppression_k=receipt.suppression_k,
                requested_at=_utc(receipt.requested_at),
                completed_at=_utc(max(receipt.completed_at, receipt.requested_at)),
                datasets=[
                    {
                        "dataset_id": d.dataset_id,
                        "version": d.version,
                        "commitment": d.commitment,
                        "grant_id": d.grant_id,
                        "uses": d.uses,
                        "epsilon_spent": d.epsilon_spent,
                        "previous_receipt": heads[d.dataset_id],
                    }
                    for d in receipt.datasets
                ],
            )
            signed = self._receipt.sign_receipt(built, self._key)
            self._store.save_receipt(session, signed, batched=receipt.batched)
            session.commit()
            return IssuedReceipt(signed.hash, signed.to_json())


class BatcherAnchors:
    """`AnchorStep` over ``ledger.provenance.batcher.ReceiptBatcher``: receipts stored batched
    wait for a batch; once it is anchored, the signed receipt carries its inclusion proof."""

    def __init__(
        self,
        engine: Engine,
        sender: TxSender,
        usage_ledger: Contract,
        *,
        max_receipts: int = 100,
        max_wait: float = 10.0,
    ) -> None:
        batcher = _module("anchoring", "ledger.provenance.batcher")
        self._store = _module("anchoring", "ledger.provenance.store")
        self._inclusion_of = batcher.inclusion_of
        self._engine = engine
        self.batcher = batcher.ReceiptBatcher(
            engine,
            sender,
            usage_ledger,
            policy=batcher.BatchPolicy(max_receipts=max_receipts, max_wait=max_wait),
        )
        self.gas_used = 0
        self.anchored = 0

    def add(self, job_id: str, receipt_hash: str) -> None:
        """Nothing to do: the receipt was stored batched when it was issued."""

    def inclusion(self, receipt_hash: str) -> str | None:
        """The signed receipt with its batch proof, once its batch is anchored."""
        with Session(self._engine) as session:
            inclusion = self._inclusion_of(session, receipt_hash)
            if inclusion is None:
                return None
            signed = self._store.receipt_by_hash(session, receipt_hash)
            return str(signed.with_batch(inclusion).to_json())

    def flush(self, *, force: bool) -> int:
        """Anchor what the policy says is due (all pending with `force`)."""
        done = self.batcher.flush(force=force)
        for batch in done:
            self.gas_used += batch.gas_used or 0
            self.anchored += batch.count
        return sum(batch.count for batch in done)


class SettlementWeights:
    """`WeightsStep` over ``ledger.settlement.weights``: rows per contributor of each dataset
    version the job read, stored in the owner's vault next to the dataset."""

    def __init__(self) -> None:
        self._weights = _module("weights", "ledger.settlement.weights")
        # A version's files never change, so its per-contributor row counts are counted once.
        self._counts: dict[Path, dict[str, int]] = {}

    def record(self, job: WeightsInput) -> None:
        """Count and store the weights (idempotent per job)."""
        for entry in job.datasets:
            data_dir = job.data_dirs[entry.dataset_id]
            if data_dir not in self._counts:
                self._counts[data_dir] = self._weights.rows_used_by_contributor(data_dir)
            weights = self._counts[data_dir]
            self._weights.record_weights(
                data_dir.parent.parent,
                job_id=job.job_id,
                dataset_id=entry.dataset_id,
                version=entry.version,
                weights=weights,
            )


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _code(name: str) -> str:
    """``BudgetExhaustedError`` -> ``budget_exhausted``."""
    base = name.removesuffix("Error")
    out = []
    for i, char in enumerate(base):
        if char.isupper() and i:
            out.append("_")
        out.append(char.lower())
    return "".join(out)[:64]

"""The seams between the pipeline and the parts it drives: compute, receipts, batch anchoring,
settlement weights, and where a dataset version's files are.

Each is a small protocol; `ledger.jobs.adapters` binds them to ``ledger.compute``,
``ledger.provenance`` and ``ledger.settlement``. A step that cannot run a job for a reason the
consumer should see (budget exhausted, sandbox failure, ...) raises `JobFailure`; anything else
it raises is an infrastructure fault and the job is retried later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "AnchorStep",
    "ComputeInput",
    "ComputeOutcome",
    "ComputeStep",
    "DatasetInput",
    "DatasetLocator",
    "IssuedReceipt",
    "JobFailure",
    "ReceiptDataset",
    "ReceiptInput",
    "ReceiptStep",
    "WeightsInput",
    "WeightsStep",
]


class JobFailure(Exception):
    """A job cannot run: `reason` is a stable code, `detail` a sentence without any data."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class DatasetInput:
    """A dataset version the computation reads, with its grant's privacy budget and what the
    chain says the grant has spent of it (micro-epsilon)."""

    dataset_id: int
    version: int
    data_dir: Path
    grant_id: str
    budget_micro: int
    spent_micro: int


@dataclass(frozen=True, slots=True)
class ComputeInput:
    """What the compute step gets."""

    job_id: str
    algorithm: str
    algorithm_hash: str
    params: dict[str, Any]
    datasets: tuple[DatasetInput, ...]


@dataclass(frozen=True, slots=True)
class ComputeOutcome:
    """What the compute step returns: the released result and the hashes a receipt binds.

    `epsilon_spent` is per dataset id, in micro-epsilon (what each grant is charged).
    """

    result: dict[str, Any]
    result_hash: str
    algorithm_hash: str
    runtime_hash: str
    parameters_hash: str
    epsilon_spent: dict[int, int]
    suppression_k: int

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (dataset ids as string keys)."""
        return {
            "result": self.result,
            "result_hash": self.result_hash,
            "algorithm_hash": self.algorithm_hash,
            "runtime_hash": self.runtime_hash,
            "parameters_hash": self.parameters_hash,
            "epsilon_spent": {str(k): v for k, v in self.epsilon_spent.items()},
            "suppression_k": self.suppression_k,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ComputeOutcome:
        """Inverse of `to_json`."""
        return cls(
            result=data["result"],
            result_hash=data["result_hash"],
            algorithm_hash=data["algorithm_hash"],
            runtime_hash=data["runtime_hash"],
            parameters_hash=data["parameters_hash"],
            epsilon_spent={int(k): int(v) for k, v in data["epsilon_spent"].items()},
            suppression_k=int(data["suppression_k"]),
        )


class ComputeStep(Protocol):
    """Runs the algorithm next to the data and applies the release policy."""

    def run(self, request: ComputeInput) -> ComputeOutcome:
        """The released result. Raises `JobFailure` when the job cannot run."""
        ...


@dataclass(frozen=True, slots=True)
class ReceiptDataset:
    """One dataset's line in a receipt."""

    dataset_id: int
    version: int
    commitment: str
    grant_id: str
    uses: int
    epsilon_spent: int


@dataclass(frozen=True, slots=True)
class ReceiptInput:
    """Everything a receipt binds."""

    job_id: str
    chain_id: int
    contracts: dict[str, str]
    consumer: str
    purpose: str
    executor: str
    algorithm_hash: str
    runtime_hash: str
    parameters_hash: str
    result_hash: str
    suppression_k: int
    requested_at: int
    completed_at: int
    datasets: tuple[ReceiptDataset, ...]
    batched: bool = False


@dataclass(frozen=True, slots=True)
class IssuedReceipt:
    """A signed receipt: its hash (what goes on chain) and its JSON document."""

    hash: str
    document: str


class ReceiptStep(Protocol):
    """Builds, signs and stores a job's receipt; idempotent per job id."""

    def issue(self, receipt: ReceiptInput) -> IssuedReceipt:
        """The job's receipt (the stored one if the job has one already)."""
        ...


class AnchorStep(Protocol):
    """Batched mode: collects receipt hashes into Merkle batches anchored on chain."""

    def add(self, job_id: str, receipt_hash: str) -> None:
        """Queue a receipt (idempotent)."""
        ...

    def inclusion(self, receipt_hash: str) -> str | None:
        """The signed receipt document with its batch proof once anchored, else None."""
        ...

    def flush(self, *, force: bool) -> int:
        """Anchor what is due (everything pending if `force`); returns receipts anchored."""
        ...


@dataclass(frozen=True, slots=True)
class WeightsInput:
    """What settlement needs of a completed job."""

    job_id: str
    receipt_hash: str
    datasets: tuple[ReceiptDataset, ...]
    data_dirs: dict[int, Path] = field(default_factory=dict)


class WeightsStep(Protocol):
    """Records a completed job's contributor weights for settlement; idempotent per job."""

    def record(self, job: WeightsInput) -> None:
        """Store the weights."""
        ...


class DatasetLocator(Protocol):
    """Where the executor finds a dataset version's Parquet files."""

    def data_dir(self, dataset_id: int, version: int) -> Path:
        """The version's ``data`` directory. Raises `JobFailure` if this executor lacks it."""
        ...

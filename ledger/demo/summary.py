"""What the demo reports: one progress report per step, and the summary of the whole story.

Amounts are in wei (integers; decimal strings in JSON, since JavaScript numbers lose precision
above 2^53). Nothing here holds a row, an identifier value or a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "Balances",
    "DatasetOutcome",
    "DemoSummary",
    "GrantOutcome",
    "JobOutcome",
    "Progress",
    "StepReport",
    "eth",
]


def eth(wei: int) -> str:
    """`wei` as ETH with up to 6 decimals, e.g. ``0.05 ETH``."""
    value = (Decimal(wei) / Decimal(10**18)).quantize(Decimal("0.000001"))
    text = format(value.normalize(), "f")
    return f"{text} ETH"


@dataclass(frozen=True, slots=True)
class StepReport:
    """One step of the story, done: its name, a title and plain-text lines saying what happened."""

    name: str
    title: str
    lines: tuple[str, ...]
    seconds: float


#: Called after every step of the story.
Progress = Callable[[StepReport], None]


@dataclass(frozen=True, slots=True)
class DatasetOutcome:
    """A hospital's dataset: ingested, registered, its executor allowed."""

    hospital: str
    owner: str
    name: str
    dataset_id: int
    rows: int
    contributors: int
    commitment: str
    register_tx: str
    executor_tx: str


@dataclass(frozen=True, slots=True)
class GrantOutcome:
    """A grant an owner signed (EIP-712) and the operator relayed with ``issueWithSig``."""

    hospital: str
    dataset_id: int
    algorithm: str
    grant_id: str
    price_wei: int
    signature_valid: bool
    tx_hash: str


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """A job the drug maker paid for: its escrows, record, receipt, result and verdict."""

    name: str
    algorithm: str
    job_id: str
    status: str
    dataset_ids: tuple[int, ...]
    paid_wei: int
    captured_wei: int
    escrow_txs: tuple[str, ...]
    record_tx: str
    receipt_hash: str
    result_hash: str
    result: dict[str, Any]
    verified: bool
    verdict: str


@dataclass(frozen=True, slots=True)
class Balances:
    """Balances (wei) of the story's accounts, by role."""

    consumer: int
    owners: dict[str, int]
    contributors: dict[str, int]
    vault: int

    def to_json(self, claimer: str) -> dict[str, Any]:
        """As JSON (decimal strings); ``contributor`` is the balance of `claimer`'s payout
        account (``<hospital>/<department>``)."""
        return {
            "consumer": str(self.consumer),
            "owners": {k: str(v) for k, v in self.owners.items()},
            "contributor": str(self.contributors[claimer]),
            "contributors": {k: str(v) for k, v in self.contributors.items()},
            "vault": str(self.vault),
        }


@dataclass(frozen=True)
class DemoSummary:
    """Everything the story did, for ``--json`` and for tests."""

    chain_id: int
    data_dir: str
    kept: bool
    contracts: dict[str, str]
    accounts: dict[str, Any]
    datasets: list[DatasetOutcome]
    grants: list[GrantOutcome]
    jobs: list[JobOutcome]
    index: dict[str, Any]
    epoch: dict[str, Any]
    claim: dict[str, Any]
    balances_before: Balances
    balances_after: Balances
    gas_wei: dict[str, Any]
    checks: dict[str, bool]
    seconds: float
    steps: list[StepReport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The summary as one JSON object (wei amounts as decimal strings)."""
        return {
            "format": "ledger.demo/1",
            "ok": all(self.checks.values()),
            "chain_id": self.chain_id,
            "data_dir": self.data_dir,
            "kept": self.kept,
            "contracts": self.contracts,
            "accounts": self.accounts,
            "datasets": [
                {
                    "hospital": d.hospital,
                    "owner": d.owner,
                    "name": d.name,
                    "dataset_id": d.dataset_id,
                    "rows": d.rows,
                    "contributors": d.contributors,
                    "commitment": d.commitment,
                    "register_tx": d.register_tx,
                    "executor_tx": d.executor_tx,
                }
                for d in self.datasets
            ],
            "grants": [
                {
                    "hospital": g.hospital,
                    "dataset_id": g.dataset_id,
                    "algorithm": g.algorithm,
                    "grant_id": g.grant_id,
                    "price_wei": str(g.price_wei),
                    "signature_valid": g.signature_valid,
                    "tx_hash": g.tx_hash,
                }
                for g in self.grants
            ],
            "jobs": [
                {
                    "name": j.name,
                    "algorithm": j.algorithm,
                    "job_id": j.job_id,
                    "status": j.status,
                    "dataset_ids": list(j.dataset_ids),
                    "paid_wei": str(j.paid_wei),
                    "captured_wei": str(j.captured_wei),
                    "escrow_txs": list(j.escrow_txs),
                    "record_tx": j.record_tx,
                    "receipt_hash": j.receipt_hash,
                    "result_hash": j.result_hash,
                    "result": j.result,
                    "verification": {"verified": j.verified, "verdict": j.verdict},
                }
                for j in self.jobs
            ],
            "index": self.index,
            "epoch": self.epoch,
            "claim": self.claim,
            "balances": {
                "before": self.balances_before.to_json(self.claim["contributor"]),
                "after": self.balances_after.to_json(self.claim["contributor"]),
            },
            "gas_wei": self.gas_wei,
            "checks": self.checks,
            "steps": [{"name": r.name, "seconds": round(r.seconds, 2)} for r in self.steps],
            "seconds": round(self.seconds, 2),
        }

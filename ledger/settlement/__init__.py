"""Settlement: captured revenue to contributors by the records each job used, in Merkle epochs.

`Settlement` (service) computes an epoch from the index and the owners' vaults, stores it,
publishes its root on ``RevenueVault``, serves proofs and sends claims; `allocation` holds the
exact integer arithmetic; `weights` the per-job contributor weights the vault records; `trees`
the OpenZeppelin-format entitlement trees; `reports` the CSV, JSON and PNG reports.
"""

from __future__ import annotations

from ledger.settlement.allocation import AuthorShare, Usage, allocate_epoch, largest_remainder
from ledger.settlement.results import ClaimOutcome, ClaimProof, EpochOutcome, VerifyReport
from ledger.settlement.service import ETH, Settlement
from ledger.settlement.vaults import VaultIndex
from ledger.settlement.weights import record_weights, rows_used_by_contributor

__all__ = [
    "ETH",
    "AuthorShare",
    "ClaimOutcome",
    "ClaimProof",
    "EpochOutcome",
    "Settlement",
    "Usage",
    "VaultIndex",
    "VerifyReport",
    "allocate_epoch",
    "largest_remainder",
    "record_weights",
    "rows_used_by_contributor",
]

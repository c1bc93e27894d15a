"""Settlement: captured revenue to contributors by the records each job used, in Merkle epochs.

`Settlement` (service) computes an epoch from the index and the owners' vaults, stores it,
publishes its root on ``RevenueVault``, serves proofs and sends claims; `allocation` holds the
exact integer arithmetic; `weights` the per-job contributor weights the vault records; `trees`
the OpenZeppelin-format entitlement trees; `reports` the CSV, JSON and PNG reports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
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

# Names load their module on first use, so that importing a submodule (the `ledger`
# command imports this package's `cli`) does not import web3, pandas, SQLAlchemy ...
_MODULES: Final[dict[str, str]] = {
    "AuthorShare": "ledger.settlement.allocation",
    "ClaimOutcome": "ledger.settlement.results",
    "ClaimProof": "ledger.settlement.results",
    "ETH": "ledger.settlement.service",
    "EpochOutcome": "ledger.settlement.results",
    "Settlement": "ledger.settlement.service",
    "Usage": "ledger.settlement.allocation",
    "VaultIndex": "ledger.settlement.vaults",
    "VerifyReport": "ledger.settlement.results",
    "allocate_epoch": "ledger.settlement.allocation",
    "largest_remainder": "ledger.settlement.allocation",
    "record_weights": "ledger.settlement.weights",
    "rows_used_by_contributor": "ledger.settlement.weights",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

"""Errors of settlement: epochs, vault weights, entitlement trees, publication and claims.

LedgerError
└── SettlementError              settlement cannot go on; nothing was published
    ├── EpochRangeError          an epoch's block range overlaps, leaves a gap, or is empty
    ├── EpochNotFinalError       the range reaches past the final (confirmed, indexed) head
    ├── UnknownEpochError        the epoch asked for does not exist (or is not the next one)
    ├── EpochConflictError       the chain holds another root or total for the epoch
    ├── WeightsError             a job's vault weights are missing or malformed
    ├── VaultNotFoundError       no vault directory holds the dataset (or its version)
    ├── TreeInputError           a row of an address,amount CSV is bad (names the line)
    ├── NothingToClaimError      the account has nothing due (claim would revert)
    └── NoEntitlementError       the account is in no published tree of the token
"""

from __future__ import annotations

from pathlib import Path

from ledger.errors import LedgerError

__all__ = [
    "AddressError",
    "EpochConflictError",
    "EpochNotFinalError",
    "EpochRangeError",
    "NoEntitlementError",
    "NothingToClaimError",
    "SettlementError",
    "StaleProofError",
    "TreeInputError",
    "UnknownEpochError",
    "VaultNotFoundError",
    "WeightsError",
]


class SettlementError(LedgerError):
    """Raised when settlement cannot go on; nothing is published or stored."""


class AddressError(SettlementError, ValueError):
    """Raised when a token or account is not an address; names the field."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"{field} must be a 0x-prefixed 20-byte address (EIP-55 if mixed case)")


class EpochRangeError(SettlementError, ValueError):
    """Raised when an epoch's block range overlaps the previous epoch, leaves a gap, or is empty."""

    def __init__(self, token: str, epoch: int, field: str, rule: str) -> None:
        self.token = token
        self.epoch = epoch
        self.field = field
        self.rule = rule
        super().__init__(f"epoch {epoch} of token {token}: {field} {rule}")


class EpochNotFinalError(SettlementError):
    """Raised when an epoch would end past the last final block (confirmed and indexed), or
    nothing is indexed yet (`final_block` is None)."""

    def __init__(self, to_block: int | None, final_block: int | None, reason: str) -> None:
        self.to_block = to_block
        self.final_block = final_block
        self.reason = reason
        if final_block is None:
            message = f"no block is final yet ({reason}); run `ledger index` first"
        else:
            message = (
                f"to_block {to_block} is not final yet: the last final block is {final_block} "
                f"({reason}); wait, or run `ledger index` first"
            )
        super().__init__(message)


class UnknownEpochError(SettlementError, LookupError):
    """Raised when an epoch does not exist, or is not the next one to create."""

    def __init__(self, token: str, epoch: int, reason: str) -> None:
        self.token = token
        self.epoch = epoch
        self.reason = reason
        super().__init__(f"epoch {epoch} of token {token}: {reason}")


class EpochConflictError(SettlementError):
    """Raised when the chain holds another root or total for an epoch than the one computed."""

    def __init__(self, token: str, epoch: int, expected: str, found: str) -> None:
        self.token = token
        self.epoch = epoch
        self.expected = expected
        self.found = found
        super().__init__(
            f"epoch {epoch} of token {token}: the chain holds root {found}, but the computed "
            f"root is {expected}; the settlement inputs changed or someone else published"
        )


class WeightsError(SettlementError):
    """Raised when a job's vault weights are missing or malformed; `path` is the weights file."""

    def __init__(self, job_id: str, dataset_id: int, path: Path | None, reason: str) -> None:
        self.job_id = job_id
        self.dataset_id = dataset_id
        self.path = path
        self.reason = reason
        where = f" ({path})" if path is not None else ""
        super().__init__(
            f"weights of job {job_id} on dataset {dataset_id}{where}: {reason}; the owner's "
            "vault must record them (ledger.settlement.weights.record_weights) before settling"
        )


class VaultNotFoundError(SettlementError, LookupError):
    """Raised when no vault directory holds a dataset, or its version."""

    def __init__(self, dataset_id: int, reason: str) -> None:
        self.dataset_id = dataset_id
        self.reason = reason
        super().__init__(f"dataset {dataset_id}: {reason}")


class TreeInputError(SettlementError, ValueError):
    """Raised when a row of an ``address,amount`` CSV is bad; names the line and the field."""

    def __init__(self, line: int, field: str, rule: str) -> None:
        self.line = line
        self.field = field
        self.rule = rule
        super().__init__(f"line {line}: {field} {rule}")


class NothingToClaimError(SettlementError):
    """Raised when an account has nothing due: its cumulative entitlement is all claimed."""

    def __init__(self, token: str, account: str, cumulative: int, claimed: int) -> None:
        self.token = token
        self.account = account
        self.cumulative = cumulative
        self.claimed = claimed
        super().__init__(
            f"nothing to claim for {account} in token {token}: entitled to {cumulative} base "
            f"units so far and {claimed} already claimed; wait for the next epoch"
        )


class NoEntitlementError(SettlementError, LookupError):
    """Raised when an account is in no published entitlement tree of a token."""

    def __init__(self, token: str, account: str) -> None:
        self.token = token
        self.account = account
        super().__init__(
            f"{account} has no entitlement in token {token} in the latest published epoch"
        )


class StaleProofError(SettlementError):
    """Raised when the chain's current root of a token is not the root of the epoch a proof is
    from: a newer epoch was published (index it and settle again) or this epoch never was."""

    def __init__(self, token: str, epoch: int, root: str, chain_root: str) -> None:
        self.token = token
        self.epoch = epoch
        self.root = root
        self.chain_root = chain_root
        super().__init__(
            f"token {token}: the chain's current root {chain_root} is not the root {root} of "
            f"epoch {epoch}; claims only work against the latest published epoch"
        )

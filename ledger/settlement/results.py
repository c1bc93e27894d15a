"""What settlement returns: computed epochs, run outcomes, claim proofs, verification reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils.address import is_address, to_checksum_address

from ledger.merkle import StandardMerkleTree
from ledger.settlement.allocation import EpochAllocation
from ledger.settlement.errors import AddressError

__all__ = [
    "ClaimOutcome",
    "ClaimProof",
    "Computed",
    "EpochOutcome",
    "VerifyReport",
    "checked_address",
]


def checked_address(value: str, field_name: str) -> ChecksumAddress:
    """`value` as a checksum address.

    Raises:
        AddressError: not a 0x-prefixed 20-byte address (names the field).
    """
    if not isinstance(value, str) or not is_address(value):
        raise AddressError(field_name)
    return to_checksum_address(value)


@dataclass(frozen=True, slots=True)
class Computed:
    """An epoch computed but not stored: its range, allocation and tree."""

    token: str
    epoch: int
    from_block: int
    to_block: int
    usages: int
    allocation: EpochAllocation
    root: str
    accounts: list[str] = field(repr=False)
    tree: StandardMerkleTree = field(repr=False, compare=False)

    @property
    def total(self) -> int:
        """Sum of the tree's cumulative entitlements."""
        return self.allocation.total


@dataclass(frozen=True, slots=True)
class EpochOutcome:
    """What a run did with one epoch."""

    token: str
    epoch: int
    from_block: int
    to_block: int
    root: str
    total: int
    distributable: int
    held_total: int
    accounts: int
    usages: int
    status: str
    sent: bool
    tx_hash: str | None
    tree_file: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (amounts as decimal strings)."""
        data = {k: getattr(self, k) for k in self.__slots__}
        for key in ("total", "distributable", "held_total"):
            data[key] = str(data[key])
        return data


@dataclass(frozen=True, slots=True)
class ClaimProof:
    """An account's claim in a token: its cumulative entitlement, what it claimed, the proof."""

    token: str
    account: str
    epoch: int
    root: str
    cumulative: int
    claimed: int
    proof: list[str]

    @property
    def claimable(self) -> int:
        """What a claim would pay now."""
        return max(self.cumulative - self.claimed, 0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (amounts as decimal strings)."""
        return {
            "token": self.token,
            "account": self.account,
            "epoch": self.epoch,
            "root": self.root,
            "cumulative": str(self.cumulative),
            "claimed": str(self.claimed),
            "claimable": str(self.claimable),
            "proof": self.proof,
        }


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    """A claim sent: what was paid and in which transaction."""

    token: str
    account: str
    amount: int
    cumulative: int
    tx_hash: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """An epoch recomputed from the index and the vaults, against what was stored and published."""

    token: str
    epoch: int
    recomputed_root: str
    recomputed_total: int
    stored_root: str
    published_root: str | None
    differences: list[dict[str, str]]

    @property
    def ok(self) -> bool:
        """Whether the recomputed root is the stored and the published one."""
        return self.recomputed_root == self.stored_root == self.published_root

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "token": self.token,
            "epoch": self.epoch,
            "ok": self.ok,
            "recomputed_root": self.recomputed_root,
            "recomputed_total": str(self.recomputed_total),
            "stored_root": self.stored_root,
            "published_root": self.published_root,
            "differences": self.differences,
        }

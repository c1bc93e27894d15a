"""Exact integer allocation of captured revenue: the pure arithmetic of settlement.

For each captured usage (one grant's part of a job, on one dataset version) with net revenue
``N`` base units (what the consumer paid, less the platform fee):

1. the algorithm author's share, when the algorithm names one: ``floor(N * author_bps / 10^4)``;
2. the dataset owner's share of the rest: ``floor((N - author) * owner_share_bps / 10^4)``, with
   the owner's basis points as registered in ``DataRegistry`` when the usage was recorded;
3. the contributor pool, everything left, split over contributor pseudonyms in proportion to the
   rows of theirs the job used, by the largest-remainder method (Hamilton): every contributor
   gets ``floor(pool * w / W)`` and the ``pool - sum`` base units left go one each to the largest
   fractional remainders (ties to the smaller pseudonym). A job that used no attributed rows
   leaves its pool to the owner.

Nothing is rounded away: the parts of a usage add up to ``N`` exactly. Contributor amounts land in
a held bucket per ``(dataset id, pseudonym)`` and move to the contributor's payout address as
soon as the vault's contributor table names one; until then they are carried from epoch to epoch
(held, never lost) and are not part of any published tree. So for every epoch:
``sum(new entitlements) + (held after - held before) == distributable`` exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

__all__ = [
    "BPS",
    "AuthorShare",
    "EpochAllocation",
    "HeldKey",
    "Usage",
    "UsageSplit",
    "allocate_epoch",
    "largest_remainder",
    "split_usage",
]

#: Basis points in a whole.
BPS: Final = 10_000

K = TypeVar("K", bound=str | tuple[int, str])

#: A held bucket: (dataset id, contributor pseudonym).
HeldKey = tuple[int, str]


@dataclass(frozen=True, slots=True)
class AuthorShare:
    """An algorithm author's share of the net revenue of every job that ran the algorithm."""

    author: str
    bps: int

    def __post_init__(self) -> None:
        if not 0 <= self.bps <= BPS:
            raise ValueError(f"author bps must be in [0, {BPS}], got {self.bps}")


@dataclass(frozen=True, slots=True)
class Usage:
    """One captured usage of an epoch: a grant's part of a job on one dataset version."""

    job_id: str
    grant_id: str
    dataset_id: int
    version: int
    token: str
    net: int
    owner: str
    owner_share_bps: int
    algorithm_hash: str
    block_number: int
    log_index: int


@dataclass(frozen=True, slots=True)
class UsageSplit:
    """How one usage's net revenue was split; the parts add up to `net`."""

    net: int
    author: str | None
    author_amount: int
    owner_amount: int
    pool: int
    contributors: dict[str, int]


@dataclass
class EpochAllocation:
    """An epoch's result for one token: new cumulative entitlements and held buckets."""

    distributable: int = 0
    increments: dict[str, int] = field(default_factory=dict)
    cumulative: dict[str, int] = field(default_factory=dict)
    held: dict[HeldKey, int] = field(default_factory=dict)
    released: dict[HeldKey, int] = field(default_factory=dict)
    by_dataset: dict[int, dict[str, int]] = field(default_factory=dict)
    contributors: dict[HeldKey, int] = field(default_factory=dict)

    @property
    def held_total(self) -> int:
        """Base units carried for contributors without a payout address."""
        return sum(self.held.values())

    @property
    def total(self) -> int:
        """Sum of every cumulative entitlement (what the tree's epoch publishes)."""
        return sum(self.cumulative.values())


def largest_remainder(total: int, weights: Mapping[K, int]) -> dict[K, int]:
    """Split `total` base units in proportion to `weights`, exactly (largest-remainder method).

    Every key gets ``floor(total * w / W)``; the units left over go one each to the largest
    fractional remainders, ties broken by the smaller key. Keys of weight 0 get 0. The result
    sums to `total` exactly and each part is within one unit of its exact share.

    Raises:
        ValueError: `total` or a weight is negative, or all weights are 0 while `total` is not.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    whole = 0
    for key, weight in weights.items():
        if weight < 0:
            raise ValueError(f"weight of {key!r} must be >= 0, got {weight}")
        whole += weight
    if whole == 0:
        if total:
            raise ValueError("weights must not all be 0 when there is something to split")
        return dict.fromkeys(weights, 0)
    shares: dict[K, int] = {}
    remainders: list[tuple[int, K]] = []
    given = 0
    for key, weight in weights.items():
        share, remainder = divmod(total * weight, whole)
        shares[key] = share
        given += share
        if remainder:
            remainders.append((-remainder, key))
    left = total - given
    if left:
        remainders.sort()
        for _, key in remainders[:left]:
            shares[key] += 1
    return shares


def split_usage(
    usage: Usage, weights: Mapping[str, int], author: AuthorShare | None = None
) -> UsageSplit:
    """Split one usage's net revenue into author, owner and contributor parts (see module notes).

    Raises:
        ValueError: negative revenue or weights, or basis points out of range.
    """
    net = usage.net
    if net < 0:
        raise ValueError(f"net revenue must be >= 0, got {net}")
    if not 0 <= usage.owner_share_bps <= BPS:
        raise ValueError(f"owner share must be in [0, {BPS}] bps, got {usage.owner_share_bps}")
    author_amount = net * author.bps // BPS if author is not None else 0
    rest = net - author_amount
    owner_amount = rest * usage.owner_share_bps // BPS
    pool = rest - owner_amount
    used = {p: w for p, w in weights.items() if w}
    if any(w < 0 for w in used.values()):
        raise ValueError("weights must be >= 0")
    if not used:
        # Nobody's rows were used: the pool has no one to go to but the dataset's owner.
        return UsageSplit(net, _author_of(author), author_amount, owner_amount + pool, 0, {})
    return UsageSplit(
        net, _author_of(author), author_amount, owner_amount, pool, largest_remainder(pool, used)
    )


def _author_of(author: AuthorShare | None) -> str | None:
    return author.author if author is not None and author.bps else None


def allocate_epoch(
    usages: Iterable[tuple[Usage, Mapping[str, int]]],
    *,
    previous: Mapping[str, int],
    held_before: Mapping[HeldKey, int],
    payouts: Mapping[int, Mapping[str, str]],
    authors: Mapping[str, AuthorShare] | None = None,
) -> EpochAllocation:
    """One epoch of one token: add the epoch's usages to the previous cumulative entitlements.

    Args:
        usages: the epoch's captured usages, each with its job's weights (pseudonym -> rows).
        previous: cumulative entitlement per account after the previous epoch.
        held_before: held base units per (dataset id, pseudonym) after the previous epoch.
        payouts: per dataset, pseudonym -> payout address ("" when none is known yet), as the
            vault's contributor table stands at the end of the epoch.
        authors: algorithm hash -> the author's share, for algorithms that name one.

    Returns the allocation; ``sum(increments) + held_total - sum(held_before) ==
    distributable``.

    Raises:
        ValueError: as `split_usage`.
    """
    authors = authors or {}
    increments: defaultdict[str, int] = defaultdict(int)
    held: defaultdict[HeldKey, int] = defaultdict(int, held_before)
    contributed: defaultdict[HeldKey, int] = defaultdict(int)
    by_dataset: dict[int, dict[str, int]] = {}
    distributable = 0
    for usage, weights in usages:
        split = split_usage(usage, weights, authors.get(usage.algorithm_hash))
        distributable += split.net
        summary = by_dataset.setdefault(
            usage.dataset_id,
            {"usages": 0, "net": 0, "author": 0, "owner": 0, "pool": 0},
        )
        summary["usages"] += 1
        summary["net"] += split.net
        summary["author"] += split.author_amount
        summary["owner"] += split.owner_amount
        summary["pool"] += split.pool
        if split.author is not None and split.author_amount:
            increments[split.author] += split.author_amount
        if split.owner_amount:
            increments[usage.owner] += split.owner_amount
        for pseudonym, amount in split.contributors.items():
            if amount:
                held[(usage.dataset_id, pseudonym)] += amount
                contributed[(usage.dataset_id, pseudonym)] += amount
    released: dict[HeldKey, int] = {}
    still_held: dict[HeldKey, int] = {}
    no_payouts: Mapping[str, str] = {}
    for key, amount in held.items():
        payout = payouts.get(key[0], no_payouts).get(key[1], "")
        if payout:
            if amount:
                increments[payout] += amount
                released[key] = amount
        elif amount:
            still_held[key] = amount
    cumulative = dict(previous)
    for account, amount in increments.items():
        cumulative[account] = cumulative.get(account, 0) + amount
    return EpochAllocation(
        distributable=distributable,
        increments={a: v for a, v in increments.items() if v},
        cumulative={a: v for a, v in cumulative.items() if v},
        held=still_held,
        released=released,
        by_dataset=by_dataset,
        contributors=dict(contributed),
    )

"""Exactness of the allocation arithmetic: hypothesis properties and worked examples."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.settlement.allocation import (
    BPS,
    AuthorShare,
    Usage,
    allocate_epoch,
    largest_remainder,
    split_usage,
)

OWNER = "0x" + "11" * 20
AUTHOR = "0x" + "22" * 20
ALGO = "0x" + "ab" * 32
pseudonyms = st.integers(0, 40).map(lambda i: f"0x{i:064x}")
weights_st = st.dictionaries(pseudonyms, st.integers(0, 10**6), max_size=25)
amounts = st.integers(0, 2**88)


def usage(net: int, bps: int = 7000, dataset: int = 1, job: int = 1) -> Usage:
    return Usage(
        job_id=f"0x{job:064x}",
        grant_id="0x" + "00" * 32,
        dataset_id=dataset,
        version=1,
        token="0x" + "00" * 20,
        net=net,
        owner=OWNER,
        owner_share_bps=bps,
        algorithm_hash=ALGO,
        block_number=job,
        log_index=0,
    )


@given(amounts, weights_st)
@settings(max_examples=300)
def test_largest_remainder_is_exact_and_within_one_unit(
    total: int, weights: dict[str, int]
) -> None:
    whole = sum(weights.values())
    if whole == 0:
        if total:
            with pytest.raises(ValueError, match="must not all be 0"):
                largest_remainder(total, weights)
        else:
            assert set(largest_remainder(0, weights).values()) <= {0}
        return
    shares = largest_remainder(total, weights)
    assert sum(shares.values()) == total
    for key, weight in weights.items():
        exact = Fraction(total * weight, whole)
        assert abs(shares[key] - exact) < 1
        if weight == 0:
            assert shares[key] == 0


@given(amounts, weights_st)
def test_largest_remainder_ignores_the_order_of_the_weights(
    total: int, weights: dict[str, int]
) -> None:
    if not any(weights.values()):
        return
    reversed_weights = dict(reversed(list(weights.items())))
    assert largest_remainder(total, weights) == largest_remainder(total, reversed_weights)


def test_largest_remainder_gives_leftover_units_to_the_largest_remainders() -> None:
    # 10 over weights 1:1:1 -> 3.33 each; one unit left, the tie goes to the smallest key.
    assert largest_remainder(10, {"b": 1, "a": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    # 7 over 1:2:4 -> exactly 1, 2, 4.
    assert largest_remainder(7, {"x": 1, "y": 2, "z": 4}) == {"x": 1, "y": 2, "z": 4}
    # 5 over 3:1 -> 3.75 and 1.25: floor 3 + 1, remainder .75 wins the unit.
    assert largest_remainder(5, {"big": 3, "small": 1}) == {"big": 4, "small": 1}


def test_largest_remainder_refuses_negative_input() -> None:
    with pytest.raises(ValueError, match="total must be >= 0"):
        largest_remainder(-1, {"a": 1})
    with pytest.raises(ValueError, match="weight of 'a' must be >= 0"):
        largest_remainder(5, {"a": -1, "b": 2})


@given(amounts, st.integers(0, BPS), st.integers(0, BPS), weights_st)
@settings(max_examples=300)
def test_split_usage_parts_add_up_to_the_net_revenue(
    net: int, owner_bps: int, author_bps: int, weights: dict[str, int]
) -> None:
    split = split_usage(usage(net, owner_bps), weights, AuthorShare(AUTHOR, author_bps))
    assert split.author_amount + split.owner_amount + sum(split.contributors.values()) == net
    assert split.author_amount == net * author_bps // BPS
    if any(weights.values()):
        assert split.pool == sum(split.contributors.values())
        assert split.owner_amount == (net - split.author_amount) * owner_bps // BPS
    else:
        assert split.contributors == {} and split.pool == 0


def test_split_usage_worked_example() -> None:
    # 1,000,000 net, author 5 %, owner 70 % of the rest, pool 30 % of the rest by rows 2:1.
    split = split_usage(usage(1_000_000), {"p": 2, "q": 1}, AuthorShare(AUTHOR, 500))
    assert split.author_amount == 50_000
    assert split.owner_amount == 665_000
    assert split.pool == 285_000
    assert split.contributors == {"p": 190_000, "q": 95_000}


def test_split_usage_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="net revenue must be >= 0"):
        split_usage(usage(-1), {"p": 1})
    with pytest.raises(ValueError, match="owner share must be in"):
        split_usage(usage(10, bps=10_001), {"p": 1})
    with pytest.raises(ValueError, match="author bps must be in"):
        AuthorShare(AUTHOR, 10_001)


epoch_usages = st.lists(
    st.tuples(amounts, st.integers(0, BPS), st.integers(1, 3), weights_st), max_size=8
)


@given(st.lists(epoch_usages, min_size=1, max_size=4), st.sets(pseudonyms, max_size=40))
@settings(max_examples=100, deadline=None)
def test_epochs_conserve_revenue_exactly(
    epochs: list[list[tuple[int, int, int, dict[str, int]]]], unpaid: set[str]
) -> None:
    """Across epochs: published entitlements + held == all revenue, never more, never less;
    cumulative entitlements never decrease."""
    previous: dict[str, int] = {}
    held: dict[tuple[int, str], int] = {}
    revenue = 0
    authors = {ALGO: AuthorShare(AUTHOR, 300)}
    for number, items in enumerate(epochs, start=1):
        # A contributor without payout address in early epochs gets one from epoch 3 on.
        payouts = {
            d: {
                f"0x{i:064x}": ""
                if f"0x{i:064x}" in unpaid and number < 3
                else "0x" + f"{i + 1:040x}"
                for i in range(41)
            }
            for d in (1, 2, 3)
        }
        batch = [
            (usage(net, bps, dataset, job=number * 100 + k), weights)
            for k, (net, bps, dataset, weights) in enumerate(items)
        ]
        result = allocate_epoch(
            batch, previous=previous, held_before=held, payouts=payouts, authors=authors
        )
        assert sum(result.increments.values()) + result.held_total - sum(held.values()) == (
            result.distributable
        )
        for account, amount in previous.items():
            assert result.cumulative.get(account, 0) >= amount
        revenue += result.distributable
        assert result.total + result.held_total == revenue
        previous, held = result.cumulative, result.held
        if number >= 3:
            assert held == {}


def test_held_amounts_are_released_to_the_payout_address_once_known() -> None:
    p = "0x" + "aa" * 32
    payee = "0x" + "33" * 20
    first = allocate_epoch(
        [(usage(10_000, bps=0), {p: 1})], previous={}, held_before={}, payouts={1: {p: ""}}
    )
    assert first.increments == {} and first.held == {(1, p): 10_000}
    second = allocate_epoch(
        [], previous=first.cumulative, held_before=first.held, payouts={1: {p: payee}}
    )
    assert second.increments == {payee: 10_000} and second.held == {}
    assert second.released == {(1, p): 10_000} and second.distributable == 0


def test_a_job_that_used_no_attributed_rows_leaves_its_pool_to_the_owner() -> None:
    result = allocate_epoch([(usage(1000), {})], previous={}, held_before={}, payouts={})
    assert result.cumulative == {OWNER: 1000} and result.held == {}

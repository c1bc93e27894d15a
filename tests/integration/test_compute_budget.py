"""Privacy budget accounting on SQLite and PostgreSQL: reserve, commit, release, refusals,
concurrent reservations from threads and processes, and the engine's use of it."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.compute.backend import LocalBackend, OpenedDataset
from ledger.compute.budget import BudgetCharge, BudgetLedger
from ledger.compute.engine import ComputeEngine, ComputeRequest, GrantBudget
from ledger.compute.errors import (
    BackendError,
    BudgetExceededError,
    ComputeTimeoutError,
    InvalidRequestError,
    ReservationStateError,
)
from ledger.compute.templates._base import Partial, Template
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade
from ledger.store.models.budget import ReservationStatus
from tests.integration.compute_workers import reserve_and_commit
from tests.unit.compute.data import synthetic, write_dataset

G1 = "0x" + "01" * 32
G2 = "0x" + "02" * 32
EPS = 1_000_000


@pytest.fixture
def ledger_db(database_url: str) -> Iterator[BudgetLedger]:
    upgrade(database_url)
    engine = open_engine(database_url)
    yield BudgetLedger(engine)
    engine.dispose()


def charge(
    grant: str = G1, dataset: int = 1, amount: int = EPS, budget: int = 3 * EPS
) -> BudgetCharge:
    return BudgetCharge(grant, dataset, amount_micro=amount, budget_micro=budget)


def test_reserve_commit_release(ledger_db: BudgetLedger) -> None:
    first = ledger_db.reserve([charge()])
    second = ledger_db.reserve([charge(amount=EPS // 2)])
    state = ledger_db.state(G1, 1)
    assert state is not None
    assert (state.budget_micro, state.spent_micro, state.reserved_micro) == (3 * EPS, 0, 1_500_000)
    ledger_db.commit(first)
    ledger_db.release(second)
    state = ledger_db.state(G1, 1)
    assert state is not None
    assert (state.spent_micro, state.reserved_micro, state.remaining_micro) == (EPS, 0, 2 * EPS)
    assert ledger_db.reservation_status(first.reservation_id) is ReservationStatus.COMMITTED
    assert ledger_db.reservation_status(second.reservation_id) is ReservationStatus.RELEASED
    # Finishing twice the same way is harmless; the other way is refused.
    ledger_db.commit(first)
    with pytest.raises(ReservationStateError, match="was committed already"):
        ledger_db.release(first)
    with pytest.raises(ReservationStateError, match="is unknown"):
        ledger_db.commit("0xnot-a-reservation")


def test_request_over_budget_is_refused_and_reserves_nothing(ledger_db: BudgetLedger) -> None:
    ledger_db.commit(ledger_db.reserve([charge(amount=2 * EPS)]))
    ledger_db.reserve([charge(grant=G2, dataset=2, amount=EPS, budget=EPS)])
    with pytest.raises(BudgetExceededError) as caught:
        # The first charge fits, the second does not: neither is reserved.
        ledger_db.reserve([charge(amount=EPS), charge(grant=G2, dataset=2, amount=1, budget=EPS)])
    error = caught.value
    assert (error.grant_id, error.dataset_id, error.requested) == (G2, 2, 1)
    assert (error.budget, error.spent, error.reserved) == (EPS, 0, EPS)
    g1 = ledger_db.state(G1, 1)
    assert g1 is not None and g1.reserved_micro == 0 and g1.remaining_micro == EPS
    with pytest.raises(BudgetExceededError, match="only 1000000 of 3000000 are left"):
        ledger_db.reserve([charge(amount=EPS + 1)])
    ledger_db.reserve([charge(amount=EPS)])  # exactly what is left


def test_same_reservation_id_is_idempotent(ledger_db: BudgetLedger) -> None:
    one = ledger_db.reserve([charge()], reservation_id="job-1")
    again = ledger_db.reserve([charge()], reservation_id="job-1")
    assert one == again
    state = ledger_db.state(G1, 1)
    assert state is not None and state.reserved_micro == EPS
    with pytest.raises(ReservationStateError, match="other charges"):
        ledger_db.reserve([charge(amount=2)], reservation_id="job-1")


def test_chain_spent_raises_the_local_spent(ledger_db: BudgetLedger) -> None:
    ledger_db.commit(ledger_db.reserve([charge(amount=EPS)]))
    synced = BudgetCharge(G1, 1, amount_micro=EPS, budget_micro=3 * EPS, chain_spent_micro=2 * EPS)
    with pytest.raises(BudgetExceededError):
        ledger_db.reserve([BudgetCharge(G1, 1, EPS + 1, 3 * EPS, chain_spent_micro=2 * EPS)])
    ledger_db.reserve([synced])
    state = ledger_db.state(G1, 1)
    assert state is not None and (state.spent_micro, state.reserved_micro) == (2 * EPS, EPS)
    # A chain behind the local record never lowers it.
    ledger_db.release(ledger_db.reserve([BudgetCharge(G1, 1, 0, 3 * EPS, chain_spent_micro=0)]))
    state = ledger_db.state(G1, 1)
    assert state is not None and state.spent_micro == 2 * EPS


def test_bad_charges(ledger_db: BudgetLedger) -> None:
    ledger_db.reserve([charge()])
    with pytest.raises(InvalidRequestError, match="recorded with a budget of 3000000"):
        ledger_db.reserve([charge(budget=5 * EPS)])
    with pytest.raises(InvalidRequestError, match="only once"):
        ledger_db.reserve([charge(), charge()])
    with pytest.raises(InvalidRequestError, match="non-negative"):
        charge(amount=-1)


def test_stale_reservations_are_released(ledger_db: BudgetLedger) -> None:
    held = ledger_db.reserve([charge()])
    assert ledger_db.release_stale(timedelta(hours=1)) == []
    assert ledger_db.release_stale(timedelta(seconds=-1)) == [held.reservation_id]
    state = ledger_db.state(G1, 1)
    assert state is not None and state.reserved_micro == 0 and state.spent_micro == 0


def test_threads_cannot_overspend(ledger_db: BudgetLedger) -> None:
    barrier = threading.Barrier(12)

    def attempt(_: int) -> bool:
        barrier.wait()
        try:
            ledger_db.reserve([charge(amount=EPS, budget=5 * EPS)])
        except BudgetExceededError:
            return False
        return True

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    assert outcomes.count(True) == 5
    state = ledger_db.state(G1, 1)
    assert state is not None and state.reserved_micro == 5 * EPS


def test_processes_cannot_overspend(ledger_db: BudgetLedger, database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    workers = [
        context.Process(
            target=reserve_and_commit,
            args=(database_url, charge(amount=EPS, budget=7 * EPS), 4, start, out),
        )
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    start.set()
    wins = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert sum(wins) == 7
    state = ledger_db.state(G1, 1)
    assert state is not None and (state.spent_micro, state.reserved_micro) == (7 * EPS, 0)


# --- the engine and the budget ------------------------------------------------------------------


class _FailingBackend(LocalBackend):
    """A backend that breaks after the reservation (a seam, for failure paths)."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def aggregate(
        self, template: Template, params: Any, dataset: OpenedDataset, timeout: float | None
    ) -> Partial:
        self.calls += 1
        raise BackendError("failing", "worker lost")


MEAN = {"epsilon": 1.0, "column": "value", "bounds": {"lo": 0, "hi": 100}}


@pytest.fixture
def dataset(tmp_path: Path) -> Any:
    return write_dataset(tmp_path, synthetic(2000), parts=3)


def test_engine_spends_on_success_only(ledger_db: BudgetLedger, dataset: Any) -> None:
    grants = [GrantBudget(G1, 1, 2 * EPS)]
    result = ComputeEngine(budget=ledger_db).run(
        ComputeRequest("dp_mean", MEAN, [dataset], grants, 5)
    )
    assert [(s.grant_id, s.epsilon_micro) for s in result.epsilon_spent] == [(G1, EPS)]
    assert ledger_db.reservation_status(result.reservation_id or "") is ReservationStatus.COMMITTED
    failing = _FailingBackend()
    with pytest.raises(BackendError):
        ComputeEngine(budget=ledger_db, backend=failing).run(
            ComputeRequest("dp_mean", MEAN, [dataset], grants, 5, reservation_id="job-failed")
        )
    assert failing.calls == 1
    assert ledger_db.reservation_status("job-failed") is ReservationStatus.RELEASED
    with pytest.raises(ComputeTimeoutError):
        ComputeEngine(budget=ledger_db).run(
            ComputeRequest(
                "dp_mean", MEAN, [dataset], grants, 5, reservation_id="job-slow", timeout=0
            )
        )
    assert ledger_db.reservation_status("job-slow") is ReservationStatus.RELEASED
    state = ledger_db.state(G1, 1)
    assert state is not None and (state.spent_micro, state.reserved_micro) == (EPS, 0)
    # What is left is one epsilon: a request for 1.5 is refused before anything runs.
    refused = _FailingBackend()
    with pytest.raises(BudgetExceededError):
        ComputeEngine(budget=ledger_db, backend=refused).run(
            ComputeRequest("dp_mean", {**MEAN, "epsilon": 1.5}, [dataset], grants, 5)
        )
    assert refused.calls == 0


def test_engine_threads_cannot_overspend(ledger_db: BudgetLedger, dataset: Any) -> None:
    engine = ComputeEngine(budget=ledger_db)
    grants = [GrantBudget(G2, 1, 3 * EPS)]

    def attempt(_: int) -> bool:
        try:
            engine.run(ComputeRequest("dp_mean", MEAN, [dataset], grants, 5))
        except BudgetExceededError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count(True) == 3
    state = ledger_db.state(G2, 1)
    assert state is not None and (state.spent_micro, state.reserved_micro) == (3 * EPS, 0)

"""Worker processes for the budget concurrency tests (a light module: spawned children import
only the budget ledger and the database layer)."""

from __future__ import annotations

from typing import Any

from ledger.compute.budget import BudgetCharge, BudgetLedger
from ledger.compute.errors import BudgetExceededError
from ledger.store.database import open_engine

__all__ = ["reserve_and_commit"]


def reserve_and_commit(url: str, charge: BudgetCharge, attempts: int, start: Any, out: Any) -> None:
    """Try `attempts` reserve+commit cycles of `charge` once `start` is set; put the number that
    succeeded on `out`."""
    engine = open_engine(url)
    ledger = BudgetLedger(engine)
    start.wait()
    won = 0
    for _ in range(attempts):
        try:
            ledger.commit(ledger.reserve([charge]))
            won += 1
        except BudgetExceededError:
            pass
    engine.dispose()
    out.put(won)

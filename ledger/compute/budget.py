"""Privacy budget accounting: reserve before running, commit on success, release on failure.

Budgets are integers of micro-epsilon (1e-6), per (grant, dataset), as on chain. A job first
*reserves* what it will spend on each (grant, dataset) with one conditional UPDATE per row::

    UPDATE privacy_budgets SET reserved_micro = reserved_micro + :amount
     WHERE grant_id = :grant AND dataset_id = :dataset
       AND spent_micro + reserved_micro + :amount <= budget_micro

so two concurrent requests can never both take the last of a budget (SQLite serialises writers;
PostgreSQL re-checks the condition on the locked row). All rows of a reservation are reserved in
one transaction, in a fixed order (no deadlocks), or none are. A request that does not fit is
refused with `BudgetExceededError` before anything runs. When the result has been released the
reservation is *committed* (reserved moves to spent); if the job fails or times out it is
*released* (nothing spent). Reservations left behind by a crash are released by
`BudgetLedger.release_stale`.

How this maps to the chain (the final truth): a grant's ``epsilonBudget`` and ``epsilonSpent``
live in ``AccessGrants``; ``UsageLedger.recordUsage`` consumes ``epsilon`` per grant and reverts
(``AccessGrantsBudgetExceeded``) if it would exceed the budget. Here the budget row is created
from the grant's on-chain terms, and each reservation passes the grant's on-chain
``epsilonSpent`` as `BudgetCharge.chain_spent_micro`: the local spent is raised to it if it is
behind (spends by other executors, or a restored database), never lowered. A committed
reservation is what the job pipeline then records on chain with ``GrantUse.epsilon`` equal to
its amount; the chain refusing it means the result must not be delivered. The off-chain ledger
thus only ever refuses more than the chain would, never less.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, and_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ledger.compute.errors import BudgetExceededError, InvalidRequestError, ReservationStateError
from ledger.store.models.budget import (
    MICRO_MAX,
    BudgetReservation,
    PrivacyBudget,
    ReservationStatus,
)

__all__ = ["BudgetCharge", "BudgetLedger", "BudgetState", "Reservation"]

_BUDGETS: Final = PrivacyBudget.__table__  # type: ignore[attr-defined]
_RESERVATIONS: Final = BudgetReservation.__table__  # type: ignore[attr-defined]
_HASH_LENGTH: Final = 66


@dataclass(frozen=True, order=True)
class BudgetCharge:
    """What one job spends on one (grant, dataset), and the grant's terms from the chain."""

    grant_id: str
    dataset_id: int
    amount_micro: int
    budget_micro: int
    chain_spent_micro: int = 0

    def __post_init__(self) -> None:
        for field in ("amount_micro", "budget_micro", "chain_spent_micro"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidRequestError(f"grants.{field}", "must be a non-negative integer")
        if not self.grant_id or len(self.grant_id) > _HASH_LENGTH:
            raise InvalidRequestError("grants.grant_id", "must be a grant id (0x + 64 hex)")


@dataclass(frozen=True)
class Reservation:
    """A job's reservation: its id and the charges it holds."""

    reservation_id: str
    charges: tuple[BudgetCharge, ...]


@dataclass(frozen=True)
class BudgetState:
    """One (grant, dataset)'s budget as recorded here."""

    grant_id: str
    dataset_id: int
    budget_micro: int
    spent_micro: int
    reserved_micro: int

    @property
    def remaining_micro(self) -> int:
        """What a new reservation may still take."""
        return max(self.budget_micro - self.spent_micro - self.reserved_micro, 0)


class BudgetLedger:
    """The privacy budget ledger in the database at `engine` (migrated to revision 0004+).

    Each method is one transaction of its own and commits it: a reservation must be durable
    before the job it guards starts.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def reserve(
        self, charges: Sequence[BudgetCharge], *, reservation_id: str | None = None
    ) -> Reservation:
        """Reserve every charge, or none.

        Calling again with the same `reservation_id` and charges returns the existing
        reservation (a restarted job does not reserve twice).

        Raises:
            BudgetExceededError: a charge does not fit what its grant has left (nothing reserved).
            InvalidRequestError: a (grant, dataset) appears twice, or its budget differs from the
                one recorded for the grant.
            ReservationStateError: `reservation_id` is taken by other charges.
        """
        ordered = tuple(sorted(charges))
        keys = [(c.grant_id, c.dataset_id) for c in ordered]
        if len(set(keys)) != len(keys):
            raise InvalidRequestError("grants", "each (grant, dataset) may appear only once")
        rid = reservation_id or "0x" + uuid.uuid4().hex
        if not 0 < len(rid) <= _HASH_LENGTH:
            raise InvalidRequestError("reservation_id", f"must be 1 to {_HASH_LENGTH} characters")
        existing = self._existing(rid, ordered)
        if existing is not None:
            return existing
        now = datetime.now(UTC)
        try:
            with self._engine.begin() as connection:
                for charge in ordered:
                    self._reserve_one(connection, charge, now)
                connection.execute(
                    _RESERVATIONS.insert(),
                    [
                        {
                            "reservation_id": rid,
                            "grant_id": c.grant_id,
                            "dataset_id": c.dataset_id,
                            "amount_micro": c.amount_micro,
                            "status": ReservationStatus.RESERVED.value,
                            "created_at": now,
                            "finished_at": None,
                        }
                        for c in ordered
                    ],
                )
        except IntegrityError:
            # Another caller inserted the same reservation id first.
            existing = self._existing(rid, ordered)
            if existing is None:
                raise ReservationStateError(rid, "the id is taken by another reservation") from None
            return existing
        return Reservation(rid, ordered)

    def commit(self, reservation: Reservation | str) -> None:
        """Spend what `reservation` holds (idempotent once committed).

        Raises:
            ReservationStateError: the reservation is unknown or was released.
        """
        self._finish(reservation, ReservationStatus.COMMITTED)

    def release(self, reservation: Reservation | str) -> None:
        """Give back what `reservation` holds, spending nothing (idempotent once released).

        Raises:
            ReservationStateError: the reservation is unknown or was committed.
        """
        self._finish(reservation, ReservationStatus.RELEASED)

    def release_stale(self, older_than: timedelta) -> list[str]:
        """Release reservations still held after `older_than` (jobs that crashed); their ids."""
        cutoff = datetime.now(UTC) - older_than
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(_RESERVATIONS.c.reservation_id)
                .where(_RESERVATIONS.c.status == ReservationStatus.RESERVED.value)
                .where(_RESERVATIONS.c.created_at < cutoff)
                .distinct()
            ).all()
        released = []
        for (rid,) in rows:
            try:
                self.release(rid)
            except ReservationStateError:
                continue  # committed or released meanwhile
            released.append(str(rid))
        return released

    def state(self, grant_id: str, dataset_id: int) -> BudgetState | None:
        """The recorded budget of (`grant_id`, `dataset_id`), or None if never charged."""
        with self._engine.connect() as connection:
            row = (
                connection.execute(select(_BUDGETS).where(_key(grant_id, dataset_id)))
                .mappings()
                .first()
            )
        return None if row is None else _state(row)

    def reservation_status(self, reservation_id: str) -> ReservationStatus | None:
        """The status of a reservation, or None if unknown."""
        with self._engine.connect() as connection:
            status = connection.execute(
                select(_RESERVATIONS.c.status)
                .where(_RESERVATIONS.c.reservation_id == reservation_id)
                .limit(1)
            ).scalar()
        return None if status is None else ReservationStatus(status)

    def _reserve_one(self, connection: Connection, charge: BudgetCharge, now: datetime) -> None:
        budget = min(charge.budget_micro, MICRO_MAX)
        chain_spent = min(charge.chain_spent_micro, MICRO_MAX)
        # A write first: on SQLite it takes the write lock before anything is read.
        connection.execute(
            _insert_ignore(connection)(_BUDGETS)
            .values(
                grant_id=charge.grant_id,
                dataset_id=charge.dataset_id,
                budget_micro=budget,
                spent_micro=0,
                reserved_micro=0,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
        key = _key(charge.grant_id, charge.dataset_id)
        connection.execute(
            update(_BUDGETS)
            .where(key, _BUDGETS.c.spent_micro < chain_spent)
            .values(spent_micro=chain_spent, updated_at=now)
        )
        taken = connection.execute(
            update(_BUDGETS)
            .where(
                key,
                _BUDGETS.c.budget_micro == budget,
                _BUDGETS.c.spent_micro + _BUDGETS.c.reserved_micro + charge.amount_micro
                <= _BUDGETS.c.budget_micro,
            )
            .values(reserved_micro=_BUDGETS.c.reserved_micro + charge.amount_micro, updated_at=now)
        )
        if taken.rowcount == 1:
            return
        row = connection.execute(select(_BUDGETS).where(key)).mappings().one()
        state = _state(row)
        if state.budget_micro != budget:
            raise InvalidRequestError(
                "grants.budget_micro",
                f"grant {charge.grant_id} on dataset {charge.dataset_id} is recorded with a "
                f"budget of {state.budget_micro} micro-epsilon, not {budget}",
            )
        raise BudgetExceededError(
            charge.grant_id,
            charge.dataset_id,
            budget=state.budget_micro,
            spent=state.spent_micro,
            reserved=state.reserved_micro,
            requested=charge.amount_micro,
        )

    def _existing(self, rid: str, charges: tuple[BudgetCharge, ...]) -> Reservation | None:
        with self._engine.connect() as connection:
            rows = (
                connection.execute(
                    select(_RESERVATIONS).where(_RESERVATIONS.c.reservation_id == rid)
                )
                .mappings()
                .all()
            )
        if not rows:
            return None
        held = sorted((r["grant_id"], int(r["dataset_id"]), int(r["amount_micro"])) for r in rows)
        wanted = sorted((c.grant_id, c.dataset_id, c.amount_micro) for c in charges)
        if held != wanted:
            raise ReservationStateError(rid, "the id is taken by a reservation of other charges")
        return Reservation(rid, charges)

    def _finish(self, reservation: Reservation | str, status: ReservationStatus) -> None:
        rid = reservation if isinstance(reservation, str) else reservation.reservation_id
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            moved = connection.execute(
                update(_RESERVATIONS)
                .where(
                    _RESERVATIONS.c.reservation_id == rid,
                    _RESERVATIONS.c.status == ReservationStatus.RESERVED.value,
                )
                .values(status=status.value, finished_at=now)
            )
            if moved.rowcount == 0:
                current = connection.execute(
                    select(_RESERVATIONS.c.status)
                    .where(_RESERVATIONS.c.reservation_id == rid)
                    .limit(1)
                ).scalar()
                if current == status.value:
                    return
                reason = "is unknown" if current is None else f"was {current} already"
                raise ReservationStateError(rid, reason)
            entries = (
                connection.execute(
                    select(_RESERVATIONS).where(_RESERVATIONS.c.reservation_id == rid)
                )
                .mappings()
                .all()
            )
            for entry in sorted(entries, key=lambda e: (e["grant_id"], int(e["dataset_id"]))):
                amount = int(entry["amount_micro"])
                values: dict[str, Any] = {
                    "reserved_micro": _BUDGETS.c.reserved_micro - amount,
                    "updated_at": now,
                }
                if status is ReservationStatus.COMMITTED:
                    values["spent_micro"] = _BUDGETS.c.spent_micro + amount
                connection.execute(
                    update(_BUDGETS)
                    .where(_key(entry["grant_id"], int(entry["dataset_id"])))
                    .values(**values)
                )


def _key(grant_id: str, dataset_id: int) -> Any:
    return and_(_BUDGETS.c.grant_id == grant_id, _BUDGETS.c.dataset_id == dataset_id)


def _insert_ignore(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def _state(row: Any) -> BudgetState:
    return BudgetState(
        grant_id=row["grant_id"],
        dataset_id=int(row["dataset_id"]),
        budget_micro=int(row["budget_micro"]),
        spent_micro=int(row["spent_micro"]),
        reserved_micro=int(row["reserved_micro"]),
    )

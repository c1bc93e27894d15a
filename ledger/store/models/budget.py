"""Privacy budget accounting off chain: each (grant, dataset)'s budget, spent and reserved
micro-epsilon, and the reservations of running jobs (see ``ledger.compute.budget``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, String
from sqlmodel import Field, SQLModel

from ledger.store.models.base import HASH_LENGTH
from ledger.store.types import UInt256, UtcDateTime

__all__ = ["BudgetReservation", "PrivacyBudget", "ReservationStatus"]

#: Largest micro-epsilon a row holds (int64); larger grant budgets are stored as this (an
#: epsilon of 9.2e12, beyond any possible spend).
MICRO_MAX = 2**63 - 1


class ReservationStatus(StrEnum):
    """Where a reservation is in its life: reserved while the job runs, then committed (spent)
    or released (nothing spent)."""

    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"


class PrivacyBudget(SQLModel, table=True):
    """The budget of one grant on one dataset: what the grant allows, what jobs have spent, and
    what running jobs hold. Invariant: ``spent + reserved <= budget``."""

    __tablename__ = "privacy_budgets"

    grant_id: str = Field(primary_key=True, max_length=HASH_LENGTH)
    dataset_id: int = Field(primary_key=True, sa_type=UInt256)
    budget_micro: int = Field(sa_type=BigInteger, ge=0)
    spent_micro: int = Field(default=0, sa_type=BigInteger, ge=0)
    reserved_micro: int = Field(default=0, sa_type=BigInteger, ge=0)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class BudgetReservation(SQLModel, table=True):
    """One (grant, dataset) part of a job's reservation."""

    __tablename__ = "budget_reservations"

    reservation_id: str = Field(primary_key=True, max_length=HASH_LENGTH)
    grant_id: str = Field(primary_key=True, max_length=HASH_LENGTH)
    dataset_id: int = Field(primary_key=True, sa_type=UInt256)
    amount_micro: int = Field(sa_type=BigInteger, ge=0)
    status: ReservationStatus = Field(sa_type=String(16), index=True)
    created_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

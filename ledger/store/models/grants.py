"""AccessGrants: grants with their terms and current state, consumptions and revocations, and
the algorithm catalog (its changes and the current listing)."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, String
from sqlmodel import Field, SQLModel

from ledger.store.models.base import ADDRESS_LENGTH, HASH_LENGTH, CreatedRow, LoggedRow
from ledger.store.types import UInt256

__all__ = [
    "CatalogAlgorithm",
    "CatalogChange",
    "GrantBase",
    "GrantConsumption",
    "GrantRecord",
    "GrantStatus",
    "NonceInvalidation",
    "Revocation",
]


class GrantStatus(StrEnum):
    """A grant's status as the contract stores it (a transfer of the dataset also ends a grant:
    compare `GrantRecord.owner_epoch` with the dataset's)."""

    ACTIVE = "active"
    REVOKED = "revoked"


class GrantBase(SQLModel):
    """A grant's terms as signed (``IAccessGrants.Grant``), its epoch and its current use."""

    grant_id: str = Field(primary_key=True, max_length=HASH_LENGTH)
    dataset_id: int = Field(sa_type=UInt256, index=True)
    grantor: str = Field(max_length=ADDRESS_LENGTH, index=True)
    grantee: str = Field(max_length=ADDRESS_LENGTH, index=True)
    algorithm_hash: str = Field(max_length=HASH_LENGTH)
    purpose: str = Field(max_length=HASH_LENGTH)
    valid_from: int = Field(sa_type=UInt256)
    valid_until: int = Field(sa_type=UInt256)
    max_uses: int = Field(sa_type=BigInteger, ge=0)
    epsilon_budget: int = Field(sa_type=UInt256)
    payment_token: str = Field(max_length=ADDRESS_LENGTH)
    price_per_use: int = Field(sa_type=UInt256)
    nonce: int = Field(sa_type=UInt256)
    deadline: int = Field(sa_type=UInt256)
    owner_epoch: int = Field(ge=0)
    relayed: bool
    status: GrantStatus = Field(default=GrantStatus.ACTIVE, sa_type=String(16))
    uses: int = Field(default=0, sa_type=BigInteger, ge=0)
    epsilon_spent: int = Field(default=0, sa_type=UInt256)
    revoked_block: int | None = Field(default=None, sa_type=BigInteger)


class GrantRecord(GrantBase, CreatedRow, table=True):
    """Created by ``GrantIssued``; uses, privacy spent and status follow ``GrantConsumed``,
    ``GrantRevoked`` and ``NoncesInvalidated``."""

    __tablename__ = "grants"


class GrantConsumption(LoggedRow, table=True):
    """A ``GrantConsumed`` event: one job's use of a grant, and the totals after it."""

    __tablename__ = "grant_consumptions"

    grant_id: str = Field(max_length=HASH_LENGTH, index=True)
    uses: int = Field(sa_type=BigInteger, ge=0)
    epsilon: int = Field(sa_type=UInt256)
    total_uses: int = Field(sa_type=BigInteger, ge=0)
    total_epsilon: int = Field(sa_type=UInt256)


class Revocation(LoggedRow, table=True):
    """A ``GrantRevoked`` event."""

    __tablename__ = "revocations"

    grant_id: str = Field(max_length=HASH_LENGTH, index=True)
    dataset_id: int = Field(sa_type=UInt256)
    revoked_by: str = Field(max_length=ADDRESS_LENGTH)


class NonceInvalidation(LoggedRow, table=True):
    """A ``NoncesInvalidated`` event: every grant of `grantor` below `min_nonce` is revoked."""

    __tablename__ = "nonce_invalidations"

    grantor: str = Field(max_length=ADDRESS_LENGTH, index=True)
    min_nonce: int = Field(sa_type=UInt256)


class CatalogChange(LoggedRow, table=True):
    """A ``CatalogAlgorithmSet`` event: an algorithm listed in or delisted from the catalog."""

    __tablename__ = "catalog_changes"

    algorithm_hash: str = Field(max_length=HASH_LENGTH, index=True)
    listed: bool


class CatalogAlgorithm(CreatedRow, table=True):
    """Whether an algorithm is listed in the catalog (what grants for ``ANY_CATALOG_ALGORITHM``
    allow), after its latest ``CatalogAlgorithmSet``; an algorithm never set has no row."""

    __tablename__ = "catalog_algorithms"

    algorithm_hash: str = Field(primary_key=True, max_length=HASH_LENGTH)
    listed: bool

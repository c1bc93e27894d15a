"""The grant check from the index: one query, the same rules and reasons as on chain.

Used wherever an answer is needed fast (listings, the API, a job's admission); the job pipeline
still re-checks on chain (`ledger.rights.check.check_onchain`) right before running. The query is
built once and run through SQLAlchemy Core, and the row is read as it is (the indexer stored
checked, checksummed values), which keeps a check well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import and_, bindparam, select
from sqlmodel import Session

from ledger.indexer.state import table_of
from ledger.rights.check import (
    ANY_CATALOG_ALGORITHM,
    Decision,
    GrantStatus,
    JobRequest,
    Reason,
    decide,
)
from ledger.rights.typed_data import Grant
from ledger.store.models import CatalogAlgorithm, Dataset, Executor, GrantRecord
from ledger.store.models import GrantStatus as StoredStatus

__all__ = ["IndexedTerms", "check_from_index", "grant_from_record"]


_GRANTS = table_of(GrantRecord)
_DATASETS = table_of(Dataset)
_EXECUTORS = table_of(Executor)
_CATALOG = table_of(CatalogAlgorithm)

_CHECK_QUERY: Final = (
    select(
        _GRANTS.c.dataset_id,
        _GRANTS.c.grantee,
        _GRANTS.c.algorithm_hash,
        _GRANTS.c.purpose,
        _GRANTS.c.valid_from,
        _GRANTS.c.valid_until,
        _GRANTS.c.max_uses,
        _GRANTS.c.epsilon_budget,
        _GRANTS.c.nonce,
        _GRANTS.c.price_per_use,
        _GRANTS.c.status,
        _GRANTS.c.uses,
        _GRANTS.c.epsilon_spent,
        _GRANTS.c.owner_epoch,
        _DATASETS.c.owner_epoch.label("dataset_owner_epoch"),
        _EXECUTORS.c.allowed.label("executor_allowed"),
    )
    .select_from(_GRANTS)
    .outerjoin(_DATASETS, _DATASETS.c.dataset_id == _GRANTS.c.dataset_id)
    .outerjoin(
        _EXECUTORS,
        and_(
            _EXECUTORS.c.dataset_id == _GRANTS.c.dataset_id,
            _EXECUTORS.c.owner_epoch == _DATASETS.c.owner_epoch,
            _EXECUTORS.c.executor == bindparam("executor"),
        ),
    )
    .where(_GRANTS.c.grant_id == bindparam("grant_id"))
)
_CATALOG_QUERY: Final = select(_CATALOG.c.listed).where(
    _CATALOG.c.algorithm_hash == bindparam("algorithm_hash")
)


@dataclass(frozen=True, slots=True)
class IndexedTerms:
    """The terms of an indexed grant that the rules read (see `GrantTerms`)."""

    dataset_id: int
    grantee: str
    algorithm_hash: bytes
    purpose: bytes
    valid_from: int
    valid_until: int
    max_uses: int
    epsilon_budget: int
    nonce: int
    price_per_use: int


def grant_from_record(row: GrantRecord) -> Grant:
    """The full signed terms of an indexed grant (checked, e.g. to relay or re-check them)."""
    return Grant(
        dataset_id=row.dataset_id,
        grantor=row.grantor,  # type: ignore[arg-type]
        grantee=row.grantee,  # type: ignore[arg-type]
        algorithm_hash=bytes.fromhex(row.algorithm_hash[2:]),
        purpose=bytes.fromhex(row.purpose[2:]),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        max_uses=row.max_uses,
        epsilon_budget=row.epsilon_budget,
        payment_token=row.payment_token,  # type: ignore[arg-type]
        price_per_use=row.price_per_use,
        nonce=row.nonce,
        deadline=row.deadline,
    )


def check_from_index(session: Session, grant_id: str, job: JobRequest) -> Decision:
    """Whether the indexed grant `grant_id` allows `job`, and if not, why.

    The index reflects the chain up to its cursor (minus the confirmation depth), so a grant
    revoked in the last blocks may still pass here: the pipeline's on-chain check catches it.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    connection = session.connection()
    row = (
        connection.execute(_CHECK_QUERY, {"grant_id": grant_id.lower(), "executor": job.executor})
        .mappings()
        .first()
    )
    if row is None:
        return Decision.no(Reason.UNKNOWN_GRANT, f"no indexed grant {grant_id}")
    terms = IndexedTerms(
        dataset_id=row["dataset_id"],
        grantee=row["grantee"],
        algorithm_hash=bytes.fromhex(row["algorithm_hash"][2:]),
        purpose=bytes.fromhex(row["purpose"][2:]),
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        max_uses=row["max_uses"],
        epsilon_budget=row["epsilon_budget"],
        nonce=row["nonce"],
        price_per_use=row["price_per_use"],
    )
    listed = False
    if terms.algorithm_hash == ANY_CATALOG_ALGORITHM:
        found = connection.execute(
            _CATALOG_QUERY, {"algorithm_hash": "0x" + job.algorithm_hash.hex()}
        ).first()
        listed = bool(found and found[0])
    status = GrantStatus(
        issued=True,
        revoked=row["status"] == StoredStatus.REVOKED,
        uses=row["uses"],
        epsilon_spent=row["epsilon_spent"],
        owner_epoch=row["owner_epoch"],
        # The index folds nonce invalidations into the grant's status already.
        min_nonce=0,
        dataset_owner_epoch=row["dataset_owner_epoch"],
        executor_allowed=bool(row["executor_allowed"]),
        algorithm_listed=listed,
    )
    return decide(terms, status, job)

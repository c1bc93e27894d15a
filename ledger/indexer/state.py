"""Recomputing state rows (datasets, grants, escrows, executors, the algorithm catalog) from the
event tables.

A state row's changing columns are a function of append-only event tables: a grant's uses are
the totals of its latest ``GrantConsumed``, its status follows its first revocation, and so on.
The indexer recomputes the entities a chunk touched after inserting the chunk, and a rollback
recomputes the entities the dropped events had touched after deleting them: one code path, so a
rollback leaves exactly what indexing the surviving events would have left.

Helpers here write through the caller's session and never commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar, cast

from sqlalchemy import RowMapping, Table, bindparam, delete, func, insert, select, update
from sqlmodel import Session, SQLModel

from ledger.indexer.rows import Touched
from ledger.store.models import (
    Capture,
    CatalogAlgorithm,
    CatalogChange,
    Dataset,
    DatasetVersion,
    Escrow,
    EscrowStatus,
    Executor,
    ExecutorChange,
    GrantConsumption,
    GrantRecord,
    GrantStatus,
    NonceInvalidation,
    OwnershipEpoch,
    Refund,
    RevenueSplit,
    Revocation,
)

__all__ = ["STATES", "refresh_state", "table_of"]

# Keys per IN (...) list: far below SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK: Final = 500
T = TypeVar("T")
Keys = Mapping[tuple[str, ...], set[tuple[Any, ...]]]


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a SQLModel table class."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def refresh_state(session: Session, touched: Touched) -> None:
    """Recompute every touched state entity from the event tables now in `session`.

    Raises:
        KeyError: `touched` names a state this module does not know (a mapping error).
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    for state, keys in touched.items():
        STATES[state](session, keys)


def _refresh_datasets(session: Session, keys: Keys) -> None:
    for part in _chunks(_single(keys, "dataset_id")):
        versions = _first_per_key(session, DatasetVersion, "dataset_id", part, newest=True)
        epochs = _first_per_key(session, OwnershipEpoch, "dataset_id", part, newest=True)
        splits = _first_per_key(session, RevenueSplit, "dataset_id", part, newest=True)
        updates = []
        for dataset_id in part:
            version, epoch, split = (m.get(dataset_id) for m in (versions, epochs, splits))
            if version is None or epoch is None or split is None:
                continue  # registered after the fork point: its row is gone already
            newest = max((version, epoch, split), key=_position)
            updates.append(
                {
                    "_key": dataset_id,
                    "version": version["version"],
                    "commitment": version["commitment"],
                    "contributors_root": version["contributors_root"],
                    "schema_hash": version["schema_hash"],
                    "metadata_hash": version["metadata_hash"],
                    "metadata_uri": version["metadata_uri"],
                    "owner": epoch["owner"],
                    "owner_epoch": epoch["owner_epoch"],
                    "owner_share_bps": split["owner_share_bps"],
                    "updated_block": newest["block_number"],
                    "updated_at": newest["block_time"],
                }
            )
        _update(session, Dataset, "dataset_id", updates)


def _refresh_grants(session: Session, keys: Keys) -> None:
    grants_table = table_of(GrantRecord)
    grants: dict[str, RowMapping] = {}
    for columns, values in keys.items():
        (column,) = columns
        for part in _chunks(sorted(v[0] for v in values)):
            query = select(
                grants_table.c.grant_id,
                grants_table.c.grantor,
                grants_table.c.nonce,
                grants_table.c.block_number,
                grants_table.c.log_index,
                grants_table.c.block_time,
            ).where(grants_table.c[column].in_(part))
            grants.update((row["grant_id"], row) for row in session.execute(query).mappings())
    invalidations_table = table_of(NonceInvalidation)
    for part in _chunks(sorted(grants)):
        consumed = _first_per_key(session, GrantConsumption, "grant_id", part, newest=True)
        revoked = _first_per_key(session, Revocation, "grant_id", part, newest=False)
        grantors = sorted({grants[g]["grantor"] for g in part})
        invalidations = (
            session.execute(
                select(invalidations_table)
                .where(invalidations_table.c.grantor.in_(grantors))
                .order_by(invalidations_table.c.block_number, invalidations_table.c.log_index)
            )
            .mappings()
            .all()
        )
        updates = []
        for grant_id in part:
            grant = grants[grant_id]
            consumption = consumed.get(grant_id)
            by_nonce = next(
                (
                    row
                    for row in invalidations
                    if row["grantor"] == grant["grantor"] and row["min_nonce"] > grant["nonce"]
                ),
                None,
            )
            revocation = min(
                (r for r in (revoked.get(grant_id), by_nonce) if r is not None),
                key=_position,
                default=None,
            )
            newest = max(
                (r for r in (grant, consumption, revocation) if r is not None), key=_position
            )
            updates.append(
                {
                    "_key": grant_id,
                    "uses": consumption["total_uses"] if consumption else 0,
                    "epsilon_spent": consumption["total_epsilon"] if consumption else 0,
                    "status": GrantStatus.REVOKED if revocation else GrantStatus.ACTIVE,
                    "revoked_block": revocation["block_number"] if revocation else None,
                    "updated_block": newest["block_number"],
                    "updated_at": newest["block_time"],
                }
            )
        _update(session, GrantRecord, "grant_id", updates)


def _refresh_escrows(session: Session, keys: Keys) -> None:
    escrows_table = table_of(Escrow)
    for part in _chunks(_single(keys, "escrow_id")):
        query = select(
            escrows_table.c.escrow_id,
            escrows_table.c.block_number,
            escrows_table.c.log_index,
            escrows_table.c.block_time,
        ).where(escrows_table.c.escrow_id.in_(part))
        escrows = {row["escrow_id"]: row for row in session.execute(query).mappings()}
        captures = _first_per_key(session, Capture, "escrow_id", part, newest=False)
        refunds = _first_per_key(session, Refund, "escrow_id", part, newest=False)
        updates = []
        for escrow_id, escrow in escrows.items():
            outcomes = [
                (row, status)
                for row, status in (
                    (captures.get(escrow_id), EscrowStatus.CAPTURED),
                    (refunds.get(escrow_id), EscrowStatus.REFUNDED),
                )
                if row is not None
            ]
            settled, status = min(outcomes, key=lambda o: _position(o[0]), default=(None, None))
            last = settled or escrow
            updates.append(
                {
                    "_key": escrow_id,
                    "status": status or EscrowStatus.HELD,
                    "settled_block": settled["block_number"] if settled else None,
                    "updated_block": last["block_number"],
                    "updated_at": last["block_time"],
                }
            )
        _update(session, Escrow, "escrow_id", updates)


def _refresh_executors(session: Session, keys: Keys) -> None:
    executors = table_of(Executor)
    changes_table = table_of(ExecutorChange)
    wanted = sorted(set().union(*keys.values()))
    for part in _chunks(sorted({key[0] for key in wanted})):
        history: dict[tuple[Any, ...], list[RowMapping]] = {}
        query = (
            select(changes_table)
            .where(changes_table.c.dataset_id.in_(part))
            .order_by(changes_table.c.block_number, changes_table.c.log_index)
        )
        for row in session.execute(query).mappings():
            key = (row["dataset_id"], row["executor"], row["owner_epoch"])
            history.setdefault(key, []).append(row)
        in_part = [key for key in wanted if key[0] in set(part)]
        session.execute(
            delete(executors).where(
                executors.c.dataset_id == bindparam("_dataset"),
                executors.c.executor == bindparam("_executor"),
                executors.c.owner_epoch == bindparam("_epoch"),
            ),
            [{"_dataset": d, "_executor": e, "_epoch": n} for d, e, n in in_part],
        )
        rows = []
        for key in in_part:
            if key not in history:
                continue  # every change of it was rolled back
            first, last = history[key][0], history[key][-1]
            rows.append(
                {
                    "dataset_id": key[0],
                    "executor": key[1],
                    "owner_epoch": key[2],
                    "allowed": last["allowed"],
                    "block_number": first["block_number"],
                    "log_index": first["log_index"],
                    "tx_hash": first["tx_hash"],
                    "block_time": first["block_time"],
                    "updated_block": last["block_number"],
                    "updated_at": last["block_time"],
                }
            )
        if rows:
            session.execute(insert(executors), rows)


def _refresh_catalog(session: Session, keys: Keys) -> None:
    catalog = table_of(CatalogAlgorithm)
    for part in _chunks(_single(keys, "algorithm_hash")):
        first = _first_per_key(session, CatalogChange, "algorithm_hash", part, newest=False)
        last = _first_per_key(session, CatalogChange, "algorithm_hash", part, newest=True)
        session.execute(delete(catalog).where(catalog.c.algorithm_hash.in_(part)))
        rows = [
            {
                "algorithm_hash": algorithm_hash,
                "listed": last[algorithm_hash]["listed"],
                "block_number": first[algorithm_hash]["block_number"],
                "log_index": first[algorithm_hash]["log_index"],
                "tx_hash": first[algorithm_hash]["tx_hash"],
                "block_time": first[algorithm_hash]["block_time"],
                "updated_block": last[algorithm_hash]["block_number"],
                "updated_at": last[algorithm_hash]["block_time"],
            }
            for algorithm_hash in part
            if algorithm_hash in last  # else every change of it was rolled back
        ]
        if rows:
            session.execute(insert(catalog), rows)


#: The state tables the mapping may touch, by name.
STATES: Final[Mapping[str, Callable[[Session, Keys], None]]] = {
    "datasets": _refresh_datasets,
    "grants": _refresh_grants,
    "escrows": _refresh_escrows,
    "executors": _refresh_executors,
    "catalog_algorithms": _refresh_catalog,
}


def _first_per_key(
    session: Session, model: type[SQLModel], column: str, keys: Sequence[Any], *, newest: bool
) -> dict[Any, RowMapping]:
    """Per key value, the newest (or oldest) row of an event table, by chain position."""
    table = table_of(model)
    order = (
        (table.c.block_number.desc(), table.c.log_index.desc())
        if newest
        else (table.c.block_number.asc(), table.c.log_index.asc())
    )
    rank = func.row_number().over(partition_by=table.c[column], order_by=order).label("_rank")
    ranked = select(table, rank).where(table.c[column].in_(keys)).subquery()
    rows = session.execute(select(ranked).where(ranked.c._rank == 1)).mappings()
    return {row[column]: row for row in rows}


def _update(session: Session, model: type[SQLModel], key: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        table = table_of(model)
        session.execute(update(table).where(table.c[key] == bindparam("_key")), rows)


def _position(row: Any) -> tuple[int, int]:
    return (row["block_number"], row["log_index"])


def _single(keys: Keys, column: str) -> list[Any]:
    values = keys.get((column,), set())
    return sorted(v[0] for v in values)


def _chunks(values: Sequence[T] | Iterable[T]) -> Iterator[list[T]]:
    items = list(values)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]

"""What settlement reads from the event index: captured usages of a block range, with the owner
and revenue split of their dataset at the time, and the dataset versions published so far."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from eth_utils.address import to_checksum_address
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ledger.settlement.allocation import Usage
from ledger.store.models import (
    DatasetVersion,
    IndexCursor,
    JobRecord,
    OwnershipEpoch,
    RevenueSplit,
    UsageRecord,
)

__all__ = ["captured_usages", "index_cursor", "tokens_with_revenue", "versions_by"]

_H = TypeVar("_H", OwnershipEpoch, RevenueSplit)
_T = TypeVar("_T")


def index_cursor(engine: Engine, chain_id: int) -> IndexCursor | None:
    """The index's cursor for `chain_id` (None if the chain was never indexed)."""
    with Session(engine) as session:
        return session.get(IndexCursor, chain_id)


def tokens_with_revenue(engine: Engine, from_block: int, to_block: int) -> list[str]:
    """Tokens with captured (paid) usage in ``[from_block, to_block]``, sorted."""
    query = (
        select(UsageRecord.token)
        .where(UsageRecord.block_number >= from_block, UsageRecord.block_number <= to_block)
        .where(UsageRecord.amount > 0)
        .distinct()
    )
    with Session(engine) as session:
        return sorted({to_checksum_address(t) for t in session.exec(query)})


def captured_usages(engine: Engine, token: str, from_block: int, to_block: int) -> list[Usage]:
    """Every paid usage of `token` recorded in ``[from_block, to_block]``, in chain order, with
    its net revenue (price less fee), the algorithm that ran, and the dataset's owner and owner
    share as they stood when it was recorded."""
    with Session(engine) as session:
        records = list(
            session.exec(
                select(UsageRecord)
                .where(col(UsageRecord.token).in_(_spellings(token)))
                .where(UsageRecord.block_number >= from_block, UsageRecord.block_number <= to_block)
                .order_by(col(UsageRecord.block_number), col(UsageRecord.log_index))
            )
        )
        records = [r for r in records if r.amount > 0]
        if not records:
            return []
        job_ids = sorted({r.job_id for r in records})
        algorithms: dict[str, str] = {}
        for chunk in _chunks(job_ids, 500):
            for job in session.exec(select(JobRecord).where(col(JobRecord.job_id).in_(chunk))):
                algorithms[job.job_id] = job.algorithm_hash
        dataset_ids = sorted({r.dataset_id for r in records})
        owners = _history(session, OwnershipEpoch, dataset_ids, to_block)
        splits = _history(session, RevenueSplit, dataset_ids, to_block)
    usages = []
    for r in records:
        position = (r.block_number, r.log_index)
        owner = _at(owners.get(r.dataset_id, []), position)
        split = _at(splits.get(r.dataset_id, []), position)
        usages.append(
            Usage(
                job_id=r.job_id,
                grant_id=r.grant_id,
                dataset_id=r.dataset_id,
                version=r.dataset_version,
                token=to_checksum_address(r.token),
                net=r.amount - r.fee,
                owner=to_checksum_address(owner.owner) if owner is not None else "",
                owner_share_bps=split.owner_share_bps if split is not None else 0,
                algorithm_hash=algorithms.get(r.job_id, ""),
                block_number=r.block_number,
                log_index=r.log_index,
            )
        )
    return usages


def versions_by(engine: Engine, dataset_ids: Sequence[int], to_block: int) -> dict[int, list[int]]:
    """The versions of each dataset published up to `to_block`, oldest first."""
    found: dict[int, list[int]] = {d: [] for d in dataset_ids}
    if not dataset_ids:
        return found
    with Session(engine) as session:
        for chunk in _chunks(list(dataset_ids), 500):
            rows = session.exec(
                select(DatasetVersion.dataset_id, DatasetVersion.version)
                .where(col(DatasetVersion.dataset_id).in_(chunk))
                .where(DatasetVersion.block_number <= to_block)
            )
            for dataset_id, version in rows:
                found.setdefault(dataset_id, []).append(version)
    return {d: sorted(set(v)) for d, v in found.items()}


def _history(
    session: Session, model: type[_H], dataset_ids: list[int], to_block: int
) -> dict[int, list[_H]]:
    history: dict[int, list[_H]] = {}
    for chunk in _chunks(dataset_ids, 500):
        rows = session.exec(
            select(model)
            .where(col(model.dataset_id).in_(chunk))
            .where(model.block_number <= to_block)
            .order_by(col(model.block_number), col(model.log_index))
        )
        for row in rows:
            history.setdefault(row.dataset_id, []).append(row)
    return history


def _at(rows: list[_H], position: tuple[int, int]) -> _H | None:
    """The last row at or before `position` (registration and usage never share a log)."""
    found = None
    for row in rows:
        if (row.block_number, row.log_index) <= position:
            found = row
        else:
            break
    return found


def _spellings(token: str) -> list[str]:
    return sorted({token, to_checksum_address(token), token.lower()})


def _chunks(items: list[_T], size: int) -> list[list[_T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]

"""The indexer's writes: a chunk's rows, the cursor, recent block hashes, rollback and reset.

Every function works in the caller's session and never commits: `ledger.indexer.service`
commits each chunk, rollback or reset as one transaction, so the cursor and the rows it vouches
for always move together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlmodel import Session, SQLModel

from ledger.indexer.rows import Projection, Projector
from ledger.indexer.state import refresh_state, table_of
from ledger.store.bulk import bulk_insert
from ledger.store.models import DERIVED_TABLES, ChainEvent, IndexCursor, IndexedBlock

__all__ = [
    "CursorMoved",
    "Position",
    "delete_index",
    "load_cursor",
    "move_cursor",
    "prune_blocks",
    "recent_blocks",
    "rollback_to",
    "write_chunk",
]


class CursorMoved(Exception):
    """Another indexer advanced the cursor first (internal signal: roll back and re-read)."""


@dataclass(frozen=True, slots=True)
class Position:
    """A block the index reaches: its number and hash (None before anything was indexed)."""

    number: int
    hash: str | None


def load_cursor(session: Session, chain_id: int) -> IndexCursor | None:
    """The cursor row of `chain_id`, if any."""
    return session.get(IndexCursor, chain_id)


def write_chunk(
    session: Session, projection: Projection, blocks: Mapping[int, tuple[str, datetime]]
) -> None:
    """Insert a chunk's raw events, derived rows and block hashes, then recompute the state
    entities it touched."""
    bulk_insert(session, table_of(ChainEvent), projection.events)
    for model, rows in projection.rows.items():
        bulk_insert(session, table_of(model), rows)
    bulk_insert(
        session,
        table_of(IndexedBlock),
        [{"number": n, "hash": h, "block_time": t} for n, (h, t) in sorted(blocks.items())],
    )
    refresh_state(session, projection.touched)


def move_cursor(
    session: Session,
    chain_id: int,
    *,
    expected: Position,
    new: Position,
    deploy_block: int,
    deploy_block_hash: str,
) -> None:
    """Move the cursor from `expected` to `new`, forward or back (created when nothing was indexed).

    Raises:
        CursorMoved: the stored cursor is not at `expected` any more.
    """
    now = datetime.now(UTC)
    cursor = table_of(IndexCursor)
    values = {"block_number": new.number, "block_hash": new.hash, "updated_at": now}
    if expected.hash is None and load_cursor(session, chain_id) is None:
        session.execute(
            insert(cursor),
            [
                {
                    "chain_id": chain_id,
                    "deploy_block": deploy_block,
                    "deploy_block_hash": deploy_block_hash,
                    **values,
                }
            ],
        )
        return
    result = session.execute(
        update(cursor)
        .where(
            cursor.c.chain_id == chain_id,
            cursor.c.block_number == expected.number,
            cursor.c.block_hash == expected.hash,
        )
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise CursorMoved(f"the cursor of chain {chain_id} is not at block {expected.number}")


def recent_blocks(session: Session, *, below: int, limit: int) -> list[tuple[int, str]]:
    """Stored ``(number, hash)`` of indexed blocks at or below `below`, newest first."""
    blocks = table_of(IndexedBlock)
    query = (
        select(blocks.c.number, blocks.c.hash)
        .where(blocks.c.number <= below)
        .order_by(blocks.c.number.desc())
        .limit(limit)
    )
    return [(int(n), str(h)) for n, h in session.execute(query)]


def prune_blocks(session: Session, *, below: int) -> None:
    """Forget the hashes of blocks below `below` (older than any reorg the index follows)."""
    blocks = table_of(IndexedBlock)
    session.execute(delete(blocks).where(blocks.c.number < below))


def rollback_to(session: Session, projector: Projector, fork: int) -> int:
    """Delete everything derived from blocks after `fork` and recompute the state the deleted
    events had changed; returns how many raw events were dropped. The cursor is left alone."""
    events = table_of(ChainEvent)
    dropped = session.execute(
        select(events.c.contract, events.c.event, events.c.args).where(events.c.block_number > fork)
    ).all()
    touched = projector.touched((str(c), str(e), _args(a)) for c, e, a in dropped)
    models: tuple[type[SQLModel], ...] = (*DERIVED_TABLES, ChainEvent)
    for model in models:
        table = table_of(model)
        session.execute(delete(table).where(table.c.block_number > fork))
    blocks = table_of(IndexedBlock)
    session.execute(delete(blocks).where(blocks.c.number > fork))
    refresh_state(session, touched)
    return len(dropped)


def delete_index(session: Session, chain_id: int) -> None:
    """Delete the whole index of `chain_id`: every derived row, raw event, block and the cursor."""
    models: tuple[type[SQLModel], ...] = (*DERIVED_TABLES, ChainEvent, IndexedBlock)
    for model in models:
        session.execute(delete(table_of(model)))
    cursor = table_of(IndexCursor)
    session.execute(delete(cursor).where(cursor.c.chain_id == chain_id))


def _args(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"stored event arguments are not an object: {value!r}")
    return value

"""Stored receipts: save a signed receipt, find it again by hash, job id or result hash, and
each dataset's hash chain head (what the next receipt's ``previous_receipt`` must be).

Functions take a `Session` and never commit: the caller ends the transaction (the job pipeline
stores the receipt in the same transaction as its own step). Saving is idempotent: the same
signed receipt stored twice is one row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ledger.provenance.errors import (
    ReceiptChainConflictError,
    ReceiptConflictError,
    ReceiptInvalidError,
    ReceiptNotFoundError,
)
from ledger.provenance.receipt import BatchInclusion, Receipt, SignedReceipt
from ledger.store.models.provenance import ReceiptDatasetRow, ReceiptRow

__all__ = [
    "find_receipt",
    "previous_receipts",
    "receipt_by_hash",
    "receipt_by_job",
    "receipt_by_result",
    "save_receipt",
    "signed_receipt_of",
]


def previous_receipts(session: Session, dataset_ids: Iterable[int]) -> dict[int, str | None]:
    """The latest stored receipt hash of each dataset (None for a dataset without receipts):
    the ``previous_receipt`` of the next receipt on it."""
    heads = _heads(session, dataset_ids)
    return {dataset_id: head[0] if head else None for dataset_id, head in heads.items()}


def save_receipt(session: Session, signed: SignedReceipt, *, batched: bool = False) -> bool:
    """Store `signed` and extend each of its datasets' hash chains; returns False if exactly
    this receipt was stored before (nothing written), True otherwise. Does not commit.

    With `batched`, the receipt waits for a `ReceiptBatcher` to seal it into a batch.

    Raises:
        ReceiptInvalidError: the signature does not recover to the receipt's executor.
        ReceiptConflictError: the job already has another receipt.
        ReceiptChainConflictError: a dataset's previous receipt is not its current head
            (another receipt was stored meanwhile; rebuild on `previous_receipts`).
    """
    receipt = signed.receipt
    if signed.signer() != receipt.executor:
        raise ReceiptInvalidError("signature", "must be the receipt executor's signature")
    existing = session.get(ReceiptRow, signed.hash)
    if existing is not None:
        if existing.job_id != receipt.job_id or existing.signature != signed.signature:
            raise ReceiptConflictError(receipt.job_id, existing.receipt_hash, signed.hash)
        return False
    other = session.exec(
        select(col(ReceiptRow.receipt_hash)).where(col(ReceiptRow.job_id) == receipt.job_id)
    ).one_or_none()
    if other is not None:
        raise ReceiptConflictError(receipt.job_id, other, signed.hash)
    heads = _heads(session, (entry.dataset_id for entry in receipt.datasets))
    for entry in receipt.datasets:
        head = heads[entry.dataset_id]
        if entry.previous_receipt != (head[0] if head else None):
            raise ReceiptChainConflictError(
                entry.dataset_id, head[0] if head else None, entry.previous_receipt
            )
    session.add(
        ReceiptRow(
            receipt_hash=signed.hash,
            job_id=receipt.job_id,
            result_hash=receipt.result_hash,
            executor=receipt.executor,
            chain_id=receipt.chain_id,
            canonical=receipt.canonical_bytes().decode("utf-8"),
            signature=signed.signature,
            batched=batched,
            batch_root=signed.batch.root if signed.batch else None,
            batch_proof=json.dumps(signed.batch.proof) if signed.batch else None,
            stored_at=datetime.now(UTC),
        )
    )
    for entry in receipt.datasets:
        session.add(
            ReceiptDatasetRow(
                dataset_id=entry.dataset_id,
                position=_next_position(heads[entry.dataset_id]),
                receipt_hash=signed.hash,
                previous_receipt=entry.previous_receipt,
                version=entry.version,
                grant_id=entry.grant_id,
            )
        )
    # Flush now so a concurrent writer's chain position surfaces here as an integrity error.
    try:
        session.flush()
    except IntegrityError:
        first = receipt.datasets[0]
        raise ReceiptChainConflictError(
            first.dataset_id, "another receipt stored concurrently", first.previous_receipt
        ) from None
    return True


def signed_receipt_of(row: ReceiptRow) -> SignedReceipt:
    """The signed receipt a stored row holds (with its batch inclusion once sealed)."""
    receipt = Receipt.model_validate_json(row.canonical)
    batch = None
    if row.batch_root is not None and row.batch_proof is not None:
        batch = BatchInclusion(root=row.batch_root, proof=json.loads(row.batch_proof))
    return SignedReceipt(
        receipt=receipt, hash=row.receipt_hash, signature=row.signature, batch=batch
    )


def receipt_by_hash(session: Session, receipt_hash: str) -> SignedReceipt:
    """The stored receipt with hash `receipt_hash`.

    Raises:
        ReceiptNotFoundError: none is stored.
    """
    row = session.get(ReceiptRow, receipt_hash.lower())
    if row is None:
        raise ReceiptNotFoundError("hash", receipt_hash)
    return signed_receipt_of(row)


def receipt_by_job(session: Session, job_id: str) -> SignedReceipt:
    """The stored receipt of job `job_id`.

    Raises:
        ReceiptNotFoundError: none is stored.
    """
    row = _one(session, col(ReceiptRow.job_id) == job_id.lower())
    if row is None:
        raise ReceiptNotFoundError("job id", job_id)
    return signed_receipt_of(row)


def receipt_by_result(session: Session, result_hash: str) -> SignedReceipt:
    """The stored receipt of the (first) job that released a result with `result_hash`.

    Raises:
        ReceiptNotFoundError: none is stored.
    """
    row = _one(session, col(ReceiptRow.result_hash) == result_hash.lower())
    if row is None:
        raise ReceiptNotFoundError("result hash", result_hash)
    return signed_receipt_of(row)


def find_receipt(session: Session, key: str) -> SignedReceipt | None:
    """The stored receipt whose job id, receipt hash or result hash is `key`, if any."""
    key = key.lower()
    for condition in (
        col(ReceiptRow.job_id) == key,
        col(ReceiptRow.receipt_hash) == key,
        col(ReceiptRow.result_hash) == key,
    ):
        row = _one(session, condition)
        if row is not None:
            return signed_receipt_of(row)
    return None


def _one(session: Session, condition: ColumnElement[bool]) -> ReceiptRow | None:
    statement = (
        select(ReceiptRow)
        .where(condition)
        .order_by(col(ReceiptRow.stored_at), col(ReceiptRow.receipt_hash))
        .limit(1)
    )
    return session.exec(statement).first()


def _heads(session: Session, dataset_ids: Iterable[int]) -> dict[int, tuple[str, int] | None]:
    """Each dataset's latest receipt and its position in the chain (None: no receipt yet)."""
    ids = sorted(set(dataset_ids))
    heads: dict[int, tuple[str, int] | None] = dict.fromkeys(ids)
    if not ids:
        return heads
    latest = (
        select(col(ReceiptDatasetRow.dataset_id), func.max(ReceiptDatasetRow.position).label("top"))
        .where(col(ReceiptDatasetRow.dataset_id).in_(ids))
        .group_by(col(ReceiptDatasetRow.dataset_id))
        .subquery()
    )
    rows = session.exec(
        select(
            col(ReceiptDatasetRow.dataset_id),
            col(ReceiptDatasetRow.receipt_hash),
            col(ReceiptDatasetRow.position),
        ).join(
            latest,
            (col(ReceiptDatasetRow.dataset_id) == latest.c.dataset_id)
            & (col(ReceiptDatasetRow.position) == latest.c.top),
        )
    )
    for dataset_id, receipt_hash, position in rows:
        heads[int(dataset_id)] = (receipt_hash, int(position))
    return heads


def _next_position(head: tuple[str, int] | None) -> int:
    return 1 if head is None else head[1] + 1

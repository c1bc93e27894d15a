"""Batched receipts: many receipt hashes under one Merkle root, anchored with one transaction.

Receipts stored with ``batched=True`` (`ledger.provenance.store.save_receipt`) wait until the
`ReceiptBatcher` seals them: every `BatchPolicy.max_receipts` receipts, or once the oldest has
waited `BatchPolicy.max_wait` seconds. Sealing builds a StandardMerkleTree over the leaves
``("bytes32" receiptHash)`` and stores the root and each receipt's proof in one transaction;
anchoring then sends ``UsageLedger.anchorBatch(root, count)`` and marks the batch anchored.

Crash safety: the batch is sealed (committed) before anything is sent, and every sealed batch is
looked up on chain with ``anchorOf(executor, root)`` before it is (re)sent; a root found there,
or a send refused with ``UsageLedgerBatchExists`` (a send of an earlier run mined meanwhile), is
marked anchored without another transaction. A crash at any point therefore neither loses a
batch nor anchors one twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from eth_typing import ChecksumAddress
from sqlalchemy import ColumnElement, Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from web3.contract import Contract

from ledger.chain import reverts
from ledger.chain.client import call
from ledger.chain.sender import TxSender
from ledger.merkle import StandardMerkleTree
from ledger.provenance.errors import ProvenanceError
from ledger.provenance.receipt import BATCH_LEAF_ENCODING, BatchInclusion
from ledger.store.models.provenance import BatchStatus, ReceiptBatchRow, ReceiptRow

__all__ = ["AnchoredBatch", "BatchPolicy", "ReceiptBatcher", "inclusion_of"]

_MAX_COUNT: Final = 2**32 - 1
_ZERO_ADDRESS: Final = "0x" + "00" * 20


class _Taken(Exception):
    """Another batcher claimed a receipt of the batch being sealed."""


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """When a batch is sealed: at `max_receipts` receipts, or when the oldest pending receipt
    has waited `max_wait` seconds (whichever comes first)."""

    max_receipts: int = 100
    max_wait: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_receipts <= _MAX_COUNT:
            raise ValueError(f"max_receipts must be 1..{_MAX_COUNT}, got {self.max_receipts}")
        if not self.max_wait >= 0:
            raise ValueError(f"max_wait must be >= 0 seconds, got {self.max_wait}")


@dataclass(frozen=True, slots=True)
class AnchoredBatch:
    """A batch anchored on chain; `proofs` maps each receipt hash to its inclusion proof.

    `recovered` says it was found anchored already (by an earlier run that crashed before
    writing it down) and nothing was sent; `gas_used` is None then.
    """

    root: str
    count: int
    tx_hash: str | None
    block_number: int | None
    gas_used: int | None
    recovered: bool
    proofs: dict[str, list[str]] = field(default_factory=dict)


class ReceiptBatcher:
    """Seals pending batched receipts into Merkle batches and anchors them (see module notes).

    One batcher per executor key; `flush` and `run` are safe to call again after a crash.
    """

    def __init__(
        self,
        engine: Engine,
        sender: TxSender,
        usage_ledger: Contract,
        *,
        policy: BatchPolicy | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._sender = sender
        self._usage = usage_ledger
        self.policy = policy or BatchPolicy()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()

    @property
    def executor(self) -> ChecksumAddress:
        """The address that anchors (and under which anchors are looked up)."""
        return self._sender.address

    def pending(self) -> int:
        """Batched receipts of this executor not yet sealed into a batch."""
        with Session(self._engine) as session:
            count = session.exec(
                select(func.count()).select_from(ReceiptRow).where(*self._pending_filter())
            ).one()
        return int(count)

    def due(self) -> bool:
        """Whether a batch should be sealed now under the policy."""
        with Session(self._engine) as session:
            count, oldest = session.exec(
                select(func.count(), func.min(ReceiptRow.stored_at)).where(*self._pending_filter())
            ).one()
        if not count:
            return False
        if count >= self.policy.max_receipts:
            return True
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        return bool(self._clock() - oldest >= timedelta(seconds=self.policy.max_wait))

    def flush(self, *, force: bool = False) -> list[AnchoredBatch]:
        """Anchor every sealed batch still unanchored, then seal and anchor pending receipts
        while the policy says so (all of them with `force`), `max_receipts` per batch.

        Raises:
            ContractRevert, TransactionFailedError, RpcUnavailableError: anchoring failed; the
                batch stays sealed and the next `flush` retries it.
        """
        with self._lock:
            done = [self._anchor(root) for root in self._sealed_roots()]
            while self.pending() and (force or self.due()):
                root = self._seal()
                if root is None:
                    break  # another batcher sealed them meanwhile; it anchors them
                done.append(self._anchor(root))
            return done

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Flush whenever due until `stop` is set (then flush what is pending and return)."""
        while not stop.wait(interval):
            self.flush()
        self.flush(force=True)

    def _pending_filter(self) -> tuple[ColumnElement[bool], ...]:
        return (
            col(ReceiptRow.batched).is_(True),
            col(ReceiptRow.batch_root).is_(None),
            col(ReceiptRow.executor) == self.executor,
        )

    def _sealed_roots(self) -> list[str]:
        with Session(self._engine) as session:
            rows = session.exec(
                select(col(ReceiptBatchRow.root))
                .where(
                    col(ReceiptBatchRow.status) == BatchStatus.SEALED,
                    col(ReceiptBatchRow.executor) == self.executor,
                )
                .order_by(col(ReceiptBatchRow.sealed_at), col(ReceiptBatchRow.root))
            )
            return [str(root) for root in rows]

    def _seal(self) -> str | None:
        """Seal up to `max_receipts` pending receipts into a batch; None if another batcher
        took them first (nothing is written then)."""
        try:
            return self._seal_once()
        except (_Taken, IntegrityError):
            return None

    def _seal_once(self) -> str | None:
        with Session(self._engine) as session, session.begin():
            hashes = list(
                session.exec(
                    select(col(ReceiptRow.receipt_hash))
                    .where(*self._pending_filter())
                    .order_by(col(ReceiptRow.stored_at), col(ReceiptRow.receipt_hash))
                    .limit(self.policy.max_receipts)
                )
            )
            if not hashes:
                return None
            tree = StandardMerkleTree.of([[h] for h in hashes], BATCH_LEAF_ENCODING)
            root = str(tree.root)
            chain_id = self._sender.w3.eth.chain_id
            session.add(
                ReceiptBatchRow(
                    root=root,
                    executor=self.executor,
                    chain_id=chain_id,
                    count=len(hashes),
                    status=BatchStatus.SEALED,
                    sealed_at=datetime.now(UTC),
                )
            )
            for index, receipt_hash in enumerate(hashes):
                claimed = session.execute(
                    update(ReceiptRow)
                    .where(
                        col(ReceiptRow.receipt_hash) == receipt_hash,
                        col(ReceiptRow.batch_root).is_(None),
                    )
                    .values(batch_root=root, batch_proof=json.dumps(tree.proof(index)))
                )
                if claimed.rowcount != 1:  # type: ignore[attr-defined]
                    raise _Taken  # rolls the whole seal back
        return root

    def _anchor(self, root: str) -> AnchoredBatch:
        with Session(self._engine) as session:
            batch = session.get(ReceiptBatchRow, root)
            if batch is None:
                raise ProvenanceError(f"receipt batch {root} is not stored")
            count = batch.count
        tx_hash: str | None = None
        block: int | None = None
        gas: int | None = None
        recovered = self._anchored_on_chain(root)
        if not recovered:
            fn = self._usage.functions.anchorBatch(bytes.fromhex(root[2:]), count)
            try:
                receipt = self._sender.send(fn)
            except reverts.UsageLedgerBatchExists:
                recovered = True  # an earlier run's transaction was mined meanwhile
            else:
                tx_hash = receipt["transactionHash"].to_0x_hex()
                block = int(receipt["blockNumber"])
                gas = int(receipt["gasUsed"])
        with Session(self._engine) as session, session.begin():
            stored = session.get(ReceiptBatchRow, root)
            assert stored is not None
            stored.status = BatchStatus.ANCHORED
            stored.tx_hash = tx_hash
            stored.block_number = block
            stored.anchored_at = datetime.now(UTC)
            session.add(stored)
        return AnchoredBatch(
            root=root,
            count=count,
            tx_hash=tx_hash,
            block_number=block,
            gas_used=gas,
            recovered=recovered,
            proofs=self._proofs(root),
        )

    def _anchored_on_chain(self, root: str) -> bool:
        anchor = call(self._usage.functions.anchorOf(self.executor, bytes.fromhex(root[2:])))
        return str(anchor[0]).lower() != _ZERO_ADDRESS

    def _proofs(self, root: str) -> dict[str, list[str]]:
        with Session(self._engine) as session:
            rows = session.exec(
                select(col(ReceiptRow.receipt_hash), col(ReceiptRow.batch_proof)).where(
                    col(ReceiptRow.batch_root) == root
                )
            )
            return {str(h): json.loads(proof or "[]") for h, proof in rows}


def inclusion_of(session: Session, receipt_hash: str) -> BatchInclusion | None:
    """The batch inclusion of a stored receipt once its batch is anchored (None before, and for
    receipts recorded per job)."""
    row = session.exec(
        select(col(ReceiptRow.batch_root), col(ReceiptRow.batch_proof), col(ReceiptBatchRow.status))
        .join(ReceiptBatchRow, col(ReceiptBatchRow.root) == col(ReceiptRow.batch_root))
        .where(col(ReceiptRow.receipt_hash) == receipt_hash.lower())
    ).one_or_none()
    if row is None or row[2] != BatchStatus.ANCHORED or row[0] is None or row[1] is None:
        return None
    return BatchInclusion(root=row[0], proof=json.loads(row[1]))

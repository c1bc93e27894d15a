"""`ReceiptBatcher` on SQLite and PostgreSQL against a real anvil: batches every N receipts or
after T seconds, inclusion proofs that `verify_result` accepts, recovery after a crash between
sending ``anchorBatch`` and writing it down, and gas per receipt at N = 100 and 1,000."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger.chain.sender import TxSender
from ledger.provenance.batcher import BatchPolicy, ReceiptBatcher, inclusion_of
from ledger.provenance.receipt import SignedReceipt
from ledger.provenance.store import previous_receipts, receipt_by_hash, save_receipt
from ledger.provenance.verify import verify_result
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade
from ledger.store.models.provenance import BatchStatus, ReceiptBatchRow
from tests.integration.chain import LedgerContracts
from tests.integration.test_provenance_support import (
    World,
    make_world,
    record,
    result_bytes,
    signed_job,
)


class Crash(Exception):
    """Stands for the process dying at that point."""


class CrashAfterSend(TxSender):
    """A real sender whose process 'dies' right after the transaction is mined."""

    def send(self, fn: ContractFunction, *, value: int = 0, gas: int | None = None) -> TxReceipt:
        super().send(fn, value=value, gas=gas)
        raise Crash("killed after anchorBatch was mined, before the database write")


class BlindBatcher(ReceiptBatcher):
    """A batcher that misses an anchor made meanwhile (a transaction of an earlier run that was
    still pending when it looked), so it sends again and meets ``UsageLedgerBatchExists``."""

    def _anchored_on_chain(self, root: str) -> bool:
        return False


@pytest.fixture(scope="module")
def world(ledger: LedgerContracts) -> World:
    return make_world(ledger, "batcher")


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


def store_batched(engine: Engine, world: World, count: int, tag: str) -> list[SignedReceipt]:
    """`count` signed receipts on the first dataset, chained, stored for batching."""
    dataset_id = world.datasets[0]
    stored = []
    with Session(engine) as session:
        for i in range(count):
            heads = previous_receipts(session, [dataset_id])
            signed = signed_job(world, [dataset_id], result={"tag": tag, "i": i}, previous=heads)
            assert save_receipt(session, signed, batched=True)
            stored.append(signed)
        session.commit()
    return stored


def sender_of(world: World, cls: type[TxSender] = TxSender) -> TxSender:
    return cls(world.w3, world.executor.key.to_0x_hex())


def batch_rows(engine: Engine) -> dict[str, ReceiptBatchRow]:
    with Session(engine) as session:
        return {row.root: row for row in session.exec(select(ReceiptBatchRow))}


def test_batches_every_n_receipts_with_verifiable_proofs(engine: Engine, world: World) -> None:
    receipts = store_batched(engine, world, 7, "n")
    batcher = ReceiptBatcher(
        engine, sender_of(world), world.contracts.usage, policy=BatchPolicy(3, 3600)
    )
    assert batcher.pending() == 7 and batcher.due()
    batches = batcher.flush()
    assert [b.count for b in batches] == [3, 3]
    assert batcher.pending() == 1 and not batcher.due()
    batches += batcher.flush(force=True)
    assert [b.count for b in batches] == [3, 3, 1] and batcher.pending() == 0
    usage = world.contracts.usage
    for batch in batches:
        assert not batch.recovered and batch.gas_used is not None
        anchor = usage.functions.anchorOf(world.executor.address, bytes.fromhex(batch.root[2:]))
        assert anchor.call()[2] == batch.count
    proved = {h for batch in batches for h in batch.proofs}
    assert proved == {s.hash for s in receipts}
    assert {row.status for row in batch_rows(engine).values()} == {BatchStatus.ANCHORED}
    with Session(engine) as session:
        for i, signed in enumerate(receipts):
            inclusion = inclusion_of(session, signed.hash)
            assert inclusion is not None and inclusion.proves(signed.hash)
            stored = receipt_by_hash(session, signed.hash)
            assert stored.batch == inclusion
            record(world, signed)  # a batched receipt verifies once its job is recorded too
            verdict = verify_result(result_bytes({"tag": "n", "i": i}), stored.to_json(), world.w3)
            assert verdict.verified and verdict.mode == "batch", verdict.message
    assert batcher.flush(force=True) == []


def test_batch_sealed_after_max_wait(engine: Engine, world: World) -> None:
    store_batched(engine, world, 2, "t")
    now = [datetime.now(UTC)]
    batcher = ReceiptBatcher(
        engine,
        sender_of(world),
        world.contracts.usage,
        policy=BatchPolicy(max_receipts=100, max_wait=30),
        clock=lambda: now[0],
    )
    assert not batcher.due() and batcher.flush() == []
    now[0] += timedelta(seconds=31)
    assert batcher.due()
    (batch,) = batcher.flush()
    assert batch.count == 2 and batcher.pending() == 0


def test_crash_between_anchor_and_database_write_is_recovered(engine: Engine, world: World) -> None:
    receipts = store_batched(engine, world, 4, "crash")
    crashing = ReceiptBatcher(
        engine, sender_of(world, CrashAfterSend), world.contracts.usage, policy=BatchPolicy(4, 60)
    )
    with pytest.raises(Crash):
        crashing.flush()
    (row,) = batch_rows(engine).values()
    assert row.status == BatchStatus.SEALED and row.count == 4
    root = bytes.fromhex(row.root[2:])
    assert world.contracts.usage.functions.anchorOf(world.executor.address, root).call()[2] == 4
    nonce = world.w3.eth.get_transaction_count(world.executor.address)
    restarted = ReceiptBatcher(
        engine, sender_of(world), world.contracts.usage, policy=BatchPolicy(4, 60)
    )
    (batch,) = restarted.flush()
    assert batch.recovered and batch.tx_hash is None and batch.root == row.root
    assert world.w3.eth.get_transaction_count(world.executor.address) == nonce  # nothing resent
    assert set(batch.proofs) == {s.hash for s in receipts}
    assert batch_rows(engine)[row.root].status == BatchStatus.ANCHORED
    with Session(engine) as session:
        stored = receipt_by_hash(session, receipts[0].hash)
    record(world, receipts[0])
    assert verify_result(
        result_bytes({"tag": "crash", "i": 0}), stored.to_json(), world.w3
    ).verified


def test_anchor_mined_meanwhile_is_recognised(engine: Engine, world: World) -> None:
    store_batched(engine, world, 2, "race")
    first = ReceiptBatcher(
        engine, sender_of(world, CrashAfterSend), world.contracts.usage, policy=BatchPolicy(2, 60)
    )
    with pytest.raises(Crash):
        first.flush()
    blind = BlindBatcher(engine, sender_of(world), world.contracts.usage, policy=BatchPolicy(2, 60))
    (batch,) = blind.flush()
    assert batch.recovered and batch.count == 2
    assert {row.status for row in batch_rows(engine).values()} == {BatchStatus.ANCHORED}


def test_two_batchers_seal_each_receipt_once(engine: Engine, world: World) -> None:
    receipts = store_batched(engine, world, 6, "two")
    sender = sender_of(world)  # one key, one sender: it is safe to share between threads
    batchers = [
        ReceiptBatcher(engine, sender, world.contracts.usage, policy=BatchPolicy(2, 60))
        for _ in range(2)
    ]
    errors: list[BaseException] = []

    def flush(batcher: ReceiptBatcher) -> None:
        try:
            batcher.flush(force=True)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=flush, args=(b,)) for b in batchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    rows = batch_rows(engine)
    assert sum(row.count for row in rows.values()) == 6
    assert {row.status for row in rows.values()} == {BatchStatus.ANCHORED}
    usage = world.contracts.usage
    for root, row in rows.items():
        anchor = usage.functions.anchorOf(world.executor.address, bytes.fromhex(root[2:])).call()
        assert anchor[2] == row.count
    with Session(engine) as session:
        for signed in receipts:
            inclusion = inclusion_of(session, signed.hash)
            assert inclusion is not None and inclusion.root in rows
            assert inclusion.proves(signed.hash)


def test_batch_policy_is_checked() -> None:
    for bad in ({"max_receipts": 0}, {"max_receipts": 2**32}, {"max_wait": -1.0}):
        with pytest.raises(ValueError, match="max_"):
            BatchPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [100, 1000])
def test_gas_per_receipt_in_batched_mode(
    tmp_path: Path, world: World, count: int, record_property: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'gas.db'}"
    upgrade(url)
    engine = open_engine(url)
    try:
        store_batched(engine, world, count, f"gas{count}")
        batcher = ReceiptBatcher(
            engine, sender_of(world), world.contracts.usage, policy=BatchPolicy(count, 60)
        )
        (batch,) = batcher.flush()
    finally:
        engine.dispose()
    assert batch.count == count and batch.gas_used is not None
    per_receipt = batch.gas_used / count
    record_property("anchor_gas", batch.gas_used)
    record_property("gas_per_receipt", per_receipt)
    assert per_receipt <= 1_000, f"{batch.gas_used} gas for {count} receipts"

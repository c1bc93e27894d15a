"""Stored receipts, lineage, uses of a dataset and W3C PROV export over a real index (SQLite and
PostgreSQL) of jobs recorded on a real anvil."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_utils.crypto import keccak
from prov.model import ProvDocument
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from web3 import Web3

from ledger.chain.sender import TxSender
from ledger.provenance.batcher import BatchPolicy, ReceiptBatcher
from ledger.provenance.errors import (
    LineageNotFoundError,
    LookupKeyError,
    ReceiptChainConflictError,
    ReceiptConflictError,
    ReceiptInvalidError,
)
from ledger.provenance.lineage import dataset_uses, lineage
from ledger.provenance.prov_export import prov_document, prov_json
from ledger.provenance.receipt import SignedReceipt, sign_receipt
from ledger.provenance.store import (
    previous_receipts,
    receipt_by_job,
    receipt_by_result,
    save_receipt,
)
from ledger.store.models.provenance import ReceiptDatasetRow, ReceiptRow
from tests.integration.chain import transact
from tests.integration.indexing import deploy_for_index, open_index
from tests.integration.test_provenance_support import (
    ALGO,
    PRICE,
    PURPOSE,
    World,
    make_world,
    record,
    signed_job,
)

FEE = PRICE * 250 // 10_000  # the deployment's platform fee (2.5 %)


@dataclass
class Story:
    """Three jobs: `first` on both datasets, `second` on dataset 0 version 2 (chained after
    `first`), `batched` on dataset 1 (anchored in a batch, chained after `first`), and
    `unstored`, recorded on chain but whose receipt the database never saw."""

    world: World
    deployment: object
    first: SignedReceipt
    second: SignedReceipt
    batched: SignedReceipt
    unstored: SignedReceipt
    results: dict[str, dict[str, object]]


@pytest.fixture(scope="module")
def story(w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Story:
    deployment, contracts = deploy_for_index(w3, tmp_path_factory.mktemp("deployments"))
    world = make_world(contracts, "lineage")
    d0, d1 = world.datasets
    v2 = tuple(keccak(text=f"lineage-v2:{part}") for part in ("rows", "contrib", "schema", "meta"))
    transact(
        contracts.registry.functions.publishVersion(d0, v2, "ipfs://v2"), world.owners[0].address
    )
    results: dict[str, dict[str, object]] = {
        "first": {"mean": 1.5},
        "second": {"mean": 2.5},
        "batched": {"mean": 3.5},
        "unstored": {"mean": 4.5},
    }
    first = signed_job(world, [d0, d1], result=results["first"])
    record(world, first)
    second = signed_job(
        world, [d0], result=results["second"], previous={d0: first.hash}, versions={d0: 2}
    )
    record(world, second)
    batched = signed_job(world, [d1], result=results["batched"], previous={d1: first.hash})
    record(world, batched)
    unstored = signed_job(world, [d1], result=results["unstored"])
    record(world, unstored)
    return Story(world, deployment, first, second, batched, unstored, results)


@pytest.fixture()
def engine(w3: Web3, story: Story, database_url: str) -> Iterator[Engine]:
    """The index of the story's chain, with the executor's receipts stored and the batched one
    anchored by the batcher."""
    indexer, engine = open_index(w3, story.deployment, database_url)  # type: ignore[arg-type]
    try:
        with Session(engine) as session:
            assert save_receipt(session, story.first)
            assert save_receipt(session, story.second)
            assert save_receipt(session, story.batched, batched=True)
            session.commit()
        sender = TxSender(w3, story.world.executor.key.to_0x_hex())
        batcher = ReceiptBatcher(
            engine, sender, story.world.contracts.usage, policy=BatchPolicy(10, 0)
        )
        (anchored,) = batcher.flush(force=True)
        assert anchored.count == 1
        indexer.run_once()
        yield engine
    finally:
        engine.dispose()


def test_lineage_of_a_job_and_of_its_result(engine: Engine, story: Story) -> None:
    world, first = story.world, story.first
    with Session(engine) as session:
        by_job = lineage(session, first.receipt.job_id)
        by_result = lineage(session, first.receipt.result_hash)
        by_receipt = lineage(session, first.hash)
    assert by_job == by_result == by_receipt
    assert by_job.executor == world.executor.address
    assert by_job.consumer == world.consumer
    assert by_job.algorithm_hash == "0x" + ALGO.hex() and by_job.purpose == "0x" + PURPOSE.hex()
    assert by_job.receipt_hash == first.hash
    assert by_job.result_hash == first.receipt.result_hash
    assert by_job.parameters_hash == first.receipt.parameters_hash
    assert by_job.recorded is not None and by_job.recorded.block_number > 0
    assert [d.dataset_id for d in by_job.datasets] == world.datasets
    for node, owner in zip(by_job.datasets, world.owners, strict=True):
        assert node.version == 1 and node.owner == owner.address
        assert node.commitment == world.commitments[node.dataset_id, 1]
        assert node.commitment_matches is True
    for grant in by_job.grants:
        _, grant_id = world.grants[grant.dataset_id]
        assert grant.grant_id == grant_id and grant.grantee == world.consumer
        assert (grant.uses, grant.epsilon, grant.price, grant.fee) == (1, 250_000, PRICE, FEE)
    data = by_job.to_json()
    assert data["result_hash"] == first.receipt.result_hash
    assert data["receipt"]["hash"] == first.hash
    # Versions and batches:
    with Session(engine) as session:
        second = lineage(session, story.second.receipt.result_hash)
        batched = lineage(session, story.batched.receipt.job_id)
    (node,) = second.datasets
    assert node.version == 2 and node.previous_commitment == world.commitments[node.dataset_id, 1]
    assert node.commitment_matches is True
    assert batched.batch_root is not None and batched.batch_anchored is not None
    assert batched.receipt is not None and batched.receipt.batch is not None
    assert batched.receipt.batch.proves(story.batched.hash)


def test_lineage_from_one_source_only(engine: Engine, story: Story) -> None:
    with Session(engine) as session:
        indexed_only = lineage(session, story.unstored.receipt.job_id)
    assert indexed_only.result_hash is None and indexed_only.receipt is None
    assert indexed_only.receipt_hash == story.unstored.hash
    assert indexed_only.grants[0].price == PRICE
    with Session(engine) as session:
        heads = previous_receipts(session, story.world.datasets[:1])
        fresh = signed_job(story.world, story.world.datasets[:1], result={"x": 1}, previous=heads)
        save_receipt(session, fresh)
        stored_only = lineage(session, fresh.receipt.result_hash)
        with pytest.raises(LineageNotFoundError, match="ledger index"):
            lineage(session, "0x" + "ee" * 32)
        for bad in ("0x1234", "job-1", "0x" + "zz" * 32):
            with pytest.raises(LookupKeyError, match="64 hex digits"):
                lineage(session, bad)
        session.rollback()
    assert stored_only.recorded is None and stored_only.result_hash == fresh.receipt.result_hash
    (grant,) = stored_only.grants
    assert grant.price is None and grant.epsilon == 250_000
    assert grant.grant_id == story.world.grants[story.world.datasets[0]][1]
    (node,) = stored_only.datasets
    assert node.commitment == story.world.commitments[node.dataset_id, 1]


def test_every_use_of_a_dataset(engine: Engine, story: Story) -> None:
    world = story.world
    d0, d1 = world.datasets
    with Session(engine) as session:
        uses0 = dataset_uses(session, d0)
        uses1 = dataset_uses(session, d1)
        assert dataset_uses(session, 999_999) == []
    assert [u.job_id for u in uses0] == [story.first.receipt.job_id, story.second.receipt.job_id]
    assert [u.dataset_version for u in uses0] == [1, 2]
    assert [u.job_id for u in uses1] == [
        s.receipt.job_id for s in (story.first, story.batched, story.unstored)
    ]
    for use in uses0 + uses1:
        assert use.consumer == world.consumer and use.purpose == "0x" + PURPOSE.hex()
        assert use.executor == world.executor.address
        assert (use.epsilon, use.price, use.fee, use.revenue) == (250_000, PRICE, FEE, PRICE - FEE)
        assert use.when.tzinfo is not None
    assert uses0[0].result_hash == story.first.receipt.result_hash
    assert uses1[-1].result_hash is None  # its receipt was never stored here
    assert uses0[0].to_json()["price"] == str(PRICE)


def test_prov_export_reads_back_without_loss(engine: Engine, story: Story, tmp_path: Path) -> None:
    with Session(engine) as session:
        lin = lineage(session, story.second.receipt.job_id)
    doc = prov_document(lin)
    text = prov_json(lin)
    back = ProvDocument.deserialize(content=text, format="json")
    assert back == doc
    assert sorted(map(str, back.get_records())) == sorted(map(str, doc.get_records()))
    kinds: dict[str, int] = {}
    for rec in back.get_records():
        kinds[rec.get_type().localpart] = kinds.get(rec.get_type().localpart, 0) + 1
    assert kinds["Entity"] == 6  # versions 2 and 1, grant, algorithm, result, receipt
    for relation in ("Usage", "Generation", "Association", "Attribution", "Derivation"):
        assert kinds.get(relation, 0) >= 1, relation
    assert f"ledger:result-{lin.result_hash}" in text and f"ledger:job-{lin.job_id}" in text
    assert f"eth:{story.world.executor.address}" in text
    out = tmp_path / "prov.json"
    out.write_text(text)
    assert ProvDocument.deserialize(source=str(out), format="json") == doc


def test_hash_chain_and_conflicts_leave_nothing_behind(engine: Engine, story: Story) -> None:
    world = story.world
    d0 = world.datasets[0]
    with Session(engine) as session:
        assert previous_receipts(session, [d0, 424242]) == {d0: story.second.hash, 424242: None}
        assert receipt_by_job(session, story.second.receipt.job_id) == story.second
        assert receipt_by_result(session, story.second.receipt.result_hash) == story.second
        assert not save_receipt(session, story.second)  # the same receipt again: no-op
        before = count_rows(session)
        stale = signed_job(world, [d0], result={"stale": 1}, previous={d0: story.first.hash})
        with pytest.raises(ReceiptChainConflictError, match=story.second.hash):
            save_receipt(session, stale)
        other = sign_receipt(
            story.second.receipt.model_copy(update={"suppression_k": 2}),
            world.executor.key.to_0x_hex(),
        )
        with pytest.raises(ReceiptConflictError, match=story.second.receipt.job_id):
            save_receipt(session, other)
        unsigned = story.second.model_copy(update={"signature": story.first.signature})
        with pytest.raises(ReceiptInvalidError, match="signature"):
            save_receipt(session, unsigned)
        assert count_rows(session) == before


def count_rows(session: Session) -> tuple[int, int]:
    return (
        session.exec(select(func.count()).select_from(ReceiptRow)).one(),
        session.exec(select(func.count()).select_from(ReceiptDatasetRow)).one(),
    )

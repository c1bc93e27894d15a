"""The indexer against a real anvil, on SQLite and PostgreSQL: every event in its table and in
agreement with the contracts, restart safety (twice, crash, SIGKILL), confirmation depth,
follow mode, and refusals of the wrong chain, deployment or database."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import Deployment, deploy
from ledger.chain.sender import TxSender
from ledger.errors import (
    IndexMismatchError,
    MigrationError,
    StaleDeploymentError,
    WrongChainError,
)
from ledger.indexer import Indexer, IndexProgress
from ledger.indexer.mapping import EVENT_MAP
from ledger.indexer.state import table_of
from ledger.settings import ANVIL_DEV_KEYS
from ledger.store.database import open_engine
from ledger.store.models import BatchAnchor, ChainEvent, IndexCursor
from tests.integration.chain import LedgerContracts, dev_accounts, rpc, transact
from tests.integration.indexing import (
    PRICE,
    Scenario,
    deploy_for_index,
    drive_every_event,
    index_rows,
    open_index,
)

ROOT = Path(__file__).resolve().parents[2]
FEE = PRICE * 2 * 250 // 10_000


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Anvil, Web3]]:
    with Anvil() as node:
        yield node, Web3(Web3.HTTPProvider(node.url))


@pytest.fixture(scope="module")
def deployed(
    chain: tuple[Anvil, Web3], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Deployment, LedgerContracts, Scenario]:
    """One deployment that saw one of every transaction (shared: tests only read the chain)."""
    _, w3 = chain
    deployment, ledger = deploy_for_index(w3, tmp_path_factory.mktemp("deployments"))
    return deployment, ledger, drive_every_event(ledger)


def rows(engine: Engine, model: type) -> list[dict[str, object]]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(table_of(model))).mappings()]


def test_every_event_lands_in_its_table(
    chain: tuple[Anvil, Web3],
    deployed: tuple[Deployment, LedgerContracts, Scenario],
    database_url: str,
) -> None:
    _, w3 = chain
    deployment, ledger, s = deployed
    indexer, engine = open_index(w3, deployment, database_url)
    try:
        report = indexer.run_once()
        tables = index_rows(engine)
    finally:
        engine.dispose()
    logs = w3.eth.get_logs(
        {"fromBlock": deployment.deploy_block, "address": list(deployment.addresses.values())}
    )
    assert report.events == len(logs) == len(tables["events"])
    assert report.end_block == w3.eth.block_number
    mapped = {event for _, event in EVENT_MAP}
    assert mapped <= {row["event"] for row in tables["events"]}, "the scenario misses an event"

    one, two, three = (s.datasets[k] for k in ("one", "two", "three"))
    datasets = {row["dataset_id"]: row for row in tables["datasets"]}
    assert datasets[one]["version"] == 2 and datasets[one]["owner_share_bps"] == 6000
    assert datasets[one]["metadata_uri"] == "ipfs://one-v2"
    assert (datasets[two]["owner"], datasets[two]["owner_epoch"]) == (s.other, 1)
    assert datasets[three]["owner"] == s.owner2.address
    assert len(tables["dataset_versions"]) == 4
    assert len(tables["ownership_epochs"]) == 4 and len(tables["transfers"]) == 4
    assert len(tables["revenue_splits"]) == 4 and len(tables["executor_changes"]) == 4
    executors = {(r["dataset_id"], r["executor"]): r["allowed"] for r in tables["executors"]}
    assert executors == {(one, s.executor): True, (two, s.executor): True, (two, s.other): False}

    grants = {row["grant_id"]: row for row in tables["grants"]}
    direct, signed, by_nonce = (grants[s.grants[k]] for k in ("direct", "signed", "by_nonce"))
    assert (direct["status"], direct["uses"], direct["epsilon_spent"]) == ("active", 2, 250_000)
    assert direct["relayed"] is False and signed["relayed"] is True
    assert direct["price_per_use"] == PRICE and direct["grantee"] == s.consumer
    assert signed["status"] == "revoked" and signed["revoked_block"] is not None
    assert by_nonce["status"] == "revoked" and by_nonce["nonce"] == 5
    assert [r["grant_id"] for r in tables["grant_consumptions"]] == [s.grants["direct"]]
    assert [r["grant_id"] for r in tables["revocations"]] == [s.grants["signed"]]
    assert [r["min_nonce"] for r in tables["nonce_invalidations"]] == [10]

    (job,) = tables["jobs"]
    assert (job["job_id"], job["executor"], job["consumer"]) == (s.job_id, s.executor, s.consumer)
    (used,) = tables["usage_records"]
    assert (used["grant_id"], used["uses"], used["amount"], used["fee"]) == (
        s.grants["direct"],
        2,
        2 * PRICE,
        FEE,
    )
    escrows = {row["escrow_id"]: row for row in tables["escrows"]}
    assert escrows[s.escrows["captured"]]["status"] == "captured"
    assert escrows[s.escrows["refunded"]]["status"] == "refunded"
    assert escrows[s.escrows["refunded"]]["refund_after"].tzinfo is not None
    (capture,) = tables["captures"]
    assert (capture["amount"], capture["fee"]) == (2 * PRICE - FEE, FEE)
    assert [r["escrow_id"] for r in tables["refunds"]] == [s.escrows["refunded"]]
    (anchor,) = tables["batch_anchors"]
    assert (anchor["root"], anchor["executor"], anchor["count"]) == (s.anchor_root, s.executor, 7)
    (epoch,) = tables["epochs"]
    assert (epoch["epoch"], epoch["total"]) == (1, s.claim)
    (claim,) = tables["claims"]
    assert (claim["account"], claim["amount"], claim["cumulative"]) == (s.other, s.claim, s.claim)
    catalog = {row["algorithm_hash"]: row["listed"] for row in tables["catalog_algorithms"]}
    assert catalog == s.catalog
    changes = [(r["algorithm_hash"], r["listed"]) for r in tables["catalog_changes"]]
    assert [listed for _, listed in changes] == [True, True, False]
    assert {algorithm for algorithm, _ in changes} == set(s.catalog)


def test_index_agrees_with_the_contracts(
    chain: tuple[Anvil, Web3],
    deployed: tuple[Deployment, LedgerContracts, Scenario],
    database_url: str,
) -> None:
    _, w3 = chain
    deployment, ledger, _ = deployed
    indexer, engine = open_index(w3, deployment, database_url)
    try:
        indexer.run_once()
        tables = index_rows(engine)
    finally:
        engine.dispose()
    for row in tables["datasets"]:
        head = ledger.registry.functions.headOf(row["dataset_id"]).call()
        assert (row["version"], row["owner_epoch"], row["owner_share_bps"]) == tuple(head[:3])
        assert row["owner"] == ledger.registry.functions.ownerOf(row["dataset_id"]).call()
    for row in tables["grants"]:
        uses, spent, epoch, _, status = ledger.grants.functions.stateOf(row["grant_id"]).call()
        assert (row["uses"], row["epsilon_spent"], row["owner_epoch"]) == (uses, spent, epoch)
        dead_nonce = row["nonce"] < ledger.grants.functions.minNonceOf(row["grantor"]).call()
        assert (row["status"] == "revoked") == (status == 2 or dead_nonce)
    for row in tables["escrows"]:
        escrow = ledger.vault.functions.escrowOf(row["escrow_id"]).call()
        assert escrow[2] == {"held": 1, "captured": 2, "refunded": 3}[row["status"]]
        assert (escrow[1], escrow[3]) == (row["amount"], row["payer"])
    for row in tables["executors"]:
        allowed = ledger.registry.functions.isExecutor(row["dataset_id"], row["executor"]).call()
        epoch = ledger.registry.functions.ownerEpochOf(row["dataset_id"]).call()
        assert row["allowed"] == allowed or row["owner_epoch"] != epoch
    assert tables["catalog_algorithms"], "the scenario lists no catalog algorithm"
    for row in tables["catalog_algorithms"]:
        algorithm = bytes.fromhex(row["algorithm_hash"][2:])
        assert row["listed"] == ledger.grants.functions.isCatalogAlgorithm(algorithm).call()


def test_second_run_writes_nothing_new(
    chain: tuple[Anvil, Web3],
    deployed: tuple[Deployment, LedgerContracts, Scenario],
    database_url: str,
) -> None:
    _, w3 = chain
    deployment, _, _ = deployed
    indexer, engine = open_index(w3, deployment, database_url, chunk_blocks=3)
    try:
        first = indexer.run_once()
        before = index_rows(engine)
        second = indexer.run_once()
        assert second.events == 0 and second.chunks == 0
        assert second.end_block == first.end_block
        assert index_rows(engine) == before
    finally:
        engine.dispose()


def test_crash_mid_backfill_resumes_from_the_cursor(
    chain: tuple[Anvil, Web3],
    deployed: tuple[Deployment, LedgerContracts, Scenario],
    database_url: str,
    tmp_path: Path,
) -> None:
    _, w3 = chain
    deployment, _, _ = deployed
    seen: list[IndexProgress] = []

    def crash_after_three_chunks(progress: IndexProgress) -> None:
        seen.append(progress)
        if len(seen) == 4:  # the first report is the start, then one per chunk
            raise KeyboardInterrupt

    crashing, engine = open_index(
        w3, deployment, database_url, crash_after_three_chunks, chunk_blocks=2, max_chunk_blocks=2
    )
    try:
        with pytest.raises(KeyboardInterrupt):
            crashing.run_once()
        with engine.connect() as connection:
            cursor = connection.execute(select(table_of(IndexCursor))).mappings().one()
        assert cursor["block_number"] == deployment.deploy_block - 1 + 6
        engine.dispose()
        restarted, engine = open_index(w3, deployment, database_url)
        resumed = restarted.run_once()
        assert resumed.start_block == cursor["block_number"] + 1
        resumed_rows = index_rows(engine)
    finally:
        engine.dispose()
    fresh, fresh_engine = open_index(w3, deployment, f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        fresh.run_once()
        assert resumed_rows == index_rows(fresh_engine)
    finally:
        fresh_engine.dispose()


KILLED_INDEXER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from web3 import Web3
    from ledger.chain.deploy import load_deployment
    from ledger.indexer import Indexer, IndexerOptions
    from ledger.store.database import open_engine

    rpc_url, deployments, db_url = sys.argv[1:4]
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    deployment = load_deployment(Path(deployments), w3.eth.chain_id)
    options = IndexerOptions(chunk_blocks=1, max_chunk_blocks=1)
    slow = lambda progress: time.sleep(0.05)  # a window to be killed in
    Indexer(w3, deployment, open_engine(db_url), options=options, progress=slow).run_once()
    """
)


def test_killed_process_resumes_from_the_cursor(database_url: str, tmp_path: Path) -> None:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment, ledger = deploy_for_index(w3, tmp_path / "deployments")
        for i in range(60):
            root = Web3.keccak(text=f"batch-{i}")
            transact(ledger.usage.functions.anchorBatch(root, i + 1), dev_accounts(w3)[3])
        indexer, engine = open_index(w3, deployment, database_url)
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    KILLED_INDEXER,
                    node.url,
                    str(tmp_path / "deployments"),
                    database_url,
                ],
                cwd=ROOT,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 60
            reached = -1
            while reached < deployment.deploy_block + 20 and time.monotonic() < deadline:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.02)
                with engine.connect() as connection:
                    found = connection.execute(
                        select(table_of(IndexCursor).c.block_number)
                    ).scalar_one_or_none()
                reached = -1 if found is None else found
            process.send_signal(signal.SIGKILL)
            process.wait()
            assert deployment.deploy_block + 20 <= reached < w3.eth.block_number, "kill mid-way"
            resumed = indexer.run_once()
            assert resumed.start_block > deployment.deploy_block + 20
            with engine.connect() as connection:
                anchors = connection.execute(
                    select(func.count())
                    .select_from(table_of(ChainEvent))
                    .where(table_of(ChainEvent).c.event == "BatchAnchored")
                ).scalar_one()
            assert anchors == 60
            resumed_rows = index_rows(engine)
        finally:
            engine.dispose()
        fresh, fresh_engine = open_index(w3, deployment, f"sqlite:///{tmp_path / 'fresh.db'}")
        try:
            fresh.run_once()
            assert resumed_rows == index_rows(fresh_engine)
        finally:
            fresh_engine.dispose()


def test_confirmation_depth_is_respected(database_url: str, tmp_path: Path) -> None:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment, ledger = deploy_for_index(w3, tmp_path)
        executor = dev_accounts(w3)[3]
        transact(ledger.usage.functions.anchorBatch(Web3.keccak(text="early"), 1), executor)
        rpc(w3, "evm_mine")
        rpc(w3, "evm_mine")
        transact(ledger.usage.functions.anchorBatch(Web3.keccak(text="late"), 1), executor)
        head = w3.eth.block_number
        indexer, engine = open_index(w3, deployment, database_url, confirmations=3)
        try:
            report = indexer.run_once()
            assert report.end_block == head - 2, "index only blocks with 3 confirmations"
            anchors = rows(engine, BatchAnchor)
            assert [a["count"] for a in anchors] == [1] and len(anchors) == 1
            rpc(w3, "evm_mine")
            assert indexer.run_once().end_block == head - 1
            assert len(rows(engine, BatchAnchor)) == 1
            rpc(w3, "evm_mine")
            assert indexer.run_once().end_block == head
            assert len(rows(engine, BatchAnchor)) == 2
        finally:
            engine.dispose()


def test_follow_indexes_new_blocks_until_stopped(database_url: str, tmp_path: Path) -> None:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment, ledger = deploy_for_index(w3, tmp_path)
        indexer, engine = open_index(w3, deployment, database_url)
        stop = threading.Event()
        thread = threading.Thread(target=indexer.follow, args=(stop, 0.05))
        thread.start()
        try:
            for i in range(3):
                root = Web3.keccak(text=f"followed-{i}")
                transact(ledger.usage.functions.anchorBatch(root, 1), dev_accounts(w3)[3])
            deadline = time.monotonic() + 20
            while len(rows(engine, BatchAnchor)) < 3:
                assert time.monotonic() < deadline, "follow did not pick up the new blocks"
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=20)
            engine.dispose()
        assert not thread.is_alive(), "follow must return once stopped"


def test_database_of_another_deployment_is_refused_until_reset(
    database_url: str, tmp_path: Path
) -> None:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        first, _ = deploy_for_index(w3, tmp_path)
        indexer, engine = open_index(w3, first, database_url)
        try:
            indexer.run_once()
        finally:
            engine.dispose()
        second, _ = deploy(w3, TxSender(w3, ANVIL_DEV_KEYS[0]), tmp_path, redeploy=True)
        other, engine = open_index(w3, second, database_url)
        try:
            with pytest.raises(IndexMismatchError, match="ledger index --reset"):
                other.run_once()
            other.reset()
            report = other.run_once()
            assert report.start_block == second.deploy_block
            with engine.connect() as connection:
                addresses = set(
                    connection.execute(select(table_of(ChainEvent).c.address)).scalars()
                )
            assert addresses <= set(second.addresses.values())
        finally:
            engine.dispose()


def test_wrong_chain_and_stale_deployment_are_refused(
    chain: tuple[Anvil, Web3],
    deployed: tuple[Deployment, LedgerContracts, Scenario],
    tmp_path: Path,
) -> None:
    _, w3 = chain
    deployment, _, _ = deployed
    url = f"sqlite:///{tmp_path / 'x.db'}"
    wrong_chain = dataclasses.replace(deployment, chain_id=1)
    indexer, engine = open_index(w3, wrong_chain, url)
    try:
        with pytest.raises(WrongChainError, match="31337"):
            indexer.run_once()
    finally:
        engine.dispose()
    stale = dataclasses.replace(deployment, deploy_block_hash="0x" + "12" * 32)
    indexer, engine = open_index(w3, stale, url)
    try:
        with pytest.raises(StaleDeploymentError, match="ledger deploy"):
            indexer.run_once()
    finally:
        engine.dispose()


def test_two_indexers_on_one_database_share_the_work(database_url: str, tmp_path: Path) -> None:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment, ledger = deploy_for_index(w3, tmp_path)
        for i in range(30):
            transact(
                ledger.usage.functions.anchorBatch(Web3.keccak(text=f"shared-{i}"), 1),
                dev_accounts(w3)[3],
            )
        pairs = [
            open_index(w3, deployment, database_url, chunk_blocks=1, max_chunk_blocks=1)
            for _ in range(2)
        ]
        errors: list[BaseException] = []

        def run(indexer: Indexer) -> None:
            try:
                indexer.run_once()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(indexer,)) for indexer, _ in pairs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        try:
            assert errors == []
            shared = index_rows(pairs[0][1])
        finally:
            for _, engine in pairs:
                engine.dispose()
        assert len(shared["batch_anchors"]) == 30
        fresh, engine = open_index(w3, deployment, f"sqlite:///{tmp_path / 'fresh.db'}")
        try:
            fresh.run_once()
            assert shared == index_rows(engine)
        finally:
            engine.dispose()


def test_unmigrated_database_is_refused_with_the_fix(
    chain: tuple[Anvil, Web3],
    deployed: tuple[Deployment, LedgerContracts, Scenario],
    tmp_path: Path,
) -> None:
    _, w3 = chain
    deployment, _, _ = deployed
    engine = open_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(MigrationError, match="ledger index"):
            Indexer(w3, deployment, engine).run_once()
    finally:
        engine.dispose()

"""The algorithm catalog in the index, on SQLite and PostgreSQL: ``setCatalogAlgorithm`` on a real
anvil listing, delisting and relisting an algorithm keeps one state row per algorithm (so "is it
listed" is one primary-key lookup), agreeing with ``isCatalogAlgorithm``; a reorg that drops the
latest change brings the previous one back and drops rows no surviving change made; the refresher
on its own recomputes from whatever changes remain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_utils.crypto import keccak
from sqlalchemy import Engine, delete, select
from sqlmodel import Session
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import Deployment
from ledger.indexer.rows import Touched
from ledger.indexer.state import refresh_state, table_of
from ledger.store.bulk import bulk_insert
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade
from ledger.store.models import CatalogAlgorithm, CatalogChange
from tests.integration.chain import LedgerContracts, rpc, transact
from tests.integration.indexing import deploy_for_index, index_rows, open_index

ALGORITHM = keccak(text="algorithm:dp-median:v3")
FRESH = keccak(text="algorithm:federated-logreg:v1")
OTHER = keccak(text="algorithm:synthetic-data:v2")
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def hex_of(algorithm: bytes) -> str:
    return "0x" + algorithm.hex()


@pytest.fixture()
def chain(tmp_path: Path) -> Iterator[tuple[Web3, Deployment, LedgerContracts]]:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment, ledger = deploy_for_index(w3, tmp_path / "deployments")
        yield w3, deployment, ledger


def set_catalog(ledger: LedgerContracts, algorithm: bytes, listed: bool) -> tuple[int, str]:
    """List or delist as the deployer (who holds CATALOG_ROLE); the block and transaction."""
    fn = ledger.grants.functions.setCatalogAlgorithm(algorithm, listed)
    receipt = transact(fn, ledger.admin)
    return int(receipt["blockNumber"]), "0x" + bytes(receipt["transactionHash"]).hex()


def listing(engine: Engine, algorithm: bytes) -> CatalogAlgorithm | None:
    """The state row of `algorithm`, by primary key (what the rights check asks)."""
    with Session(engine) as session:
        return session.get(CatalogAlgorithm, hex_of(algorithm))


def changes(engine: Engine) -> list[tuple[str, bool, int]]:
    table = table_of(CatalogChange)
    query = select(table.c.algorithm_hash, table.c.listed, table.c.block_number).order_by(
        table.c.block_number, table.c.log_index
    )
    with engine.connect() as connection:
        return [(str(a), bool(listed), int(n)) for a, listed, n in connection.execute(query)]


def on_chain(ledger: LedgerContracts, algorithm: bytes) -> bool:
    return bool(ledger.grants.functions.isCatalogAlgorithm(algorithm).call())


def test_list_delist_relist_keeps_the_latest_state(
    chain: tuple[Web3, Deployment, LedgerContracts], database_url: str
) -> None:
    w3, deployment, ledger = chain
    other_at, _ = set_catalog(ledger, OTHER, True)
    indexer, engine = open_index(w3, deployment, database_url)
    try:
        indexer.run_once()
        assert listing(engine, ALGORITHM) is None, "an algorithm never set has no row"

        listed_at, listed_tx = set_catalog(ledger, ALGORITHM, True)
        indexer.run_once()
        row = listing(engine, ALGORITHM)
        assert row is not None
        assert (row.listed, row.block_number, row.updated_block) == (True, listed_at, listed_at)
        assert row.tx_hash == listed_tx and row.block_time.tzinfo is not None
        assert row.listed == on_chain(ledger, ALGORITHM)

        delisted_at, _ = set_catalog(ledger, ALGORITHM, False)
        indexer.run_once()
        row = listing(engine, ALGORITHM)
        assert row is not None
        assert (row.listed, row.block_number, row.updated_block) == (False, listed_at, delisted_at)
        assert row.tx_hash == listed_tx, "the row keeps the event that created it"
        assert row.listed == on_chain(ledger, ALGORITHM)

        relisted_at, _ = set_catalog(ledger, ALGORITHM, True)
        indexer.run_once()
        row = listing(engine, ALGORITHM)
        assert row is not None
        assert (row.listed, row.block_number, row.updated_block) == (True, listed_at, relisted_at)
        assert row.listed == on_chain(ledger, ALGORITHM)

        # Two changes in one block: the later log wins.
        rpc(w3, "evm_setAutomine", False)
        for listed in (False, True, False):
            ledger.grants.functions.setCatalogAlgorithm(ALGORITHM, listed).transact(
                {"from": ledger.admin, "gas": 200_000}
            )
        rpc(w3, "evm_mine")
        rpc(w3, "evm_setAutomine", True)
        same_block = w3.eth.block_number
        indexer.run_once()
        row = listing(engine, ALGORITHM)
        assert row is not None
        assert (row.listed, row.updated_block) == (False, same_block)
        assert row.listed == on_chain(ledger, ALGORITHM)

        other = listing(engine, OTHER)
        assert other is not None
        assert (other.listed, other.updated_block) == (True, other_at), "OTHER was not changed"
        algorithm = hex_of(ALGORITHM)
        assert changes(engine) == [
            (hex_of(OTHER), True, other_at),
            (algorithm, True, listed_at),
            (algorithm, False, delisted_at),
            (algorithm, True, relisted_at),
            (algorithm, False, same_block),
            (algorithm, True, same_block),
            (algorithm, False, same_block),
        ]
    finally:
        engine.dispose()


def test_reorg_dropping_the_latest_change_restores_the_previous_one(
    chain: tuple[Web3, Deployment, LedgerContracts], database_url: str, tmp_path: Path
) -> None:
    w3, deployment, ledger = chain
    listed_at, _ = set_catalog(ledger, ALGORITHM, True)
    indexer, engine = open_index(w3, deployment, database_url)
    try:
        indexer.run_once()
        before = index_rows(engine)
        snapshot = rpc(w3, "evm_snapshot")
        fork_block = w3.eth.block_number

        # Branch A: ALGORITHM delisted, FRESH listed for the first time; then dropped.
        set_catalog(ledger, ALGORITHM, False)
        set_catalog(ledger, FRESH, True)
        indexer.run_once()
        delisted, fresh = listing(engine, ALGORITHM), listing(engine, FRESH)
        assert delisted is not None and fresh is not None
        assert (delisted.listed, fresh.listed) == (False, True)

        # Branch B, shorter: OTHER listed instead.
        assert rpc(w3, "evm_revert", snapshot) is True
        other_at, _ = set_catalog(ledger, OTHER, True)
        report = indexer.run_once()
        after = index_rows(engine)
        restored = listing(engine, ALGORITHM)
        assert listing(engine, FRESH) is None, "no change of FRESH survived: its row must go"
        other = listing(engine, OTHER)
    finally:
        engine.dispose()

    assert [r.fork_block for r in report.rollbacks] == [fork_block]
    assert restored is not None
    assert (restored.listed, restored.updated_block) == (True, listed_at)
    assert restored.listed == on_chain(ledger, ALGORITHM)
    assert other is not None and (other.listed, other.block_number) == (True, other_at)
    kept = [r for r in after["catalog_algorithms"] if r["algorithm_hash"] == hex_of(ALGORITHM)]
    assert kept == before["catalog_algorithms"], "ALGORITHM's row is not what it was"
    assert [(r["algorithm_hash"], r["listed"]) for r in after["catalog_changes"]] == [
        (hex_of(ALGORITHM), True),
        (hex_of(OTHER), True),
    ]
    fresh_index, fresh_engine = open_index(w3, deployment, f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        fresh_index.run_once()
        assert after == index_rows(fresh_engine), "the rolled-back index differs from a fresh one"
    finally:
        fresh_engine.dispose()


def change_row(algorithm: bytes, block: int, listed: bool) -> dict[str, object]:
    return {
        "block_number": block,
        "log_index": 0,
        "tx_hash": "0x" + f"{block:064x}",
        "block_time": WHEN,
        "algorithm_hash": hex_of(algorithm),
        "listed": listed,
    }


def test_refresher_recomputes_from_the_changes_left(database_url: str) -> None:
    """Without the rollback's own deletions: the refresher alone takes the latest surviving
    change, and deletes the row once none survives."""
    upgrade(database_url)
    engine = open_engine(database_url)
    table = table_of(CatalogChange)
    touched: Touched = {"catalog_algorithms": {("algorithm_hash",): {(hex_of(ALGORITHM),)}}}
    try:
        with Session(engine) as session:
            rows = [change_row(ALGORITHM, 10, True), change_row(ALGORITHM, 12, False)]
            bulk_insert(session, table, [*rows, change_row(OTHER, 11, True)])
            refresh_state(session, touched)
            session.commit()
        row = listing(engine, ALGORITHM)
        assert row is not None
        assert (row.listed, row.block_number, row.updated_block) == (False, 10, 12)
        assert listing(engine, OTHER) is None, "OTHER was not touched"

        with Session(engine) as session:
            session.execute(delete(table).where(table.c.block_number == 12))
            refresh_state(session, touched)
            session.commit()
        row = listing(engine, ALGORITHM)
        assert row is not None
        assert (row.listed, row.block_number, row.updated_block) == (True, 10, 10)

        with Session(engine) as session:
            session.execute(delete(table).where(table.c.algorithm_hash == hex_of(ALGORITHM)))
            refresh_state(session, touched)
            session.commit()
        assert listing(engine, ALGORITHM) is None
    finally:
        engine.dispose()

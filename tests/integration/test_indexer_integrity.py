"""Integrity errors while indexing, on SQLite and PostgreSQL against anvil: a genuine duplicate
(a state refresher writing a row twice, or a conflicting row already in the database) fails the
run loudly and fast, naming the table; a real race (another indexer wrote the chunk and moved the
cursor) is carried on from, a bounded number of times."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session
from web3 import Web3

from ledger.chain.deploy import Deployment
from ledger.errors import IndexerError
from ledger.indexer import Indexer, RunReport
from ledger.indexer import state as state_module
from ledger.indexer.fetch import ChunkFetcher, Fetched
from ledger.indexer.persist import Position
from ledger.indexer.state import table_of
from ledger.store.models import ChainEvent, Dataset, IndexCursor
from tests.integration.chain import LedgerContracts, dev_accounts, transact
from tests.integration.indexing import deploy_for_index, index_rows, open_index, register


@pytest.fixture(scope="module")
def deployed(w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """A deployment with a few registered datasets (tests only read the chain)."""
    deployment, ledger = deploy_for_index(w3, tmp_path_factory.mktemp("deployments"))
    _register_some(ledger)
    return deployment


def _register_some(ledger: LedgerContracts) -> None:
    """Three datasets, one with a new revenue split (which has the datasets refreshed)."""
    owner = dev_accounts(ledger.w3)[2]
    ids = [register(ledger, owner, f"integrity:{i}") for i in range(3)]
    transact(ledger.registry.functions.setRevenueSplit(ids[0], 6000), owner)


@pytest.fixture
def index(w3: Web3, deployed: Deployment, database_url: str) -> Iterator[tuple[Indexer, Engine]]:
    indexer, engine = open_index(w3, deployed, database_url)
    try:
        yield indexer, engine
    finally:
        engine.dispose()


def _count(engine: Engine, model: type) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(table_of(model))).scalar_one()
        )


@pytest.mark.timeout(60)
def test_a_refresher_writing_a_duplicate_fails_the_run(
    index: tuple[Indexer, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    indexer, engine = index
    original = state_module.STATES["datasets"]
    calls = 0

    def buggy(session: Session, keys: Any) -> None:
        nonlocal calls
        calls += 1
        original(session, keys)
        datasets = table_of(Dataset)
        existing = session.execute(select(datasets)).mappings().all()
        session.execute(insert(datasets), [dict(row) for row in existing])  # a bug: insert twice

    monkeypatch.setitem(state_module.STATES, "datasets", buggy)
    with pytest.raises(IndexerError, match="datasets") as raised:
        indexer.run_once()
    assert "constraint" in str(raised.value)
    assert calls == 1, "a genuine integrity error must not be retried"
    assert _count(engine, ChainEvent) == 0
    assert _count(engine, IndexCursor) == 0


@pytest.mark.timeout(60)
def test_a_conflicting_row_in_the_database_fails_the_run(
    w3: Web3, deployed: Deployment, index: tuple[Indexer, Engine], tmp_path: Path
) -> None:
    indexer, engine = index
    reference, reference_engine = open_index(w3, deployed, f"sqlite:///{tmp_path / 'ref.db'}")
    try:
        reference.run_once()
        with reference_engine.connect() as connection:
            first = connection.execute(select(table_of(ChainEvent)).limit(1)).mappings().one()
    finally:
        reference_engine.dispose()
    with engine.begin() as connection:  # left behind by something else than the indexer
        connection.execute(insert(table_of(ChainEvent)), [dict(first)])
    with pytest.raises(IndexerError, match="events"):
        indexer.run_once()
    assert _count(engine, ChainEvent) == 1
    assert _count(engine, IndexCursor) == 0


def _race(
    monkeypatch: pytest.MonkeyPatch, indexer: Indexer, other: Indexer, reports: list[RunReport]
) -> None:
    """Before the first chunk of `indexer` comes back, `other` indexes everything on the same
    database (the chunk's rows then exist, and the cursor moved past its start)."""
    fetch = ChunkFetcher.fetch

    def fetch_then_race(self: ChunkFetcher, position: Position, target: int) -> Fetched:
        fetched = fetch(self, position, target)
        if self is indexer._fetcher and not reports:
            reports.append(other.run_once())
        return fetched

    monkeypatch.setattr(ChunkFetcher, "fetch", fetch_then_race)


@pytest.mark.timeout(60)
def test_another_indexer_moving_the_cursor_is_carried_on_from(
    w3: Web3,
    deployed: Deployment,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    indexer, engine = open_index(w3, deployed, database_url)
    other, other_engine = open_index(w3, deployed, database_url)
    reports: list[RunReport] = []
    try:
        _race(monkeypatch, indexer, other, reports)
        report = indexer.run_once()
        assert reports and reports[0].events > 0
        assert report.events == 0  # the other indexer did it all
        assert report.end_block == reports[0].end_block
        monkeypatch.undo()
        fresh, fresh_engine = open_index(w3, deployed, f"sqlite:///{tmp_path / 'fresh.db'}")
        try:
            fresh.run_once()
            assert index_rows(engine) == index_rows(fresh_engine)
        finally:
            fresh_engine.dispose()
    finally:
        engine.dispose()
        other_engine.dispose()


@pytest.mark.timeout(60)
def test_restarts_after_another_indexer_are_bounded(
    w3: Web3, deployed: Deployment, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexer, engine = open_index(w3, deployed, database_url, max_restarts=1)
    other, other_engine = open_index(w3, deployed, database_url)
    reports: list[RunReport] = []
    try:
        _race(monkeypatch, indexer, other, reports)
        with pytest.raises(IndexerError, match="another indexer kept moving the cursor"):
            indexer.run_once()
        assert reports
    finally:
        engine.dispose()
        other_engine.dispose()

"""Reorgs on a real anvil (``evm_snapshot``/``evm_revert`` and ``anvil_reorg``), on SQLite and
PostgreSQL: rows of dropped blocks disappear, rows of new blocks appear, state changed by dropped
blocks returns to what it was, and the index ends up equal to a fresh backfill of the new chain.
Also: a node that refuses large log ranges (a limiting proxy in front of anvil, as geth and
hosted providers limit results)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import Deployment
from ledger.errors import LogQueryError
from ledger.indexer.state import table_of
from ledger.rights.typed_data import grant_as_tuple
from ledger.store.models import IndexCursor
from tests.integration.chain import LedgerContracts, dev_accounts, rpc, transact
from tests.integration.indexing import (
    ALGO,
    PRICE,
    PURPOSE,
    ZERO_ADDRESS,
    deploy_for_index,
    index_rows,
    make_grant,
    open_index,
    register,
)


@pytest.fixture()
def chain(tmp_path: Path) -> Iterator[tuple[Web3, Deployment, LedgerContracts]]:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment, ledger = deploy_for_index(w3, tmp_path / "deployments")
        yield w3, deployment, ledger


def assert_same_as_fresh_backfill(
    w3: Web3, deployment: Deployment, rows: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    fresh, engine = open_index(w3, deployment, f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        fresh.run_once()
        assert rows == index_rows(engine), "the rolled-back index differs from a fresh one"
    finally:
        engine.dispose()


def anchor(ledger: LedgerContracts, label: str, sender: str) -> str:
    root = Web3.keccak(text=label)
    transact(ledger.usage.functions.anchorBatch(root, 1), Web3.to_checksum_address(sender))
    return "0x" + root.hex()


def test_revert_to_snapshot_rolls_back_rows_and_state(
    chain: tuple[Web3, Deployment, LedgerContracts], database_url: str, tmp_path: Path
) -> None:
    w3, deployment, ledger = chain
    owner, consumer, executor, other = dev_accounts(w3)[1:5]
    dataset = register(ledger, owner, "kept")
    transact(ledger.registry.functions.setExecutor(dataset, executor, True), owner)
    grant = make_grant(w3, dataset, owner, consumer, 1)
    transact(ledger.grants.functions.issue(grant_as_tuple(grant)), owner)
    grant_id = "0x" + ledger.grants.functions.grantId(grant_as_tuple(grant)).call().hex()
    job = Web3.keccak(text="job")
    fn = ledger.vault.functions.escrow(job, bytes.fromhex(grant_id[2:]), ZERO_ADDRESS, PRICE)
    transact(fn, consumer, value=PRICE)
    indexer, engine = open_index(w3, deployment, database_url, confirmations=1)
    try:
        indexer.run_once()
        before = index_rows(engine)
        snapshot = rpc(w3, "evm_snapshot")
        fork_block = w3.eth.block_number

        # Branch A: changes to every kind of state, then dropped.
        use = (grant_as_tuple(grant), 1, 1, 1_000)
        job_tuple = (job, consumer, ALGO, PURPOSE, Web3.keccak(text="receipt"))
        transact(ledger.usage.functions.recordUsage(job_tuple, [use]), executor)
        v2 = tuple(Web3.keccak(text=f"v2:{p}") for p in "rcsm")
        transact(ledger.registry.functions.publishVersion(dataset, v2, "ipfs://v2"), owner)
        transact(ledger.registry.functions.setExecutor(dataset, executor, False), owner)
        transact(ledger.grants.functions.revoke(grant_as_tuple(grant)), owner)
        transact(ledger.registry.functions.transferFrom(owner, other, dataset), owner)
        anchor(ledger, "branch-a", executor)
        indexer.run_once()
        branch_a = index_rows(engine)
        (grant_a,) = branch_a["grants"]
        assert (grant_a["uses"], grant_a["status"]) == (1, "revoked")
        assert branch_a["escrows"][0]["status"] == "captured"
        assert (branch_a["datasets"][0]["version"], branch_a["datasets"][0]["owner"]) == (2, other)

        # Branch B replaces it with fewer blocks: the cursor's block no longer exists.
        assert rpc(w3, "evm_revert", snapshot) is True
        root_b = anchor(ledger, "branch-b", executor)
        assert w3.eth.block_number < branch_a["events"][-1]["block_number"]
        report = indexer.run_once()
        after = index_rows(engine)
    finally:
        engine.dispose()

    assert len(report.rollbacks) == 1 and report.rollbacks[0].fork_block == fork_block
    assert report.rollbacks[0].dropped_events > 0
    for table in ("grant_consumptions", "captures", "revocations", "jobs", "usage_records"):
        assert after[table] == [], f"{table} kept rows of dropped blocks"
    assert [row["root"] for row in after["batch_anchors"]] == [root_b]
    for table in ("grants", "escrows", "datasets", "executors", "dataset_versions"):
        assert after[table] == before[table], f"{table} was not restored"
    assert max(row["block_number"] for row in after["events"]) <= w3.eth.block_number
    assert_same_as_fresh_backfill(w3, deployment, after, tmp_path)


def test_anvil_reorg_replaces_the_last_blocks(
    chain: tuple[Web3, Deployment, LedgerContracts], database_url: str, tmp_path: Path
) -> None:
    w3, deployment, ledger = chain
    owner, executor = dev_accounts(w3)[1], dev_accounts(w3)[3]
    register(ledger, owner, "stays")
    dropped_root = None
    for i in range(3):
        dropped_root = anchor(ledger, f"dropped-{i}", executor)
    indexer, engine = open_index(w3, deployment, database_url, confirmations=1)
    try:
        indexer.run_once()
        head = w3.eth.block_number
        data = ledger.usage.encode_abi("anchorBatch", args=[Web3.keccak(text="replacement"), 9])
        tx = {"from": executor, "to": ledger.usage.address, "data": data, "gas": hex(200_000)}
        rpc(w3, "anvil_reorg", 3, [[tx, 1]])
        assert w3.eth.block_number == head
        report = indexer.run_once()
        after = index_rows(engine)
    finally:
        engine.dispose()
    assert [(r.from_block, r.fork_block) for r in report.rollbacks] == [(head, head - 3)]
    roots = [row["root"] for row in after["batch_anchors"]]
    assert dropped_root not in roots
    assert "0x" + Web3.keccak(text="replacement").hex() in roots
    assert len(after["datasets"]) == 1
    assert_same_as_fresh_backfill(w3, deployment, after, tmp_path)


def test_reorg_deeper_than_the_kept_hashes_reindexes_everything(
    chain: tuple[Web3, Deployment, LedgerContracts], database_url: str, tmp_path: Path
) -> None:
    w3, deployment, ledger = chain
    executor = dev_accounts(w3)[3]
    for i in range(6):
        anchor(ledger, f"deep-{i}", executor)
    indexer, engine = open_index(w3, deployment, database_url, reorg_window=2, chunk_blocks=2)
    try:
        indexer.run_once()
        rpc(w3, "anvil_reorg", 5, [])
        report = indexer.run_once()
        after = index_rows(engine)
    finally:
        engine.dispose()
    assert [r.fork_block for r in report.rollbacks] == [deployment.deploy_block - 1]
    assert len(after["batch_anchors"]) == 1
    assert_same_as_fresh_backfill(w3, deployment, after, tmp_path)


class LimitingProxy(ThreadingHTTPServer):
    """Forwards JSON-RPC to a node, but answers an ``eth_getLogs`` with more than `limit` logs
    with geth's error (code -32005, "query returned more than N results"). `after_logs`, if set,
    runs once after the first ``eth_getLogs`` answer is read and before it is sent on."""

    def __init__(self, upstream: str, limit: int) -> None:
        self.upstream = upstream
        self.limit = limit
        self.refused = 0
        self.after_logs: Callable[[], None] | None = None
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: LimitingProxy

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = urllib.request.Request(
            self.server.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer = json.loads(response.read())
        call = json.loads(body)
        if (
            isinstance(call, dict)
            and call.get("method") == "eth_getLogs"
            and self.server.after_logs
        ):
            hook, self.server.after_logs = self.server.after_logs, None
            hook()
        if isinstance(call, dict) and call.get("method") == "eth_getLogs":
            if len(answer.get("result") or []) > self.server.limit:
                self.server.refused += 1
                message = f"query returned more than {self.server.limit} results"
                answer = {
                    "jsonrpc": "2.0",
                    "id": call["id"],
                    "error": {"code": -32005, "message": message},
                }
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture()
def proxy(chain: tuple[Web3, Deployment, LedgerContracts]) -> Iterator[LimitingProxy]:
    w3, _, _ = chain
    server = LimitingProxy(str(w3.provider.endpoint_uri), limit=4)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_node_refusing_large_ranges_gets_smaller_ones(
    chain: tuple[Web3, Deployment, LedgerContracts],
    proxy: LimitingProxy,
    database_url: str,
    tmp_path: Path,
) -> None:
    w3, deployment, ledger = chain
    for i in range(20):
        anchor(ledger, f"many-{i}", dev_accounts(w3)[3])
    limited = Web3(Web3.HTTPProvider(proxy.url))
    indexer, engine = open_index(limited, deployment, database_url, chunk_blocks=1_000)
    try:
        report = indexer.run_once()
        rows = index_rows(engine)
    finally:
        engine.dispose()
    assert proxy.refused > 0, "the proxy never refused: the test proves nothing"
    assert report.end_block == w3.eth.block_number
    assert len(rows["batch_anchors"]) == 20
    assert_same_as_fresh_backfill(w3, deployment, rows, tmp_path)


def test_single_block_over_the_node_limit_is_a_clear_error(
    chain: tuple[Web3, Deployment, LedgerContracts], proxy: LimitingProxy, database_url: str
) -> None:
    w3, deployment, ledger = chain
    executor = dev_accounts(w3)[3]
    rpc(w3, "evm_setAutomine", False)
    for i in range(6):
        data = ledger.usage.encode_abi("anchorBatch", args=[Web3.keccak(text=f"crowded-{i}"), 1])
        tx = {"from": executor, "to": ledger.usage.address, "data": data, "gas": 200_000}
        w3.eth.send_transaction(tx)  # type: ignore[arg-type]
    rpc(w3, "evm_mine")
    rpc(w3, "evm_setAutomine", True)
    crowded = w3.eth.block_number
    limited = Web3(Web3.HTTPProvider(proxy.url))
    indexer, engine = open_index(limited, deployment, database_url)
    try:
        with pytest.raises(LogQueryError, match=f"block {crowded}") as info:
            indexer.run_once()
        assert info.value.block == crowded
        with engine.connect() as connection:
            cursor = connection.execute(select(table_of(IndexCursor).c.block_number)).scalar_one()
        assert cursor == crowded - 1, "everything before the crowded block stays indexed"
    finally:
        engine.dispose()


def test_reorg_while_a_chunk_is_read_is_never_committed(
    chain: tuple[Web3, Deployment, LedgerContracts],
    proxy: LimitingProxy,
    database_url: str,
    tmp_path: Path,
) -> None:
    w3, deployment, ledger = chain
    executor = dev_accounts(w3)[3]
    stale = anchor(ledger, "read-then-dropped", executor)
    data = ledger.usage.encode_abi("anchorBatch", args=[Web3.keccak(text="raced-in"), 3])
    tx = {"from": executor, "to": ledger.usage.address, "data": data, "gas": hex(200_000)}
    proxy.limit = 10_000
    proxy.after_logs = lambda: rpc(w3, "anvil_reorg", 1, [[tx, 0]])
    limited = Web3(Web3.HTTPProvider(proxy.url))
    indexer, engine = open_index(limited, deployment, database_url)
    try:
        report = indexer.run_once()  # one run: the logs it read first are of a dropped block
        rows = index_rows(engine)
    finally:
        engine.dispose()
    assert proxy.after_logs is None, "the reorg did not happen during the run"
    assert report.rollbacks == ()
    roots = [row["root"] for row in rows["batch_anchors"]]
    assert stale not in roots and "0x" + Web3.keccak(text="raced-in").hex() in roots
    assert_same_as_fresh_backfill(w3, deployment, rows, tmp_path)

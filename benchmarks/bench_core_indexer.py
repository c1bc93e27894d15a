#!/usr/bin/env python3
"""Backfill throughput of the indexer, against fetching the same logs with eth_getLogs alone.

On a fresh anvil it deploys the contracts and emits real contract events: registrations
(``Transfer``, ``DatasetRegistered``) and ``UsageLedger.anchorBatch`` calls, sent as JSON-RPC
batches of ``eth_sendTransaction`` from anvil's unlocked accounts with automine off, one
``evm_mine`` per batch. Then, for each database (SQLite file; PostgreSQL in a fresh database when
one answers), it times

* the baseline: ``eth_getLogs`` over the same block ranges, raw JSON, nothing else;
* the full backfill: `Indexer.run_once` from an empty, migrated database (fetch, decode, map,
  bulk insert, state, cursor, one transaction per range).

Targets: >= 3,000 events/s, and backfill time <= 2x the fetch-only time. Results go to
``benchmarks/results/core_indexer.json``; the script prints them and exits 0 whether or not the
targets are met (the JSON says which).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import create_engine, text
from web3 import Web3
from web3.types import RPCEndpoint

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.chain.anvil import Anvil  # noqa: E402
from ledger.chain.deploy import Deployment, contracts_of, deploy  # noqa: E402
from ledger.chain.sender import TxSender  # noqa: E402
from ledger.indexer import Indexer, IndexerOptions  # noqa: E402
from ledger.indexer.rpc import ChainReader  # noqa: E402
from ledger.settings import ANVIL_DEV_KEYS  # noqa: E402
from ledger.store.database import open_engine  # noqa: E402
from ledger.store.migrate import upgrade  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "core_indexer.json"
TARGET_EVENTS_PER_S = 3_000
TARGET_RATIO = 2.0
TXS_PER_BLOCK = 1_000
ANCHOR_GAS = 80_000
REGISTER_GAS = 200_000


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    answer = w3.provider.make_request(RPCEndpoint(method), list(params))
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def generate(w3: Web3, deployment: Deployment, events: int, registrations: int) -> int:
    """Emit `events` contract events; returns the last block."""
    contracts = contracts_of(w3, deployment)
    registry, usage = contracts["DataRegistry"], contracts["UsageLedger"]
    senders = list(w3.eth.accounts)[:10]
    txs: list[dict[str, Any]] = []
    for i in range(registrations):  # two events each: Transfer (mint), DatasetRegistered
        version = tuple(keccak(text=f"bench:{i}:{part}") for part in "rcsm")
        data = registry.encode_abi("register", args=[version, 7000, f"ipfs://bench/{i}"])
        txs.append({"to": registry.address, "data": data, "gas": hex(REGISTER_GAS)})
    # anchorBatch(bytes32,uint32) calldata by hand: encode_abi would dominate the run.
    selector = usage.encode_abi("anchorBatch", args=[b"\x01" * 32, 1])[:10]
    for i in range(events - 2 * registrations):  # one BatchAnchored each
        root = keccak(text=f"bench:root:{i}").hex()
        data = f"{selector}{root}{1 + i % 500:064x}"
        txs.append({"to": usage.address, "data": data, "gas": hex(ANCHOR_GAS)})
    nonces = {s: w3.eth.get_transaction_count(s, "pending") for s in senders}
    rpc(w3, "evm_setAutomine", False)
    for start in range(0, len(txs), TXS_PER_BLOCK):
        batch = []
        for j, tx in enumerate(txs[start : start + TXS_PER_BLOCK]):
            sender = senders[(start + j) % len(senders)]
            batch.append(
                (
                    RPCEndpoint("eth_sendTransaction"),
                    [{**tx, "from": sender, "nonce": hex(nonces[sender])}],
                )
            )
            nonces[sender] += 1
        answers = w3.provider.make_batch_request(batch)  # type: ignore[attr-defined]
        failed = [a for a in answers if "error" in a]
        if failed:
            raise RuntimeError(f"sending failed: {failed[0]['error']}")
        rpc(w3, "evm_mine")
    while int(rpc(w3, "txpool_status")["pending"], 16):
        rpc(w3, "evm_mine")
    rpc(w3, "evm_setAutomine", True)
    return int(w3.eth.block_number)


def fetch_only(
    reader: ChainReader, addresses: list[str], first: int, last: int, span: int
) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    for start in range(first, last + 1, span):
        count += len(reader.logs(start, min(start + span - 1, last), addresses))
    return time.perf_counter() - started, count


def backfill(w3: Web3, deployment: Deployment, url: str, span: int) -> dict[str, Any]:
    upgrade(url)
    engine = open_engine(url)
    try:
        indexer = Indexer(w3, deployment, engine, options=IndexerOptions(chunk_blocks=span))
        started = time.perf_counter()
        report = indexer.run_once()
        seconds = time.perf_counter() - started
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT count(*) FROM events")).scalar_one()
    finally:
        engine.dispose()
    return {"seconds": seconds, "events": report.events, "stored": stored, "chunks": report.chunks}


def postgres_database(admin_url: str) -> tuple[str, Any] | None:
    """A fresh database (URL, dropper), or None when PostgreSQL does not answer."""
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        name = f"ledger_bench_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - reported in the results, not fatal
        print(f"PostgreSQL unavailable at {admin_url}: {exc}", file=sys.stderr)
        return None

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--registrations", type=int, default=500)
    parser.add_argument(
        "--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    # Ranges of about 10,000 logs, as the indexer's default target_logs aims for.
    span = max(1, 10_000 // TXS_PER_BLOCK)
    with Anvil(extra_args=("--gas-limit", str(TXS_PER_BLOCK * REGISTER_GAS))) as node:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        deployment, _ = deploy(w3, TxSender(w3, ANVIL_DEV_KEYS[0]), Path(tempfile.mkdtemp()))
        started = time.perf_counter()
        last = generate(w3, deployment, args.events, args.registrations)
        generation = time.perf_counter() - started
        reader = ChainReader(w3)
        addresses = list(deployment.addresses.values())
        first = deployment.deploy_block
        results: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as scratch:
            databases: list[tuple[str, str, Any]] = [
                ("sqlite", f"sqlite:///{Path(scratch) / 'bench.db'}", None)
            ]
            pg = postgres_database(args.postgres)
            if pg is not None:
                databases.append(("postgresql", pg[0], pg[1]))
            else:
                results["postgresql"] = {"error": "no PostgreSQL answered at " + args.postgres}
            fetch_only(reader, addresses, first, last, span)  # warm-up: anvil's caches
            for name, url, drop in databases:
                try:
                    fetch_s, fetched = fetch_only(reader, addresses, first, last, span)
                    run = backfill(w3, deployment, url, span)
                finally:
                    if drop is not None:
                        drop()
                rate = run["events"] / run["seconds"]
                ratio = run["seconds"] / fetch_s
                results[name] = {
                    "events": run["events"],
                    "stored_events": run["stored"],
                    "fetched_logs": fetched,
                    "chunks": run["chunks"],
                    "backfill_seconds": round(run["seconds"], 3),
                    "fetch_only_seconds": round(fetch_s, 3),
                    "events_per_second": round(rate),
                    "backfill_over_fetch": round(ratio, 2),
                    "met_events_per_second": rate >= TARGET_EVENTS_PER_S,
                    "met_ratio": ratio <= TARGET_RATIO,
                }
    summary = {
        "benchmark": "core_indexer",
        "targets": {"events_per_second": TARGET_EVENTS_PER_S, "backfill_over_fetch": TARGET_RATIO},
        "setup": {
            "events": args.events,
            "registrations": args.registrations,
            "blocks": last - first + 1,
            "txs_per_block": TXS_PER_BLOCK,
            "blocks_per_range": span,
            "generation_seconds": round(generation, 1),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

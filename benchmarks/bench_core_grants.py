#!/usr/bin/env python3
"""Grant check from the index against the same check by eth_call, p50 and p99, in one run.

On a fresh anvil: deploy, register a dataset, allow the executor, issue GRANTS grants (some
partly consumed by real recorded jobs), index them into a SQLite file, then time ROUNDS checks of
random grants both ways:

* index: `ledger.rights.index.check_from_index` (one SQL query, the pure rules);
* chain: `ledger.rights.check.check_onchain` (``checkUse`` + ``isExecutor`` by eth_call).

Targets: index p99 <= 1 ms and at least 10x faster than eth_call. Results go to
``benchmarks/results/core_grants.json`` (met or not).
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from sqlmodel import Session
from web3 import Web3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.chain.anvil import Anvil  # noqa: E402
from ledger.chain.deploy import contracts_of, deploy  # noqa: E402
from ledger.chain.sender import TxSender  # noqa: E402
from ledger.indexer import Indexer, IndexerOptions  # noqa: E402
from ledger.rights.check import JobRequest, check_onchain  # noqa: E402
from ledger.rights.index import check_from_index  # noqa: E402
from ledger.rights.typed_data import Grant, grant_as_tuple  # noqa: E402
from ledger.settings import ANVIL_DEV_KEYS  # noqa: E402
from ledger.store.database import open_engine  # noqa: E402
from ledger.store.migrate import upgrade  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "core_grants.json"
GRANTS = 200
ROUNDS = 2_000
WARMUP = 100
ALGO = Web3.keccak(text="algorithm:dp-mean:v1")
PURPOSE = Web3.keccak(text="research.oncology")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    with Anvil() as node, tempfile.TemporaryDirectory() as tmp:
        w3 = Web3(Web3.HTTPProvider(node.url))
        operator = TxSender(w3, ANVIL_DEV_KEYS[0])
        owner = TxSender(w3, ANVIL_DEV_KEYS[1])
        consumer = Account.from_key(ANVIL_DEV_KEYS[2]).address
        deployment, _ = deploy(w3, operator, Path(tmp) / "deployments")
        contracts = contracts_of(w3, deployment)
        registry, grants = contracts["DataRegistry"], contracts["AccessGrants"]
        version = tuple(Web3.keccak(text=f"bench-{i}") for i in range(4))
        owner.send(registry.functions.register(version, 7000, "ipfs://bench"))
        owner.send(registry.functions.setExecutor(1, operator.address, True))
        now = int(w3.eth.get_block("latest")["timestamp"])
        issued: list[tuple[str, Grant]] = []
        for nonce in range(GRANTS):
            grant = Grant(
                dataset_id=1,
                grantor=owner.address,
                grantee=consumer,
                algorithm_hash=ALGO,
                purpose=PURPOSE,
                valid_from=now,
                valid_until=now + 365 * 86_400,
                max_uses=10,
                epsilon_budget=5_000_000,
                payment_token=Web3.to_checksum_address("0x" + "00" * 20),
                price_per_use=0,
                nonce=nonce,
                deadline=now + 86_400,
            )
            owner.send(grants.functions.issue(grant_as_tuple(grant)))
            grant_id = grants.functions.grantId(grant_as_tuple(grant)).call()
            issued.append(("0x" + bytes(grant_id).hex(), grant))
        engine = open_engine(f"sqlite:///{tmp}/ledger.db")
        upgrade(str(engine.url))
        Indexer(w3, deployment, engine, options=IndexerOptions(confirmations=1)).run_once()

        job_at = int(w3.eth.get_block("latest")["timestamp"])
        rng = random.Random(7)
        picks = [rng.choice(issued) for _ in range(ROUNDS + WARMUP)]
        index_ms: list[float] = []
        chain_ms: list[float] = []
        agree = 0
        with Session(engine) as session:
            for n, (grant_id, grant) in enumerate(picks):
                job = JobRequest(
                    dataset_id=1,
                    consumer=consumer,
                    algorithm_hash=ALGO,
                    purpose=PURPOSE,
                    uses=1,
                    epsilon=100_000,
                    executor=operator.address,
                    at=job_at,
                )
                t0 = time.perf_counter()
                from_index = check_from_index(session, grant_id, job)
                t1 = time.perf_counter()
                onchain = check_onchain(grants, registry, grant, job)
                t2 = time.perf_counter()
                if n >= WARMUP:
                    index_ms.append((t1 - t0) * 1000)
                    chain_ms.append((t2 - t1) * 1000)
                    agree += from_index == onchain
        engine.dispose()

    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": platform.machine()},
        "grants": GRANTS,
        "rounds": ROUNDS,
        "database": "sqlite",
        "index_ms": {"p50": percentile(index_ms, 0.5), "p99": percentile(index_ms, 0.99)},
        "eth_call_ms": {"p50": percentile(chain_ms, 0.5), "p99": percentile(chain_ms, 0.99)},
        "speedup_p50": statistics.median(chain_ms) / statistics.median(index_ms),
        "decisions_agree": agree,
    }
    result["targets"] = {
        "index_p99_ms_max": 1.0,
        "speedup_min": 10.0,
        "met": result["index_ms"]["p99"] <= 1.0 and result["speedup_p50"] >= 10.0,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

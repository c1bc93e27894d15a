#!/usr/bin/env python3
"""The HTTP API under load: CLIENTS concurrent clients for DURATION seconds of mixed reads.

Setup (not timed): anvil, the contracts deployed as ``ledger deploy`` does, a SQLite index with
DATASETS catalog datasets (metadata documents), one compute dataset with grants and one job run
through the real pipeline (so provenance has a lineage to show), all indexed. The server is
``ledger serve`` (uvicorn, one process, the indexer following the chain) in a subprocess on
127.0.0.1, as ``make run`` starts it; the load generator (httpx, asyncio) runs on the same
machine, so both share its cores.

Mix per request (uniform): catalog search with a word, dataset detail, provenance lineage of the
job, grant check by its grantee (bearer session). Reported: requests/s, p50/p99 latency, error
count (any non-2xx or transport error; must be 0). Baseline in the same run: one client, the
same mix, for DURATION/6 s (the latency of an unloaded server).
Results: ``benchmarks/results/api.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.messages import encode_defunct  # noqa: E402
from eth_utils.crypto import keccak  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.logs import DISCARD  # noqa: E402

from ledger.chain.anvil import Anvil  # noqa: E402
from ledger.indexer.service import Indexer  # noqa: E402
from ledger.jobs.pipeline import PipelineOptions  # noqa: E402
from ledger.jobs.service import open_context, open_pipeline  # noqa: E402
from ledger.registry.documents import store_document  # noqa: E402
from ledger.registry.metadata import (  # noqa: E402
    MetadataDocument,
    PublicColumn,
    TemporalCoverage,
)
from ledger.settings import load_settings  # noqa: E402
from tests.integration.jobs_world import (  # noqa: E402
    CONSUMER_KEY,
    EXECUTOR_KEY,
    OWNER_KEY,
    World,
    make_world,
)

OUT = ROOT / "benchmarks" / "results" / "api.json"
CLIENTS = 50
DATASETS = 200
WORDS = ["oncology", "cardiology", "diabetes", "cohort", "hospital", "survival", "registry"]
_SERVER = (
    "import typer\n"
    "from api.cli import install\n"
    "app = typer.Typer(pretty_exceptions_enable=False)\n"
    "@app.callback()\n"
    "def main() -> None:\n"
    "    pass\n"
    "install(app)\n"
    "app()\n"
)


def populate(world: World) -> list[int]:
    """DATASETS catalog datasets with metadata documents; their ids."""
    registry = world.chain.registry
    ids = []
    for i in range(DATASETS):
        topic = WORDS[i % len(WORDS)]
        document = MetadataDocument(
            name=f"set-{i}",
            version=1,
            title=f"{topic.title()} records, site {i}",
            description=f"De-identified {topic} data from site {i}.",
            keywords=[topic, f"site-{i % 10}"],
            license="CC-BY-4.0",
            publisher=f"Hospital {i % 10}",
            temporal_coverage=TemporalCoverage(start=date(2020, 1, 1), end=date(2024, 1, 1)),
            record_count=100 * (1 + i % 9),
            contributor_count=10,
            columns=[PublicColumn(name="age", type="integer", unit="years")],
            schema_hash="0x" + keccak(text=f"schema{i}").hex(),
            commitment="0x" + keccak(text=f"rows{i}").hex(),
            previous_commitment=None,
        )
        version = (
            keccak(text=f"rows{i}"),
            keccak(text=f"c{i}"),
            keccak(text=f"schema{i}"),
            bytes.fromhex(document.hash[2:]),
        )
        receipt = world.owner.send(registry.functions.register(version, 7000, document.uri))
        (event,) = registry.events.DatasetRegistered().process_receipt(receipt, DISCARD)
        dataset_id = int(event["args"]["datasetId"])
        store_document(world.engine, document, dataset_id=dataset_id, version=1)
        ids.append(dataset_id)
    return ids


def run_one_job(world: World, settings: Any) -> tuple[str, str]:
    """A dp_mean job through the real pipeline; its job id and grant id."""
    dataset_id = world.add_dataset("compute", 2_000)
    grant = world.grant(dataset_id, max_uses=10)
    submitted = world.submit([grant])
    context = open_context(settings)
    pipeline = open_pipeline(context, PipelineOptions())
    for _ in range(20):
        pipeline.advance(submitted.job_id)
        if world.store.get(submitted.job_id).status.value == "done":
            break
    context.close()
    return submitted.job_id, "0x" + world.chain.grant_id(grant).hex()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not become healthy in 60 s")


def sign_in(base: str, key: str) -> str:
    address = Account.from_key(key).address
    text = httpx.get(f"{base}/v1/auth/nonce", params={"address": address}).json()["message"]
    signature = Account.sign_message(encode_defunct(text=text), private_key=key).signature
    body = {"message": text, "signature": "0x" + signature.hex().removeprefix("0x")}
    response = httpx.post(f"{base}/v1/auth/login", json=body)
    response.raise_for_status()
    return str(response.json()["token"])


async def load(base: str, clients: int, duration: float, targets: dict[str, Any]) -> dict[str, Any]:
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    counts: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {targets['token']}"}
    requests = [
        ("catalog", lambda r: ("/v1/datasets", {"q": r.choice(WORDS), "limit": 20})),
        ("detail", lambda r: (f"/v1/datasets/{r.choice(targets['datasets'])}", None)),
        ("lineage", lambda r: (f"/v1/provenance/{targets['job']}/lineage", None)),
        ("grant_check", lambda r: (f"/v1/grants/{targets['grant']}/check", None)),
    ]
    stop_at = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(seed: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(seed)
        while time.perf_counter() < stop_at:
            name, make = rng.choice(requests)
            path, params = make(rng)
            started = time.perf_counter()
            try:
                response = await http.get(path, params=params, headers=headers)
                ok = response.status_code == 200
                label = str(response.status_code)
            except httpx.HTTPError as exc:
                ok, label = False, type(exc).__name__
            latencies.append(time.perf_counter() - started)
            by_kind.setdefault(name, []).append(latencies[-1])
            counts[name] = counts.get(name, 0) + 1
            if not ok:
                errors[f"{name}:{label}"] = errors.get(f"{name}:{label}", 0) + 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        began = time.perf_counter()
        await asyncio.gather(*(client(i, http) for i in range(clients)))
        wall = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "seconds": round(wall, 2),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 1),
        "latency_ms": {
            "p50": round(1000 * percentile(ordered, 0.50), 2),
            "p99": round(1000 * percentile(ordered, 0.99), 2),
            "mean": round(1000 * statistics.fmean(ordered), 2) if ordered else None,
        },
        "by_request": counts,
        "p50_ms_by_request": {
            k: round(1000 * percentile(sorted(v), 0.5), 2) for k, v in sorted(by_kind.items())
        },
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds of load.")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Anvil() as node:
        data_dir = Path(tmp)
        database_url = f"sqlite:///{data_dir / 'ledger.db'}"
        w3 = Web3(Web3.HTTPProvider(node.url))
        world = make_world(w3, node.url, data_dir, database_url)
        dataset_ids = populate(world)
        settings = load_settings(
            data_dir=data_dir,
            rpc_url=node.url,
            database_url=database_url,
            executor_key=EXECUTOR_KEY,
        )
        job_id, grant_id = run_one_job(world, settings)
        Indexer(w3, world.chain.deployment, world.engine).run_once()
        env = world.env()
        env.pop("LEDGER_CONSUMER_KEY", None)
        env["LEDGER_OWNER_KEY"] = OWNER_KEY
        port = free_port()
        server = start_server(env, port)
        base = f"http://127.0.0.1:{port}"
        try:
            token = sign_in(base, CONSUMER_KEY)
            targets = {"token": token, "datasets": dataset_ids, "job": job_id, "grant": grant_id}
            asyncio.run(load(base, 2, 2.0, targets))  # warm-up
            baseline = asyncio.run(load(base, 1, max(args.duration / 6, 2.0), targets))
            loaded = asyncio.run(load(base, args.clients, args.duration, targets))
        finally:
            server.terminate()
            server.wait(timeout=30)
        world.engine.dispose()
    result = {
        "benchmark": "api",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": list(os.getloadavg()),
        "server": "ledger serve (uvicorn, 1 process, indexer following), SQLite index",
        "index": {"datasets": DATASETS + 1, "jobs": 1},
        "mix": ["catalog search", "dataset detail", "provenance lineage", "grant check"],
        "baseline_one_client": baseline,
        "loaded": loaded,
        "p50_ratio_loaded_vs_baseline": round(
            loaded["latency_ms"]["p50"] / baseline["latency_ms"]["p50"], 2
        ),
        "target": {"errors": 0, "met": loaded["errors"] == 0 and baseline["errors"] == 0},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))  # noqa: T201


if __name__ == "__main__":
    main()

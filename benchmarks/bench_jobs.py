#!/usr/bin/env python3
"""End-to-end jobs on the embedded chain (anvil): DP mean over 100,000 rows, per-job and batched.

Setup (not timed): anvil, the contracts deployed as ``ledger deploy`` does, a SQLite database,
a vault-format dataset of ROWS rows registered on chain with the executor allowed, one grant
with room for every job. Then, through the same pipeline the worker runs (`open_pipeline`):

- per-job mode (the baseline): JOBS jobs one after the other; each is submitted (the consumer's
  escrow transaction) and advanced to ``done`` (payment observed, grant re-checked on chain, DP
  mean in the engine with the budget ledger, receipt signed and stored, ``recordUsage``,
  settlement weights). Latency = submit + worker, per job.
- batched mode: BATCHED_JOBS jobs submitted first (escrows, not timed in the throughput), then
  the worker advances them all with receipts in Merkle batches of BATCH_SIZE anchored by the
  batcher (``anchorBatch``), still one ``recordUsage`` per job (uses, budget, capture).
  Throughput = jobs / worker wall time with THREADS jobs advancing at once (``ledger job
  worker --threads``); latency = per-job worker time.
- batched mode with PROCESSES worker processes (`ledger.jobs.workers.WorkerPool`, ``ledger job
  worker --extra-executor-key-env``), each with its own executor key (allowed by the owner with
  ``setExecutor``) and PROCESS_THREADS threads, started and warmed up before the clock starts;
  the jobs split between them by id, each executor anchors its own batches (up to 100).
  Throughput = jobs / wall time of one ``run_pending`` in every process; latency = completion
  time of each job since the start (the row's last update). Anchor gas from the batches' txs.

CPU per job (worker processes or threads, and anvil) is measured too: the machine is shared, so
wall-clock throughput depends on the other load; ``cpu_bound_jobs_per_s_on_2_cores`` is what
that CPU allows with nothing else running. The batched target is checked on the better mode.

Gas per job: the executor's ``recordUsage`` (plus, batched, its share of ``anchorBatch``);
the consumer's escrow gas is reported apart. Targets: p50 <= 500 ms per job, batched >= 20
jobs/s on 2 cores, batched anchoring <= 1,000 gas per receipt. Results:
``benchmarks/results/jobs.json`` (met or not).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from eth_typing import ChecksumAddress  # noqa: E402
from eth_utils.crypto import keccak  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.logs import DISCARD  # noqa: E402

from ledger.chain.anvil import Anvil  # noqa: E402
from ledger.chain.deploy import deploy  # noqa: E402
from ledger.chain.sender import TxSender  # noqa: E402
from ledger.compute.catalog import entry  # noqa: E402
from ledger.jobs.adapters import BatcherAnchors  # noqa: E402
from ledger.jobs.pipeline import JobPipeline, PipelineOptions  # noqa: E402
from ledger.jobs.request import DatasetSpec, build_request  # noqa: E402
from ledger.jobs.service import JobContext, open_context, open_pipeline  # noqa: E402
from ledger.jobs.submit import submit_job  # noqa: E402
from ledger.jobs.workers import WorkerPool  # noqa: E402
from ledger.rights.typed_data import Grant, grant_as_tuple  # noqa: E402
from ledger.settings import ANVIL_DEV_KEYS, load_settings  # noqa: E402
from ledger.store.models.jobs import JobStatus  # noqa: E402
from ledger.store.models.provenance import BatchStatus, ReceiptBatchRow  # noqa: E402

OUT = Path(os.environ.get("BENCH_OUT", str(ROOT / "benchmarks" / "results" / "jobs.json")))
ROWS = 100_000
JOBS = int(os.environ.get("BENCH_JOBS", "40"))
BATCHED_JOBS = int(os.environ.get("BENCH_BATCHED_JOBS", "100"))
BATCH_SIZE = 50
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "2"))
PROCESS_THREADS = int(os.environ.get("BENCH_PROCESS_THREADS", "3"))
# Each executor anchors its own receipts: up to 100 per batch (the worker's default), so the
# BATCHED_JOBS split between the processes still make one batch per executor.
PROCESS_BATCH_SIZE = 100
WARMUP = 3
PRICE = 10**12
PARAMS: dict[str, Any] = {"column": "age", "bounds": {"lo": 0, "hi": 120}, "epsilon": 0.01}
TARGETS = {"p50_ms": 500.0, "batched_jobs_per_s": 20.0, "anchor_gas_per_receipt": 1000.0}
EXECUTOR_KEY, OWNER_KEY, CONSUMER_KEY = ANVIL_DEV_KEYS[:3]


def setup_dataset(context: JobContext, owner: TxSender, executor: str, data_dir: Path) -> int:
    rng = np.random.default_rng(2026)
    table = pa.table(
        {
            "age": pa.array(rng.normal(55, 15, ROWS).clip(18, 99)),
            "_row": pa.array(np.arange(ROWS, dtype="int64")),
            "_contributor": pa.array([f"0x{i % 97:064x}" for i in range(ROWS)]),
        }
    )
    base = data_dir / "vault" / owner.address / "datasets" / "bench"
    (base / "v1" / "data").mkdir(parents=True)
    pq.write_table(table, base / "v1" / "data" / "part-00000.parquet")
    registry = context.chain.registry
    version = tuple(keccak(text=f"bench:{p}") for p in ("rows", "c", "s", "m"))
    receipt = owner.send(registry.functions.register(version, 7000, "ipfs://bench"))
    (event,) = registry.events.DatasetRegistered().process_receipt(receipt, DISCARD)
    dataset_id = int(event["args"]["datasetId"])
    owner.send(registry.functions.setExecutor(dataset_id, executor, True))
    (base / "registration.json").write_text(
        json.dumps(
            {
                "chain_id": context.chain.chain_id,
                "registry": registry.address,
                "dataset_id": dataset_id,
            }
        )
    )
    return dataset_id


def issue_grant(context: JobContext, owner: TxSender, consumer: str, dataset_id: int) -> Grant:
    now = context.chain.now()
    grant = Grant(
        dataset_id=dataset_id,
        grantor=owner.address,
        grantee=Web3.to_checksum_address(consumer),
        algorithm_hash=bytes.fromhex(entry("dp_mean").hash[2:]),
        purpose=keccak(text="research.bench"),
        valid_from=now - 10,
        valid_until=now + 86_400,
        max_uses=100_000,
        epsilon_budget=10**12,
        payment_token=Web3.to_checksum_address("0x" + "00" * 20),
        price_per_use=PRICE,
        nonce=0,
        deadline=now + 3600,
    )
    owner.send(context.chain.grants.functions.issue(grant_as_tuple(grant)))
    return grant


def anvil_cpu() -> float:
    """CPU seconds used so far by the anvil child of this process."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "anvil" in child.name():
                times = child.cpu_times()
                total += times.user + times.system
    return total


def cpu_per_job(
    n: int, workers: float, anvil: float, elapsed: float, cores: int = 2
) -> dict[str, float]:
    """CPU milliseconds per job (workers, anvil) and the throughput that CPU allows on
    `cores` cores with nothing else running (the machine is shared: wall time is noisy)."""
    total = (workers + anvil) / n
    return {
        "worker_cpu_ms": 1000 * workers / n,
        "anvil_cpu_ms": 1000 * anvil / n,
        "cpu_ms": 1000 * total,
        "cpu_share_of_wall": (workers + anvil) / (elapsed * cores),
        "cpu_bound_jobs_per_s_on_2_cores": cores / total if total else float("nan"),
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def submit(
    context: JobContext, consumer: TxSender, executor: ChecksumAddress, grant: Grant
) -> tuple[str, int]:
    request = build_request(
        consumer=consumer.address,
        grants=(grant,),
        algorithm="dp_mean",
        algorithm_hash=grant.algorithm_hash,
        params=PARAMS,
        datasets=(DatasetSpec(grant.dataset_id, 1),),
    )
    submitted = submit_job(
        context.store, context.chain, consumer, request, executor=executor, pay=PRICE
    )
    tx = submitted.escrows[0][2]
    gas = int(context.chain.w3.eth.get_transaction_receipt(tx)["gasUsed"])  # type: ignore[arg-type]
    return submitted.job_id, gas


def run_per_job(
    context: JobContext, pipeline: JobPipeline, consumer: TxSender, grant: Grant, n: int
) -> dict[str, Any]:
    latencies, worker_ms, record_gas, escrow_gas = [], [], [], []
    for _ in range(n):
        start = time.perf_counter()
        job_id, gas = submit(context, consumer, pipeline.executor.address, grant)
        submitted = time.perf_counter()
        pipeline.advance(job_id)
        end = time.perf_counter()
        job = context.store.get(job_id)
        assert job.status == JobStatus.DONE, (job.reason, job.detail)
        latencies.append((end - start) * 1000)
        worker_ms.append((end - submitted) * 1000)
        record_gas.append(job.gas_used)
        escrow_gas.append(gas)
    return {
        "jobs": n,
        "latency_ms": {
            "p50": statistics.median(latencies),
            "p99": percentile(latencies, 99),
            "mean": statistics.fmean(latencies),
        },
        "worker_ms": {"p50": statistics.median(worker_ms), "p99": percentile(worker_ms, 99)},
        "jobs_per_s": 1000 * n / sum(latencies),
        "gas_per_job": {
            "record_usage": statistics.median(record_gas),
            "consumer_escrow": statistics.median(escrow_gas),
        },
    }


def run_batched(
    context: JobContext, pipeline: JobPipeline, consumer: TxSender, grant: Grant, n: int
) -> dict[str, Any]:
    anchors = pipeline.anchors
    assert isinstance(anchors, BatcherAnchors)
    gas_before, anchored_before = anchors.gas_used, anchors.anchored
    jobs = [submit(context, consumer, pipeline.executor.address, grant)[0] for _ in range(n)]
    per_job: list[float] = []
    original = pipeline.advance

    def timed_advance(job_id: str) -> int:
        start = time.perf_counter()
        steps = original(job_id)
        if steps:
            per_job.append((time.perf_counter() - start) * 1000)
        return steps

    pipeline.advance = timed_advance  # type: ignore[method-assign]
    anvil_before, cpu_before = anvil_cpu(), time.process_time()
    start = time.perf_counter()
    pipeline.run_pending(force_anchor=True, threads=THREADS)
    elapsed = time.perf_counter() - start
    cpu = cpu_per_job(n, time.process_time() - cpu_before, anvil_cpu() - anvil_before, elapsed)
    pipeline.advance = original  # type: ignore[method-assign]
    record_gas = []
    for job_id in jobs:
        job = context.store.get(job_id)
        assert job.status == JobStatus.DONE, (job.reason, job.detail)
        record_gas.append(job.gas_used)
    anchor_gas = anchors.gas_used - gas_before
    anchored = anchors.anchored - anchored_before
    per_receipt = anchor_gas / anchored if anchored else float("nan")
    return {
        "jobs": n,
        "batch_size": BATCH_SIZE,
        "worker_threads": THREADS,
        "worker_seconds": elapsed,
        "jobs_per_s": n / elapsed,
        "worker_ms_per_advance": {
            "p50": statistics.median(per_job),
            "p99": percentile(per_job, 99),
        },
        "cpu": cpu,
        "gas_per_job": {
            "record_usage": statistics.median(record_gas),
            "anchor_share": per_receipt,
            "total": statistics.median(record_gas) + per_receipt,
        },
        "anchor_gas_per_receipt": per_receipt,
        "receipts_anchored": anchored,
    }


def executor_keys(w3: Web3, n: int) -> list[str]:
    """The bench's executor key and n - 1 more, funded on anvil (fixed, for repeatable runs)."""
    keys = [EXECUTOR_KEY]
    for i in range(1, n):
        key = "0x" + keccak(text=f"ledger bench executor {i}").hex()
        address = TxSender(w3, key).address
        w3.provider.make_request("anvil_setBalance", [address, hex(10**21)])  # type: ignore[arg-type]
        keys.append(key)
    return keys


def anchored_batches(context: JobContext) -> dict[str, tuple[int, str | None]]:
    with Session(context.engine) as session:
        rows = session.exec(
            select(ReceiptBatchRow).where(col(ReceiptBatchRow.status) == BatchStatus.ANCHORED)
        ).all()
        return {row.root: (int(row.count), row.tx_hash) for row in rows}


def run_batched_processes(
    context: JobContext, pool: WorkerPool, consumer: TxSender, grant: Grant, n: int
) -> dict[str, Any]:
    # Warm-up (not timed): each process imports and opens what its first job needs.
    warm = [submit(context, consumer, pool.executors[0], grant)[0] for _ in range(4 * PROCESSES)]
    pool.run_pending(force_anchor=True)
    assert all(context.store.get(job_id).status == JobStatus.DONE for job_id in warm)
    before = anchored_batches(context)
    jobs = [submit(context, consumer, pool.executors[0], grant)[0] for _ in range(n)]
    start_wall = datetime.now(UTC)
    anvil_before = anvil_cpu()
    start = time.perf_counter()
    pool.run_pending(force_anchor=True)
    elapsed = time.perf_counter() - start
    cpu = cpu_per_job(n, pool.cpu_seconds, anvil_cpu() - anvil_before, elapsed)
    record_gas, completion_ms = [], []
    for job_id in jobs:
        job = context.store.get(job_id)
        assert job.status == JobStatus.DONE, (job.reason, job.detail)
        record_gas.append(job.gas_used)
        updated = job.updated_at if job.updated_at.tzinfo else job.updated_at.replace(tzinfo=UTC)
        completion_ms.append((updated - start_wall).total_seconds() * 1000)
    new = {root: v for root, v in anchored_batches(context).items() if root not in before}
    anchored = sum(count for count, _ in new.values())
    anchor_gas = 0
    for _, tx in new.values():
        assert tx is not None
        receipt = context.chain.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
        anchor_gas += int(receipt["gasUsed"])
    per_receipt = anchor_gas / anchored if anchored else float("nan")
    return {
        "jobs": n,
        "batch_size": PROCESS_BATCH_SIZE,
        "worker_processes": len(pool.executors),
        "threads_per_process": PROCESS_THREADS,
        "worker_seconds": elapsed,
        "jobs_per_s": n / elapsed,
        "completion_ms_since_start": {
            "p50": statistics.median(completion_ms),
            "p99": percentile(completion_ms, 99),
        },
        "cpu": cpu,
        "gas_per_job": {
            "record_usage": statistics.median(record_gas),
            "anchor_share": per_receipt,
            "total": statistics.median(record_gas) + per_receipt,
        },
        "anchor_gas_per_receipt": per_receipt,
        "receipts_anchored": anchored,
        "batches_anchored": len(new),
        "worker_faults": pool.faults,
    }


def start_pool(settings: Any, w3: Web3) -> WorkerPool:
    return WorkerPool(
        settings,
        executor_keys(w3, PROCESSES),
        PipelineOptions(batched=True),
        threads=PROCESS_THREADS,
        batch_size=PROCESS_BATCH_SIZE,
        batch_wait=3600,
    )


def allow_executors(
    context: JobContext, owner: TxSender, pool: WorkerPool, dataset_id: int
) -> None:
    for address in pool.executors[1:]:
        owner.send(context.chain.registry.functions.setExecutor(dataset_id, address, True))


def only_processes(
    settings: Any,
    context: JobContext,
    w3: Web3,
    owner: TxSender,
    consumer: TxSender,
    grant: Grant,
    dataset_id: int,
) -> int:
    with start_pool(settings, w3) as pool:
        allow_executors(context, owner, pool, dataset_id)
        batched = run_batched_processes(context, pool, consumer, grant, BATCHED_JOBS)
    print(f"batched, processes: {json.dumps(batched)}", flush=True)
    context.close()
    return 0


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, Anvil() as node:
        data_dir = Path(tmp) / "data"
        w3 = Web3(Web3.HTTPProvider(node.url))
        executor = TxSender(w3, EXECUTOR_KEY)
        deploy(w3, executor, data_dir / "deployments")
        settings = load_settings(
            data_dir=data_dir,
            rpc_url=node.url,
            database_url=f"sqlite:///{Path(tmp) / 'ledger.db'}",
            executor_key=EXECUTOR_KEY,
        )
        context = open_context(settings)
        owner = TxSender(w3, OWNER_KEY)
        consumer = TxSender(w3, CONSUMER_KEY)
        dataset_id = setup_dataset(context, owner, executor.address, data_dir)
        grant = issue_grant(context, owner, consumer.address, dataset_id)

        if os.environ.get("BENCH_ONLY_PROCESSES"):  # a quick look at one mode; writes nothing
            return only_processes(settings, context, w3, owner, consumer, grant, dataset_id)
        per_job_pipeline = open_pipeline(context, PipelineOptions(batched=False))
        run_per_job(context, per_job_pipeline, consumer, grant, WARMUP)
        per_job = run_per_job(context, per_job_pipeline, consumer, grant, JOBS)
        print(f"per-job: {json.dumps(per_job)}", flush=True)

        batched_pipeline = open_pipeline(
            context, PipelineOptions(batched=True), batch_size=BATCH_SIZE, batch_wait=3600
        )
        batched = run_batched(context, batched_pipeline, consumer, grant, BATCHED_JOBS)
        print(f"batched, threads: {json.dumps(batched)}", flush=True)

        with start_pool(settings, w3) as pool:
            allow_executors(context, owner, pool, dataset_id)
            processes = run_batched_processes(context, pool, consumer, grant, BATCHED_JOBS)
        print(f"batched, processes: {json.dumps(processes)}", flush=True)
        context.close()

    best = max((batched, processes), key=lambda mode: float(mode["jobs_per_s"]))
    results = {
        "benchmark": "jobs",
        "rows": ROWS,
        "algorithm": "dp_mean",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": os.getloadavg(),
        "per_job": per_job,
        "batched": batched,
        "batched_processes": processes,
        "batched_jobs_per_s_best": best["jobs_per_s"],
        "batched_best_mode": "processes" if best is processes else "threads",
        "baseline": "per-job mode, same run; batched in one process with threads vs processes",
        "ratios": {
            "batched_vs_per_job_throughput": batched["jobs_per_s"] / per_job["jobs_per_s"],
            "processes_vs_threads_throughput": processes["jobs_per_s"] / batched["jobs_per_s"],
            "anchor_gas_vs_record_gas": batched["anchor_gas_per_receipt"]
            / per_job["gas_per_job"]["record_usage"],
        },
        "targets": TARGETS,
        "met": {
            "p50_ms": per_job["latency_ms"]["p50"] <= TARGETS["p50_ms"],
            "batched_jobs_per_s": best["jobs_per_s"] >= TARGETS["batched_jobs_per_s"],
            "anchor_gas_per_receipt": max(
                batched["anchor_gas_per_receipt"], processes["anchor_gas_per_receipt"]
            )
            <= TARGETS["anchor_gas_per_receipt"],
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({"met": results["met"], "ratios": results["ratios"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

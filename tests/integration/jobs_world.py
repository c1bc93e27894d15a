"""A world for job tests: the contracts deployed by ``ledger deploy``'s code into a data dir, an
owner with vault datasets registered on chain (Parquet files + registration.json, the executor
allowed), grants issued by the owner, a consumer with a key, and the worker as a real process."""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import multiprocessing.context
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from eth_utils.crypto import keccak
from sqlalchemy import Engine
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from ledger.chain.compiler import compile_contracts, foundry_settings
from ledger.chain.deploy import deploy
from ledger.chain.sender import TxSender
from ledger.jobs.chain import ZERO_ADDRESS, JobChain
from ledger.jobs.crash import CRASH_ENV
from ledger.jobs.request import DatasetSpec, build_request, grant_to_json
from ledger.jobs.results import ResultStore
from ledger.jobs.store import JobStore
from ledger.jobs.submit import Submitted, submit_job
from ledger.rights.typed_data import Grant, grant_as_tuple
from ledger.settings import ANVIL_DEV_KEYS
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade

__all__ = ["World", "make_world"]

EXECUTOR_KEY, OWNER_KEY, CONSUMER_KEY, OTHER_KEY = ANVIL_DEV_KEYS
PURPOSE = keccak(text="research.oncology")
PRICE = 10**15
ROOT = Path(__file__).resolve().parents[2]
_WORKER = (
    "import typer\n"
    "from ledger.jobs.cli import install\n"
    "app = typer.Typer(pretty_exceptions_enable=False)\n"
    "install(app)\n"
    "app()\n"
)


@dataclass
class World:
    """Everything a job test needs; see the module notes."""

    w3: Web3
    url: str
    data_dir: Path
    database_url: str
    engine: Engine
    chain: JobChain
    executor: TxSender
    owner: TxSender
    consumer: TxSender
    datasets: list[int] = field(default_factory=list)
    nonce: int = 0

    @property
    def store(self) -> JobStore:
        return JobStore(self.engine)

    @property
    def results(self) -> ResultStore:
        return ResultStore(self.data_dir / "results")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a worker or CLI process on this world."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        base.update(
            LEDGER_DATA_DIR=str(self.data_dir),
            LEDGER_RPC_URL=self.url,
            LEDGER_DATABASE_URL=self.database_url,
            LEDGER_EXECUTOR_KEY=EXECUTOR_KEY,
            LEDGER_OWNER_KEY=OWNER_KEY,
            LEDGER_CONSUMER_KEY=CONSUMER_KEY,
        )
        base.update(extra)
        return base

    def add_dataset(self, name: str, rows: int, seed: int = 1) -> int:
        """A vault dataset version 1 (ages, three contributors) registered on chain, with the
        executor allowed; returns its id."""
        rng = np.random.default_rng(seed)
        contributors = [f"0x{i:064x}" for i in (1, 2, 3)]
        table = pa.table(
            {
                "age": pa.array(rng.integers(20, 90, rows).astype("float64")),
                "_row": pa.array(np.arange(rows, dtype="int64")),
                "_contributor": pa.array([contributors[i % 3] for i in range(rows)]),
            }
        )
        base = self.data_dir / "vault" / self.owner.address / "datasets" / name
        (base / "v1" / "data").mkdir(parents=True)
        pq.write_table(table, base / "v1" / "data" / "part-00000.parquet")
        version = tuple(keccak(text=f"{name}:{part}") for part in ("rows", "c", "s", "m"))
        registry = self.chain.registry
        receipt = self.owner.send(registry.functions.register(version, 7000, f"ipfs://{name}"))
        (event,) = registry.events.DatasetRegistered().process_receipt(receipt, DISCARD)
        dataset_id = int(event["args"]["datasetId"])
        self.owner.send(registry.functions.setExecutor(dataset_id, self.executor.address, True))
        (base / "registration.json").write_text(
            json.dumps(
                {
                    "name": name,
                    "chain_id": self.chain.chain_id,
                    "registry": registry.address,
                    "owner": self.owner.address,
                    "dataset_id": dataset_id,
                }
            )
        )
        self.datasets.append(dataset_id)
        return dataset_id

    def grant(self, dataset_id: int, *, issue: bool = True, **changes: Any) -> Grant:
        """A grant of the owner to the consumer for dp_mean (issued on chain unless told)."""
        now = self.chain.now()
        terms = Grant(
            dataset_id=dataset_id,
            grantor=self.owner.address,
            grantee=self.consumer.address,
            algorithm_hash=bytes.fromhex(_dp_mean_hash()[2:]),
            purpose=PURPOSE,
            valid_from=now - 10,
            valid_until=now + 30 * 86_400,
            max_uses=5,
            epsilon_budget=2_000_000,
            payment_token=Web3.to_checksum_address(ZERO_ADDRESS),
            price_per_use=PRICE,
            nonce=self.nonce,
            deadline=now + 3600,
        )
        self.nonce += 1
        terms = replace(terms, **changes)
        if issue:
            self.owner.send(self.chain.grants.functions.issue(grant_as_tuple(terms)))
        return terms

    def revoke(self, grant: Grant) -> None:
        self.owner.send(self.chain.grants.functions.revoke(grant_as_tuple(grant)))

    def submit(
        self,
        grants: list[Grant],
        params: dict[str, Any] | None = None,
        *,
        pay: int | None = None,
    ) -> Submitted:
        """Submit a dp_mean job under `grants` from the consumer (in process)."""
        request = build_request(
            consumer=self.consumer.address,
            grants=tuple(grants),
            algorithm="dp_mean",
            algorithm_hash=bytes.fromhex(_dp_mean_hash()[2:]),
            params=params or default_params(),
            datasets=tuple(DatasetSpec(g.dataset_id) for g in grants),
        )
        total = sum(g.price_per_use for g in grants)
        return submit_job(
            self.store,
            self.chain,
            self.consumer,
            request,
            executor=self.executor.address,
            pay=total if pay is None else pay,
        )

    def grant_file(self, grant: Grant, path: Path) -> Path:
        path.write_text(json.dumps(grant_to_json(grant)))
        return path

    def run_worker(
        self,
        *args: str,
        crash_at: str | None = None,
        exit_code: int = 0,
        timeout: float = 120,
        key: str | None = None,
    ) -> None:
        """``ledger job worker --once ARGS`` as a real process, forked from a server that has
        imported the ledger already (a fresh interpreter per run would spend seconds on
        imports); it dies by SIGKILL at `crash_at`, or must exit 0. `key`: another executor
        key than the world's."""
        extra = {CRASH_ENV: crash_at} if crash_at else {}
        if key is not None:
            extra["LEDGER_EXECUTOR_KEY"] = key
        process = _forkserver().Process(
            target=_worker_main, args=(self.env(**extra), ["job", "worker", "--once", *args])
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise AssertionError(f"worker still running after {timeout} s")
        expected = exit_code if crash_at is None else -signal.SIGKILL
        assert process.exitcode == expected, f"worker exit code {process.exitcode}"

    def cli(self, *args: str, ok: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
        """Any ``ledger job ...`` command as a real process."""
        proc = subprocess.run(
            [sys.executable, "-c", _WORKER, *args],
            env=self.env(**extra),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
        return proc


_PRELOAD = [
    "ledger.jobs.cli",
    "ledger.jobs.service",
    "ledger.compute.engine",
    "ledger.provenance.batcher",
    "ledger.settlement.weights",
    "psycopg",
]


@functools.cache
def _forkserver() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def _worker_main(env: dict[str, str], args: list[str]) -> None:
    """The worker process: the test's environment, then ``ledger job ARGS``."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(ROOT)
    import typer

    from ledger.jobs.cli import install

    app = typer.Typer(pretty_exceptions_enable=False)
    install(app)
    try:
        app(args=args, prog_name="ledger")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        os._exit(code)
    os._exit(0)


def mock_token(world: World) -> Contract:
    """``MockToken`` (contracts/test/utils/Mocks.sol, an ERC-20 anyone can mint), deployed."""
    source = ROOT / "contracts" / "test" / "utils" / "Mocks.sol"
    settings = foundry_settings(ROOT / "foundry.toml")
    key = hashlib.sha256(
        source.read_bytes() + json.dumps(settings, sort_keys=True).encode()
    ).hexdigest()
    cache = ROOT / "tests" / "artifacts" / f"MockToken-{key[:16]}.json"
    if not cache.exists():
        result = compile_contracts(
            [source], root=ROOT, settings=settings, solc=ROOT / "scripts" / "solc"
        )
        token = result.contracts["MockToken"]
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"abi": token.abi, "bytecode": token.bytecode}))
    data = json.loads(cache.read_text())
    factory = world.w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
    receipt = world.owner.send_raw(
        to=None, data=factory.constructor().data_in_transaction, value=0, gas=None
    )
    return world.w3.eth.contract(address=receipt["contractAddress"], abi=data["abi"])


def default_params() -> dict[str, Any]:
    return {"column": "age", "bounds": {"lo": 0, "hi": 120}, "epsilon": 0.5}


def _dp_mean_hash() -> str:
    from ledger.compute.catalog import entry

    return str(entry("dp_mean").hash)


def make_world(w3: Web3, url: str, data_dir: Path, database_url: str) -> World:
    """Deploy into `data_dir` (as ``ledger deploy``), migrate the database, build the world."""
    executor = TxSender(w3, EXECUTOR_KEY)
    deployment, _ = deploy(w3, executor, data_dir / "deployments", redeploy=True)
    upgrade(database_url)
    engine = open_engine(database_url)
    return World(
        w3=w3,
        url=url,
        data_dir=data_dir,
        database_url=database_url,
        engine=engine,
        chain=JobChain(w3, deployment),
        executor=executor,
        owner=TxSender(w3, OWNER_KEY),
        consumer=TxSender(w3, CONSUMER_KEY),
    )

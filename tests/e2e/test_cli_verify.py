"""``ledger verify`` as a third party runs it (a separate process with nothing but ``--rpc``), and
``ledger provenance lineage|uses|export`` on a real index. The first run goes through the
``ledger`` entry point; the others, to start faster, through ``python -m ledger.provenance.cli``
or a Typer app with the commands installed by `ledger.provenance.cli.install`, as
``ledger.cli`` installs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from prov.model import ProvDocument
from sqlmodel import Session
from typer.testing import CliRunner
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import Deployment
from ledger.provenance.cli import install
from ledger.provenance.receipt import SignedReceipt
from ledger.provenance.store import save_receipt
from ledger.settings import get_settings
from tests.e2e.cli import free_port
from tests.integration.indexing import deploy_for_index, open_index
from tests.integration.test_provenance_support import (
    World,
    make_world,
    record,
    result_bytes,
    signed_job,
)

RESULT = {"mean_age": 61.25, "count": 412}


@dataclass
class Chain:
    url: str
    w3: Web3
    deployment: Deployment
    world: World
    recorded: SignedReceipt
    unrecorded: SignedReceipt


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment, contracts = deploy_for_index(w3, tmp_path_factory.mktemp("deployments"))
        world = make_world(contracts, "cli")
        recorded = signed_job(world, world.datasets, result=RESULT)
        record(world, recorded)
        unrecorded = signed_job(world, world.datasets[:1], result=RESULT)
        yield Chain(node.url, w3, deployment, world, recorded, unrecorded)


def third_party(
    *args: str, module: str = "ledger.provenance.cli"
) -> subprocess.CompletedProcess[str]:
    """Run the commands in a process of their own, with settings that would fail if read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    env["LEDGER_RPC_URL"] = "http://127.0.0.1:1"
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write(tmp_path: Path, result: object, signed: SignedReceipt) -> tuple[str, str]:
    result_file, receipt_file = tmp_path / "result.json", tmp_path / "receipt.json"
    result_file.write_bytes(result_bytes(result))
    receipt_file.write_text(signed.to_json())
    return str(result_file), str(receipt_file)


def test_verify_runs_on_nothing_but_an_rpc_endpoint(chain: Chain, tmp_path: Path) -> None:
    result, receipt = write(tmp_path, RESULT, chain.recorded)
    proc = third_party("verify", result, receipt, "--rpc", chain.url, module="ledger.cli")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "VERIFIED" in proc.stdout and chain.recorded.hash in proc.stdout

    tampered, receipt = write(tmp_path, dict(RESULT, count=413), chain.recorded)
    from_block = str(chain.deployment.deploy_block)
    proc = third_party("verify", tampered, receipt, "--rpc", chain.url, "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    verdict = json.loads(proc.stdout)
    assert (verdict["verified"], verdict["reason"]) == (False, "tampered_result")

    result, never = write(tmp_path, RESULT, chain.unrecorded)
    proc = third_party("verify", result, never, "--rpc", chain.url, "--from-block", from_block)
    assert proc.returncode == 1 and "REJECTED (never_recorded)" in proc.stdout

    proc = third_party("verify", result, never, "--rpc", f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 3 and "no verdict" in proc.stderr


def app() -> typer.Typer:
    application = typer.Typer(no_args_is_help=True)
    install(application)
    return application


def test_verify_usage_errors(chain: Chain, tmp_path: Path) -> None:
    result, receipt = write(tmp_path, RESULT, chain.recorded)
    runner = CliRunner()
    outcome = runner.invoke(app(), ["verify", result, receipt, "--rpc", "ws://127.0.0.1:1"])
    assert outcome.exit_code == 2 and "http" in outcome.output
    outcome = runner.invoke(app(), ["verify", str(tmp_path / "missing.json"), receipt])
    assert outcome.exit_code == 2
    outcome = runner.invoke(app(), ["verify", result, receipt, "--rpc", chain.url, "--json"])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.output)["recorded_block"] >= chain.deployment.deploy_block
    outcome = runner.invoke(
        app(), ["verify", result, receipt, "--rpc", chain.url, "--from-block", "999999"]
    )
    assert outcome.exit_code == 3 and "--from-block" in outcome.output  # the node refuses it
    # Pinned to the deployment the verifier trusts: the genuine one verifies, another is refused.
    genuine = chain.deployment.addresses["UsageLedger"]
    outcome = runner.invoke(
        app(), ["verify", result, receipt, "--rpc", chain.url, "--usage-ledger", genuine]
    )
    assert outcome.exit_code == 0, outcome.output
    other = "0x" + "12" * 20
    outcome = runner.invoke(
        app(), ["verify", result, receipt, "--rpc", chain.url, "--usage-ledger", other, "--json"]
    )
    assert outcome.exit_code == 1 and json.loads(outcome.output)["reason"] == "other_contracts"
    outcome = runner.invoke(
        app(), ["verify", result, receipt, "--rpc", chain.url, "--usage-ledger", "0x12"]
    )
    assert outcome.exit_code == 2 and "20-byte address" in outcome.output


@pytest.fixture()
def indexed(
    chain: Chain, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    indexer, engine = open_index(chain.w3, chain.deployment, database_url)
    try:
        indexer.run_once()
        with Session(engine) as session:
            save_receipt(session, chain.recorded)
            session.commit()
    finally:
        engine.dispose()
    monkeypatch.setenv("LEDGER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_provenance_commands(indexed: str, chain: Chain, tmp_path: Path) -> None:
    runner = CliRunner()
    receipt = chain.recorded.receipt
    outcome = runner.invoke(app(), ["provenance", "lineage", receipt.result_hash, "--json"])
    assert outcome.exit_code == 0, outcome.output
    lineage = json.loads(outcome.output)
    assert lineage["job_id"] == receipt.job_id and lineage["receipt_hash"] == chain.recorded.hash
    assert [d["dataset_id"] for d in lineage["datasets"]] == chain.world.datasets

    outcome = runner.invoke(app(), ["provenance", "lineage", receipt.job_id])
    assert outcome.exit_code == 0 and receipt.result_hash in outcome.output

    dataset = chain.world.datasets[0]
    outcome = runner.invoke(app(), ["provenance", "uses", str(dataset), "--json"])
    assert outcome.exit_code == 0, outcome.output
    (use,) = json.loads(outcome.output)
    assert use["job_id"] == receipt.job_id and use["consumer"] == chain.world.consumer
    assert use["epsilon"] == 250_000 and int(use["revenue"]) > 0

    out = tmp_path / "prov.json"
    outcome = runner.invoke(app(), ["provenance", "export", receipt.job_id, "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    doc = ProvDocument.deserialize(source=str(out), format="json")
    assert any(f"job-{receipt.job_id}" in str(r.identifier) for r in doc.get_records())

    outcome = runner.invoke(app(), ["provenance", "lineage", "0x" + "ee" * 32])
    assert outcome.exit_code != 0
    assert "is neither a recorded job id" in str(outcome.exception)
    outcome = runner.invoke(app(), ["provenance", "export", "job-1"])
    assert "64 hex digits" in str(outcome.exception)

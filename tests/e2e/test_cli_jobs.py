"""``ledger job submit|status|result|worker`` as a user runs them, against a real anvil and a
SQLite database: submit with the consumer's key from the environment, follow, fetch the result
(grantee only), and refusals that name the field and write nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.provenance.canonical import result_hash
from ledger.provenance.verify import verify_result
from tests.integration.jobs_world import (
    CONSUMER_KEY,
    OTHER_KEY,
    PRICE,
    ROOT,
    World,
    default_params,
    make_world,
)

# A `ledger` command with the job group installed, and errors printed as `ledger.cli.main`
# prints them (one line, exit 1).
_PROGRAM = (
    "import sys, typer\n"
    "from ledger.errors import LedgerError\n"
    "from ledger.jobs.cli import install\n"
    "app = typer.Typer(pretty_exceptions_enable=False)\n"
    "install(app)\n"
    "try:\n"
    "    app(prog_name='ledger')\n"
    "except LedgerError as exc:\n"
    "    print(f'error: {exc}', file=sys.stderr)\n"
    "    raise SystemExit(1) from None\n"
)


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with Anvil() as node:
        yield node


@pytest.fixture()
def world(anvil: Anvil, tmp_path: Path) -> Iterator[World]:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    made = make_world(w3, anvil.url, tmp_path / "data", f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        yield made
    finally:
        made.engine.dispose()


def ledger(
    world: World, *args: str, ok: bool = True, **env: str
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROGRAM, *args],
        env=world.env(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    for key in (CONSUMER_KEY, OTHER_KEY):
        assert key[2:].lower() not in (proc.stdout + proc.stderr).lower()
    return proc


def test_submit_follow_and_fetch_a_result(world: World, tmp_path: Path) -> None:
    dataset = world.add_dataset("ages", 200)
    grant_file = world.grant_file(world.grant(dataset), tmp_path / "grant.json")
    params = json.dumps(default_params())

    submitted = json.loads(
        ledger(
            world,
            "job", "submit", "--grant", str(grant_file), "--algorithm", "dp_mean",
            "--params", params, "--dataset", str(dataset), "--pay", str(PRICE), "--json",
        ).stdout
    )  # fmt: skip
    job_id = submitted["job_id"]
    assert submitted["status"] == "awaiting_payment"
    assert [e["amount"] for e in submitted["escrows"]] == [str(PRICE)]

    ledger(world, "job", "worker", "--once")
    status = json.loads(ledger(world, "job", "status", job_id, "--json").stdout)
    assert status["status"] == "done" and status["result_available"]
    assert status["record_tx"] and status["receipt_hash"]

    out = tmp_path / "result.json"
    fetched = json.loads(ledger(world, "job", "result", job_id, "--out", str(out), "--json").stdout)
    written = json.loads(out.read_text())
    assert result_hash(written) == fetched["result_hash"] == status["result_hash"]
    receipt_text = (tmp_path / "result.json.receipt.json").read_text()
    assert json.loads(receipt_text)["hash"] == status["receipt_hash"]
    # What the grantee received verifies against the chain alone (ledger verify's check).
    verdict = verify_result(out.read_bytes(), receipt_text, world.w3)
    assert verdict.verified, verdict.message
    assert (verdict.mode, verdict.job_id) == ("job", job_id)

    denied = ledger(world, "job", "result", job_id, ok=False, LEDGER_CONSUMER_KEY=OTHER_KEY)
    assert "not the grantee" in denied.stderr
    assert "mean" not in denied.stdout + denied.stderr


def test_bad_requests_name_the_field_and_write_nothing(world: World, tmp_path: Path) -> None:
    dataset = world.add_dataset("ages", 50)
    grant_file = world.grant_file(world.grant(dataset), tmp_path / "grant.json")
    bad = ledger(
        world,
        "job", "submit", "--grant", str(grant_file), "--algorithm", "dp_mean",
        "--params", "[1, 2]", "--dataset", str(dataset),
        ok=False,
    )  # fmt: skip
    assert "'params'" in bad.stderr and "JSON object" in bad.stderr
    unknown = ledger(world, "job", "status", "0x" + "00" * 32, ok=False)
    assert "no job" in unknown.stderr
    assert world.store.runnable() == []

"""`ledger settle ...` and `ledger claim` as a user runs them (a Typer app with the settlement
commands installed, against a real anvil and a SQLite index): run, rerun, proof, claim, verify,
report, and `settle tree` on good and bad CSV files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import contracts_of, deploy
from ledger.chain.sender import TxSender
from ledger.merkle import StandardMerkleTree, leaf_hash, verify
from ledger.settings import ANVIL_DEV_KEYS, get_settings
from ledger.settlement.cli import install
from ledger.settlement.errors import NothingToClaimError, TreeInputError
from tests.integration.chain import LedgerContracts
from tests.integration.test_settlement import build_world, expected_entitlements, write_vault


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
    install(app)
    return app


@pytest.fixture
def settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Anvil]:
    with Anvil() as node:
        monkeypatch.setenv("LEDGER_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("LEDGER_RPC_URL", node.url)
        monkeypatch.setenv("LEDGER_EXECUTOR_KEY", ANVIL_DEV_KEYS[0])
        monkeypatch.setenv("LEDGER_OWNER_KEY", ANVIL_DEV_KEYS[1])
        monkeypatch.setenv("LEDGER_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'ledger.db'}")
        get_settings.cache_clear()
        yield node
    get_settings.cache_clear()


def invoke(app: typer.Typer, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert (result.exit_code == 0) == ok, (result.output, result.exception)
    return result


def test_settle_run_proof_claim_verify_report(
    app: typer.Typer, settings_env: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w3 = Web3(Web3.HTTPProvider(settings_env.url))
    deployment, _ = deploy(w3, TxSender(w3, ANVIL_DEV_KEYS[0]), tmp_path / "data" / "deployments")
    bound = contracts_of(w3, deployment)
    ledger = LedgerContracts(
        w3,
        deployment.deployer,
        bound["DataRegistry"],
        bound["AccessGrants"],
        bound["RevenueVault"],
        bound["UsageLedger"],
    )
    world = build_world(w3, deployment, ledger)
    write_vault(tmp_path / "data", world)
    due, held = expected_entitlements(world, carol_paid=False)

    (outcome,) = json.loads(invoke(app, "settle", "run", "--json").stdout)
    assert outcome["epoch"] == 1 and outcome["sent"] and outcome["status"] == "published"
    assert int(outcome["total"]) == sum(due.values()) and int(outcome["held_total"]) == held
    epoch_dir = Path(outcome["tree_file"]).parent
    assert (epoch_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (epoch_dir / "report.csv").read_text().splitlines()
    assert lines[0] == "account,amount,cumulative" and len(lines) == 1 + len(due)
    summary = json.loads((epoch_dir / "report.json").read_text())
    assert summary["root"] == outcome["root"] and set(summary["by_dataset"]) == {"1", "2"}
    assert "nothing new to settle" in invoke(app, "settle", "run").stdout

    alice = world.payees["alice"]
    proof = json.loads(invoke(app, "settle", "proof", alice, "--json").stdout)
    assert int(proof["cumulative"]) == due[alice] and int(proof["claimable"]) == due[alice]
    leaf = leaf_hash(("address", "uint256"), (alice, due[alice]))
    assert verify(outcome["root"], leaf, proof["proof"])

    monkeypatch.setenv("CLAIMER_KEY", ANVIL_DEV_KEYS[2])
    before = w3.eth.get_balance(alice)
    args = ("claim", "--account", alice, "--key-env", "CLAIMER_KEY", "--json")
    claimed = json.loads(invoke(app, *args).stdout)
    assert int(claimed["amount"]) == due[alice] == w3.eth.get_balance(alice) - before
    again = invoke(app, *args, ok=False)
    assert isinstance(again.exception, NothingToClaimError)
    assert "nothing to claim" in str(again.exception)

    report = json.loads(invoke(app, "settle", "verify", "1", "--json").stdout)
    assert report["ok"] and report["published_root"] == outcome["root"]
    files = json.loads(invoke(app, "settle", "report", "1", "--json").stdout)
    assert Path(files["png"]).stat().st_size > 0


def test_settle_tree_writes_root_dump_and_proofs(app: typer.Typer, tmp_path: Path) -> None:
    accounts = [Web3.to_checksum_address(f"0x{i:040x}") for i in range(1, 6)]
    csv_file = tmp_path / "payouts.csv"
    rows = "".join(f"{a},{(i + 1) * 1000}\n" for i, a in enumerate(accounts))
    csv_file.write_text("address,amount\n" + rows)
    result = invoke(app, "settle", "tree", str(csv_file), "--json")
    data = json.loads(result.stdout)
    expected = StandardMerkleTree.of(
        [(a, (i + 1) * 1000) for i, a in enumerate(accounts)], ("address", "uint256")
    )
    assert data["root"] == expected.root and data["accounts"] == 5 and data["total"] == "15000"
    loaded = StandardMerkleTree.load(json.loads(Path(data["dump"]).read_text()))
    assert loaded.root == expected.root
    claims = json.loads(Path(data["proofs"]).read_text())["claims"]
    for i, account in enumerate(accounts):
        entry = claims[account]
        assert int(entry["amount"]) == (i + 1) * 1000
        assert expected.verify((account, (i + 1) * 1000), entry["proof"])

    human = invoke(app, "settle", "tree", str(csv_file)).stdout
    assert human.splitlines()[0] == expected.root

    cases = {
        "address,amount\n0x12,5\n": "line 2: address",
        f"address,amount\n{accounts[0]},-5\n": "line 2: amount",
        f"address,amount\n{accounts[0]},1.5\n": "line 2: amount",
        f"address,amount\n{accounts[0]},1\n{accounts[1]},2\n{accounts[0].lower()},3\n": (
            "line 4: address repeats the address of line 2"
        ),
        "account,value\n": "line 1: header",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        failed = invoke(app, "settle", "tree", str(bad), ok=False)
        assert isinstance(failed.exception, TreeInputError)
        assert message in str(failed.exception)
        assert not bad.with_suffix(".tree.json").exists()

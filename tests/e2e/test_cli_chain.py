"""`ledger chain up|down|status` and `ledger deploy` as a user runs them: restarting the
embedded chain keeps its state, deploying twice sends nothing, bad settings are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from ledger.chain.deploy import contracts_of, load_deployment
from ledger.chain.sender import TxSender
from ledger.settings import ANVIL_DEV_KEYS
from tests.e2e.cli import ledger


def test_restart_keeps_state_and_deploy_is_idempotent(env: dict[str, str]) -> None:
    up = json.loads(ledger(env, "chain", "up", "--json").stdout)
    assert up["running"] and up["chain_id"] == 31337
    first = json.loads(ledger(env, "deploy", "--json").stdout)
    assert first["changed"] is True
    w3 = Web3(Web3.HTTPProvider(up["url"]))
    deployment = load_deployment(Path(env["LEDGER_DATA_DIR"]) / "deployments", 31337)
    registry = contracts_of(w3, deployment)["DataRegistry"]
    sender = TxSender(w3, ANVIL_DEV_KEYS[1])
    version = tuple(Web3.keccak(text=f"v1-{i}") for i in range(4))
    sender.send(registry.functions.register(version, 7000, "ipfs://meta"))
    height = w3.eth.block_number

    assert json.loads(ledger(env, "chain", "down", "--json").stdout) == {"stopped": True}
    assert json.loads(ledger(env, "chain", "status", "--json").stdout)["running"] is False
    again = json.loads(ledger(env, "chain", "up", "--json").stdout)
    assert again["pid"] != up["pid"]
    assert again["block_number"] == height, "the chain must come back at the same height"
    assert registry.functions.datasetCount().call() == 1
    assert registry.functions.ownerOf(1).call() == sender.address
    second = json.loads(ledger(env, "deploy", "--json").stdout)
    assert second["changed"] is False
    assert second["addresses"] == first["addresses"]


def test_deploy_without_chain_says_how_to_start_it(env: dict[str, str]) -> None:
    proc = ledger(env, "deploy", ok=False)
    assert "ledger chain up" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LEDGER_RPC_URL", "localhost:8545", "LEDGER_RPC_URL: must be an http:// or https:// URL"),
        ("LEDGER_EXECUTOR_KEY", "0x1234", "LEDGER_EXECUTOR_KEY: must be 0x followed by 64"),
        ("LEDGER_EXECUTOR_KEY", "0x" + "00" * 32, "LEDGER_EXECUTOR_KEY: must be a valid secp256k1"),
        ("LEDGER_DATABASE_URL", "mysql://x", "LEDGER_DATABASE_URL: must be a sqlite://"),
        ("LEDGER_CONFIRMATIONS", "zero", "LEDGER_CONFIRMATIONS"),
    ],
)
def test_bad_settings_are_named(
    env: dict[str, str], variable: str, value: str, expected: str
) -> None:
    proc = ledger(env | {variable: value}, "deploy", ok=False)
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    if variable == "LEDGER_EXECUTOR_KEY" and value != "0x" + "00" * 32:
        assert value not in proc.stderr, "a key, even malformed, is never echoed"


def test_wrong_chain_id_is_refused(env: dict[str, str]) -> None:
    ledger(env, "chain", "up")
    proc = ledger(env | {"LEDGER_CHAIN_ID": "1"}, "deploy", ok=False)
    assert "expects chain id 1" in proc.stderr and "31337" in proc.stderr


def test_rpc_url_without_key_is_refused(env: dict[str, str]) -> None:
    ledger(env, "chain", "up")
    url = f"http://127.0.0.1:{env['LEDGER_ANVIL_PORT']}"
    proc = ledger(env | {"LEDGER_RPC_URL": url}, "deploy", ok=False)
    assert "LEDGER_EXECUTOR_KEY" in proc.stderr

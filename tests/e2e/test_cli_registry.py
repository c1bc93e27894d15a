"""``ledger dataset register|version|search|show`` as a user runs them on the embedded chain:
register (once, however often it is run), publish a version, index, find and show the dataset;
bad input is one line naming what to fix; no identifier value of the export is ever printed.
The first registration, an error and the search run as separate ``ledger`` processes, the rest
through the same entry point in this process (each process spends seconds importing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from ledger.chain.client import connect
from ledger.chain.deploy import contracts_of, deploy
from ledger.chain.embedded import EmbeddedChain
from ledger.chain.sender import TxSender
from ledger.cli import main
from ledger.samples import hospital_split
from ledger.settings import ANVIL_DEV_KEYS, get_settings, load_settings
from tests.e2e.cli import ledger
from tests.integration.indexing import open_index
from tests.unit.registry.vaultfiles import write_version

METADATA = """\
title: Diabetes progression, north hospital
description: Baseline measurements and one-year disease progression.
keywords: [diabetes, endocrinology]
license: CC-BY-4.0
publisher: North Hospital
temporal_coverage:
  start: 2019-01-01
  end: 2021-12-31
"""


def dataset(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ledger dataset ARGS``; asserts it succeeded (or failed, with ``ok=False``)."""
    return ledger(env, "dataset", *args, ok=ok)


def in_process(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    *args: str,
) -> str:
    """``ledger dataset ARGS`` through the same entry point in this process (no start-up cost);
    returns what it printed. It must succeed."""
    for key, value in env.items():
        if key.startswith("LEDGER_"):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    monkeypatch.setattr(sys, "argv", ["ledger", "dataset", *args])
    capsys.readouterr()
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr()
    finally:
        get_settings.cache_clear()
    return capsys.readouterr().out


def test_register_version_search_show(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env["COLUMNS"] = "200"  # rich tables at a wide terminal's width
    data_dir = Path(env["LEDGER_DATA_DIR"])
    # `ledger chain up`, `deploy` and `index` have their own end-to-end tests: here they run in
    # this process (each `ledger` process spends seconds importing), the registry's commands not.
    settings = load_settings(data_dir=data_dir, anvil_port=int(env["LEDGER_ANVIL_PORT"]))
    EmbeddedChain(settings).up()
    w3 = connect(settings)
    deployment, _ = deploy(w3, TxSender(w3, ANVIL_DEV_KEYS[0]), settings.resolved_deployments_dir)
    owner = Account.from_key(ANVIL_DEV_KEYS[1]).address
    vault = data_dir / "vault" / owner
    v1 = write_version(vault, "diabetes", 1, owner, rows=80)
    meta = tmp_path / "meta.yaml"
    meta.write_text(METADATA)

    first = json.loads(
        dataset(env, "register", "diabetes", "--metadata", str(meta), "--json").stdout
    )
    assert first["sent"] is True and first["version"] == 1
    again = json.loads(
        in_process(
            monkeypatch, capsys, env, "register", "diabetes", "--metadata", str(meta), "--json"
        )
    )
    assert again == first | {"sent": False}

    bad_share = dataset(
        env, "register", "diabetes", "--metadata", str(meta), "--owner-share", "10001", ok=False
    )
    assert "--owner-share must be 0..10000 basis points" in bad_share.stderr
    assert len(bad_share.stderr.strip().splitlines()) == 1 and "Traceback" not in bad_share.stderr

    write_version(vault, "diabetes", 2, owner, rows=90, previous_commitment=v1["commitment"])
    published = json.loads(in_process(monkeypatch, capsys, env, "version", "diabetes", "--json"))
    assert [(r["version"], r["sent"]) for r in published] == [(1, False), (2, True)]

    indexer, engine = open_index(w3, deployment, settings.resolved_database_url)
    try:
        indexer.run_once()
    finally:
        engine.dispose()
    table = dataset(env, "search", "progression", "--keyword", "endocrinology")
    assert "Diabetes progression, north hospital" in table.stdout
    assert "CC-BY-4.0" in table.stdout and "~100" in table.stdout and "1-1 of 1" in table.stdout

    shown = json.loads(
        in_process(monkeypatch, capsys, env, "show", str(first["dataset_id"]), "--json")
    )
    assert shown["owner"] == owner and shown["version"] == 2
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["versions"][1]["previous_commitment"] == first["commitment"]
    assert shown["metadata"]["license"] == "CC-BY-4.0"
    assert shown["metadata"]["record_count"] == 100  # 90 rows, rounded
    assert shown["usage"] == {"jobs": 0, "uses": 0, "epsilon_micro": 0, "revenue": {}}

    # Identifier values of the export never reach the output, nor identifier column names.
    page = in_process(monkeypatch, capsys, env, "show", str(first["dataset_id"]))
    assert "schema (kept columns)" in page and "Diabetes progression" in page
    outputs = "\n".join(
        [page, table.stdout, json.dumps(shown), json.dumps(published), json.dumps(first)]
    )
    export = hospital_split("diabetes", 3)[0].iloc[:90]
    for value in [*export["patient_id"].astype(str), *export["record_id"].astype(str)]:
        assert value not in outputs
    assert "patient_id" not in outputs and "record_id" not in outputs

    # The owner allows the service's executor (LEDGER_EXECUTOR_KEY: anvil account 0), once.
    registry = contracts_of(w3, deployment)["DataRegistry"]
    executor = Account.from_key(ANVIL_DEV_KEYS[0]).address
    dataset_id = str(first["dataset_id"])
    allowed = json.loads(in_process(monkeypatch, capsys, env, "executor", dataset_id, "--json"))
    assert allowed["allowed"] is True and allowed["tx_hash"].startswith("0x")
    assert registry.functions.isExecutor(first["dataset_id"], executor).call() is True
    again_allowed = json.loads(
        in_process(monkeypatch, capsys, env, "executor", dataset_id, "--json")
    )
    assert again_allowed == allowed | {"tx_hash": None}
    revoked = json.loads(
        in_process(monkeypatch, capsys, env, "executor", dataset_id, "--revoke", "--json")
    )
    assert revoked["allowed"] is False and revoked["tx_hash"].startswith("0x")
    assert registry.functions.isExecutor(first["dataset_id"], executor).call() is False
    bad = dataset(env, "executor", dataset_id, "0x1234", ok=False)
    assert "executor: must be a non-zero 0x-prefixed 20-byte address" in bad.stderr
    # Someone else's key cannot approve executors on the owner's dataset; nothing is sent.
    stranger = env | {"LEDGER_OWNER_KEY": ANVIL_DEV_KEYS[2]}
    nonce = w3.eth.get_transaction_count(Account.from_key(ANVIL_DEV_KEYS[2]).address)
    refused = dataset(stranger, "executor", dataset_id, ok=False)
    assert f"dataset {dataset_id} is owned by {owner}" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert w3.eth.get_transaction_count(Account.from_key(ANVIL_DEV_KEYS[2]).address) == nonce
    assert registry.functions.isExecutor(first["dataset_id"], executor).call() is False

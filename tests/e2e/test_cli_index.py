"""`ledger index` as a user runs it, on SQLite and PostgreSQL: it migrates, backfills, reports,
resumes, follows until Ctrl-C, and names LEDGER_DATABASE_URL when the database is unreachable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from web3 import Web3

from ledger.chain.deploy import contracts_of, load_deployment
from ledger.chain.sender import TxSender
from ledger.indexer.state import table_of
from ledger.settings import ANVIL_DEV_KEYS
from ledger.store.database import open_engine
from ledger.store.models import BatchAnchor, ChainEvent
from tests.e2e.cli import ledger


def anchors(database_url: str) -> int:
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(table_of(BatchAnchor))
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def test_index_backfills_resumes_and_follows(env: dict[str, str], database_url: str) -> None:
    env["LEDGER_DATABASE_URL"] = database_url
    up = json.loads(ledger(env, "chain", "up", "--json").stdout)
    ledger(env, "deploy")
    w3 = Web3(Web3.HTTPProvider(up["url"]))
    deployment = load_deployment(Path(env["LEDGER_DATA_DIR"]) / "deployments", 31337)
    usage = contracts_of(w3, deployment)["UsageLedger"]
    sender = TxSender(w3, ANVIL_DEV_KEYS[3])
    sender.send(usage.functions.anchorBatch(Web3.keccak(text="cli-1"), 4))

    report = json.loads(ledger(env, "index", "--json").stdout)
    assert report["end_block"] == w3.eth.block_number and report["events"] > 0
    engine = open_engine(database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                select(func.count()).select_from(table_of(ChainEvent))
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored == report["events"] and anchors(database_url) == 1

    again = json.loads(ledger(env, "index", "--json").stdout)
    assert (again["events"], again["chunks"]) == (0, 0)
    human = ledger(env, "index").stdout
    assert f"indexed through block {w3.eth.block_number}" in human

    follower = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", "index", "--follow", "--interval", "0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sender.send(usage.functions.anchorBatch(Web3.keccak(text="cli-2"), 5))
        deadline = time.monotonic() + 30
        while anchors(database_url) < 2:
            assert follower.poll() is None, follower.communicate()
            assert time.monotonic() < deadline, "--follow did not index the new block"
            time.sleep(0.1)
    finally:
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, out + err
    assert "resumes from the cursor" in out


def test_unreachable_database_names_the_setting(env: dict[str, str]) -> None:
    ledger(env, "chain", "up")
    ledger(env, "deploy")
    bad = dict(env, LEDGER_DATABASE_URL="postgresql://ledger:secret@127.0.0.1:1/ledger")
    proc = ledger(bad, "index", ok=False)
    assert "LEDGER_DATABASE_URL" in proc.stderr and "secret" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_deployment_says_to_deploy(env: dict[str, str]) -> None:
    ledger(env, "chain", "up")
    proc = ledger(env, "index", ok=False)
    assert "ledger deploy" in proc.stderr

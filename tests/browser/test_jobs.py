"""A consumer's job through the console, against the jobs world of tests/integration (a vault
dataset with rows, the owner's grant for dp_mean, the worker as a real process): the wallet pays
the escrow, the page follows the job while the worker runs it, shows the released result, and
draws the lineage up to the result."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from playwright.sync_api import expect
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.settings import load_settings
from tests.browser.conftest import OpenConsole, Served, serve
from tests.integration.jobs_world import (
    CONSUMER_KEY,
    EXECUTOR_KEY,
    PRICE,
    World,
    default_params,
    make_world,
)

CONSUMER = Account.from_key(CONSUMER_KEY).address


def short(value: str) -> str:
    """How the graph labels a hash (graph.js `short`)."""
    return f"{value[:8]}…{value[-4:]}"


@pytest.fixture(scope="module")
def jobs_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str, int]]:
    """The jobs world on its own anvil, one 60-row dataset and the owner's grant (0.001 ETH a
    use), served by the API with the console; (world, url, grant's dataset id)."""
    data_dir: Path = tmp_path_factory.mktemp("jobs-console")
    database_url = f"sqlite:///{data_dir / 'ledger.db'}"
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        world = make_world(w3, node.url, data_dir, database_url)
        dataset_id = world.add_dataset("alpha", 60)
        world.grant(dataset_id)
        settings = load_settings(
            data_dir=data_dir,
            rpc_url=node.url,
            database_url=database_url,
            executor_key=EXECUTOR_KEY,
        )
        try:
            with serve(settings) as (url, _services):
                yield world, url, dataset_id
        finally:
            world.engine.dispose()


@pytest.fixture(scope="module")
def served(jobs_world: tuple[World, str, int]) -> Served:
    world, url, _ = jobs_world
    return Served(url, world.w3)


def test_consumer_runs_pays_follows_and_reads_a_job(
    open_console: OpenConsole, jobs_world: tuple[World, str, int]
) -> None:
    world, _, dataset_id = jobs_world
    console = open_console(CONSUMER_KEY)
    page = console.page
    page.get_by_role("button", name="Connect wallet").click()
    page.get_by_role("button", name="Sign in with Ethereum").click()
    expect(page.locator("#wallet-state")).to_contain_text(f"Signed in as {CONSUMER}")

    page.get_by_role("tab", name="Grants").click()
    received = page.locator("#grants-received tbody tr")
    expect(received).to_have_count(1)
    expect(received.locator("td").nth(3)).to_have_text("dp_mean")
    received.get_by_role("button", name=re.compile("^Run a job under grant")).click()
    expect(page.locator("#panel-jobs")).to_be_visible()
    # The grant names dp_mean's code hash: the form says so by the catalog's name.
    expect(page.locator("#run-form").get_by_label("Algorithm")).to_have_value("dp_mean")
    page.get_by_label("Parameters (JSON)").fill(json.dumps(default_params()))
    console.shot("run-form")

    w3 = world.w3
    before = w3.eth.get_balance(CONSUMER)
    page.get_by_role("button", name="Create, pay and follow").click()
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(1, timeout=20_000)
    job_id = rows.first.get_attribute("data-job-id")
    assert job_id is not None and re.fullmatch(r"0x[0-9a-f]{64}", job_id)

    # The wallet paid the escrow: the grant's price to the RevenueVault, nothing else.
    (escrow,) = console.wallet.sent
    sent = w3.eth.get_transaction(escrow)  # type: ignore[arg-type]
    receipt = w3.eth.get_transaction_receipt(escrow)  # type: ignore[arg-type]
    assert receipt["status"] == 1 and sent["value"] == PRICE
    assert sent["to"] == world.chain.vault.address
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert before - w3.eth.get_balance(CONSUMER) == PRICE + fee
    expect(rows.first).to_have_attribute("data-status", "awaiting_payment")
    console.shot("job-paid")

    world.run_worker()  # the page keeps polling while the worker runs the job
    expect(rows.first).to_have_attribute("data-status", re.compile("^(recorded|anchored|done)$"))
    job = world.store.get(job_id)
    assert job.result_hash is not None and job.record_tx is not None
    rows.first.get_by_role("button", name="Result").click()
    expect(page.locator("#job-result")).to_be_visible()
    expect(page.locator("#job-result-hash")).to_have_text(job.result_hash)
    expect(page.locator("#job-result-tx")).to_have_text(job.record_tx)
    shown = json.loads(page.locator("#job-result-json").inner_text())
    released = page.evaluate(f"fetch('/v1/jobs/{job_id}/result').then(r => r.json())")
    assert shown == released["result"] and shown
    console.shot("job-result")

    rows.first.get_by_role("button", name="Provenance").click()
    graph = page.locator("#provenance-graph svg")
    result_node = graph.locator(".node[data-kind='result']")
    expect(result_node).to_have_count(1)
    expect(result_node.locator("text.sub")).to_have_text(short(job.result_hash))
    expect(graph.locator(".node[data-kind='dataset-version']")).to_have_count(1)
    expect(graph.locator(f".node[data-id='version:{dataset_id}:1']")).to_have_count(1)
    expect(graph.locator("path.edge[data-from='job'][data-to='result']")).to_have_count(1)
    console.shot("job-lineage")
    console.assert_clean()

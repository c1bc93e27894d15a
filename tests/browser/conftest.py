"""Browser tests: the API with its web console served by a real uvicorn server, over a real anvil
with the contracts, a SQLite index and a published settlement epoch (the world of
tests/integration/test_settlement.py), driven in Debian's headless Chromium by Playwright with a
test wallet injected into the page.

Screenshots of every step go to tests/browser/artifacts/ (not committed).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from eth_utils.crypto import keccak
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from sqlalchemy import Engine
from web3 import Web3
from web3.logs import DISCARD

from api.app import create_app
from api.deps import ApiOptions, Services
from ledger.chain.anvil import Anvil
from ledger.chain.sender import TxSender
from ledger.registry.documents import store_document
from ledger.registry.metadata import MetadataDocument, PublicColumn, TemporalCoverage
from ledger.settings import ANVIL_DEV_KEYS, Settings, load_settings
from ledger.settlement import ETH, Settlement, VaultIndex
from tests.browser.wallet import TestWallet
from tests.integration.chain import local_account, transact
from tests.integration.indexing import deploy_for_index, open_index
from tests.integration.test_settlement import World, build_world, expected_entitlements, write_vault

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: What the console must run under, as the service itself sends it: its own scripts and styles
#: only, nothing inline (written out here, not imported, so a weakened policy fails the tests).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: The machine is shared: give the page time.
expect.set_options(timeout=10_000)
#: Seed of the relayer's key (the service's executor key), used by nothing else here.
RELAYER_SEED = "console:relayer"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ConsoleWorld:
    """The running service and what the settlement world set up."""

    url: str
    world: World
    due: dict[str, int]
    services: Services
    catalogued: tuple[int, MetadataDocument]

    @property
    def w3(self) -> Web3:
        """web3 on the world's anvil."""
        return self.world.w3


#: A third dataset of the world's owner, with a catalog document (the others have none).
DOCUMENT = MetadataDocument(
    name="oncology-c",
    version=1,
    title="Breast cancer cohort, hospital C",
    description="De-identified tumour measurements (browser test).",
    keywords=["oncology"],
    license="CC-BY-4.0",
    publisher="Hospital C",
    temporal_coverage=TemporalCoverage(start=date(2021, 1, 1), end=date(2024, 12, 31)),
    record_count=190,
    contributor_count=20,
    columns=[PublicColumn(name="age", type="integer", unit="years")],
    schema_hash="0x" + keccak(text="console:schema").hex(),
    commitment="0x" + keccak(text="console:rows").hex(),
    previous_commitment=None,
)


def _register_catalogued(world: World, engine: Engine) -> tuple[int, MetadataDocument]:
    """Register `DOCUMENT`'s dataset for the world's owner and store the document."""
    version = (
        keccak(text="console:rows"),
        keccak(text="console:contributors"),
        keccak(text="console:schema"),
        bytes.fromhex(DOCUMENT.hash[2:]),
    )
    registry = world.ledger.registry
    receipt = transact(
        registry.functions.register(version, 7000, DOCUMENT.uri), world.owner.address
    )
    (event,) = registry.events.DatasetRegistered().process_receipt(receipt, DISCARD)
    dataset_id = int(event["args"]["datasetId"])
    store_document(engine, DOCUMENT, dataset_id=dataset_id, version=1)
    return dataset_id, DOCUMENT


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the server runs in a thread
        pass


@pytest.fixture(scope="module")
def console_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    """anvil, the contracts, the settlement world (two datasets of one owner, paid jobs, an
    epoch of ETH entitlements published on chain), and the API with the console on uvicorn."""
    data_dir = tmp_path_factory.mktemp("console") / "data"
    database_url = f"sqlite:///{data_dir / 'ledger.db'}"
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment, contracts = deploy_for_index(w3, data_dir / "deployments")
        world = build_world(w3, deployment, contracts)
        write_vault(data_dir, world)
        indexer, engine = open_index(w3, deployment, database_url)
        catalogued = _register_catalogued(world, engine)
        indexer.run_once()
        settlement = Settlement(
            w3,
            deployment,
            engine,
            vaults=VaultIndex(data_dir),
            out_dir=data_dir / "settlement",
            sender=TxSender(w3, ANVIL_DEV_KEYS[0]),
        )
        (outcome,) = settlement.run(ETH)
        assert outcome.sent, "the epoch must be published for the claim test"
        engine.dispose()
        due, _ = expected_entitlements(world, carol_paid=False)

        settings = load_settings(
            data_dir=data_dir,
            rpc_url=node.url,
            database_url=database_url,
            executor_key="0x" + local_account(w3, RELAYER_SEED).key.hex(),
        )
        with serve(settings) as (url, services):
            yield ConsoleWorld(url, world, due, services, catalogued)


@contextmanager
def serve(settings: Settings) -> Iterator[tuple[str, Services]]:
    """The API with the console on uvicorn (a thread, a free port), following the index; its
    base URL and services, stopped afterwards."""
    app = create_app(settings, ApiOptions(follow_index=True, index_interval=0.2))
    port = _free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="console-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app.state.services
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        app.state.services.close()


@dataclass(frozen=True)
class Served:
    """Where the console is served and the chain its wallets sign for."""

    url: str
    w3: Web3


@pytest.fixture(scope="module")
def served(console_world: ConsoleWorld) -> Served:
    """The service pages open; a test module may override it with a world of its own."""
    return Served(console_world.url, console_world.w3)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser).

    Per module, not per session: Playwright's sync API keeps an asyncio loop running in the main
    thread while it is open, and tests of other packages that call ``asyncio.run`` (MPC) fail."""
    assert CHROMIUM.exists(), "Debian's chromium is required (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session", autouse=True)
def _artifacts_dir() -> Path:
    """Fresh screenshots for this run (the .gitignore stays)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@dataclass
class Console:
    """A page of the console with a wallet, and what the browser complained about."""

    page: Page
    wallet: TestWallet
    name: str
    origin: str
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    shots: int = 0

    def shot(self, step: str) -> Path:
        """Save a full-page screenshot as an artifact of this test."""
        self.shots += 1
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
        return path

    def assert_clean(self) -> None:
        """No script error and no Content-Security-Policy violation happened on the page, and
        every request went to the service itself (no CDN, nothing external)."""
        assert self.problems == [], self.problems
        assert self.requests, "the page made no request"
        outside = [url for url in self.requests if not url.startswith(self.origin + "/")]
        assert outside == [], outside


#: Opens the console in a fresh browser context with the wallet of a private key.
OpenConsole = Callable[[str | bytes], Console]


@pytest.fixture()
def open_console(
    browser: Browser, served: Served, request: pytest.FixtureRequest
) -> Iterator[OpenConsole]:
    """Open the console in a fresh browser context (own cookies) with a wallet of `key`; the
    service must send the console under the strict `CSP`."""
    contexts: list[BrowserContext] = []
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")

    def opening(key: str | bytes) -> Console:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        wallet = TestWallet.of(served.w3, key)
        wallet.install(context)
        page = context.new_page()
        console = Console(page, wallet, f"{name}-{len(contexts)}", served.url)
        page.on("pageerror", lambda error: console.problems.append(f"page error: {error}"))
        page.on("request", lambda request: console.requests.append(request.url))

        def on_console(message: Any) -> None:
            text = message.text
            if "Content Security Policy" in text or "Refused to" in text:
                console.problems.append(f"CSP: {text}")
            if text.startswith("console bug:"):
                console.problems.append(text)

        page.on("console", on_console)
        response = page.goto(served.url + "/")
        assert response is not None and response.headers["content-security-policy"] == CSP
        page.wait_for_selector("body[data-ready='true']")
        return console

    yield opening
    for context in contexts:
        context.close()


def key_of(seed: str) -> bytes:
    """The private key of `tests.integration.chain.local_account(w3, seed)`."""
    return keccak(text=seed)

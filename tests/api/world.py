"""A running API over a jobs world (tests/integration/jobs_world.py): contracts deployed, an
owner with datasets registered (one with a catalog metadata document), grants, the index, and
a `TestClient` on `create_app`; plus helpers to sign in with anvil keys and send wallet txs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak
from fastapi.testclient import TestClient
from web3 import Web3
from web3.logs import DISCARD

from api.app import create_app
from api.auth import SiweMessage, build_message, iso
from api.deps import ApiOptions
from ledger.indexer.service import Indexer
from ledger.registry.documents import store_document
from ledger.registry.metadata import MetadataDocument, PublicColumn, TemporalCoverage
from ledger.settings import load_settings
from tests.integration.jobs_world import (
    CONSUMER_KEY,
    EXECUTOR_KEY,
    OTHER_KEY,
    OWNER_KEY,
    World,
    make_world,
)

__all__ = ["ApiWorld", "CONSUMER_KEY", "EXECUTOR_KEY", "OTHER_KEY", "OWNER_KEY", "make_api_world"]

HOST = "127.0.0.1:8000"


@dataclass
class ApiWorld:
    """The world, its app's client and the catalog dataset's id."""

    world: World
    client: TestClient
    catalog_id: int

    def index(self) -> None:
        """Bring the index up to the chain head."""
        deployment = self.world.chain.deployment
        Indexer(self.world.w3, deployment, self.world.engine).run_once()

    def login(self, key: str) -> dict[str, str]:
        """Sign in as the account of `key`; the bearer header of its session."""
        token = sign_in(self.client, key)["token"]
        self.client.cookies.clear()  # the bearer header alone identifies the caller
        return {"Authorization": f"Bearer {token}"}

    def send(self, key: str, tx: dict[str, Any]) -> str:
        """Sign and send a wallet transaction as the API returned it; its hash (must succeed)."""
        w3 = self.world.w3
        account = Account.from_key(key)
        assert tx["from"] == account.address
        fields = {
            "chainId": tx["chainId"],
            "to": tx["to"],
            "data": tx["data"],
            "value": int(tx["value"]),
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "gas": 1_000_000,
            "gasPrice": w3.eth.gas_price * 2,
        }
        signed = account.sign_transaction(fields)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return tx_hash.to_0x_hex()


def siwe_text(client: TestClient, address: str, **changes: Any) -> str:
    """A fresh EIP-4361 message for this test server, with `changes` to its fields."""
    nonce = client.get("/v1/auth/nonce").json()
    fields: dict[str, Any] = {
        "domain": nonce["domain"],
        "address": address,
        "statement": "Sign in to the data rights ledger.",
        "uri": nonce["uri"],
        "chain_id": nonce["chain_id"],
        "nonce": nonce["nonce"],
        "issued_at": iso(datetime.now(UTC)),
    }
    fields.update(changes)
    return build_message(SiweMessage(**fields))


def sign_text(key: str, text: str) -> str:
    """personal_sign of `text` by `key`."""
    signed = Account.sign_message(encode_defunct(text=text), private_key=key)
    return "0x" + bytes(signed.signature).hex()


def sign_in(client: TestClient, key: str) -> dict[str, Any]:
    """Sign in with `key` through the nonce route's ready-made message; the login body."""
    address = Account.from_key(key).address
    text = client.get("/v1/auth/nonce", params={"address": address}).json()["message"]
    response = client.post(
        "/v1/auth/login", json={"message": text, "signature": sign_text(key, text)}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _catalog_dataset(world: World) -> int:
    """A dataset registered with a real metadata document (stored as registration does)."""
    document = MetadataDocument(
        name="oncology-a",
        version=1,
        title="Breast cancer cohort, hospital A",
        description="De-identified tumour measurements for oncology research.",
        keywords=["oncology", "breast cancer"],
        license="CC-BY-4.0",
        publisher="Hospital A",
        temporal_coverage=TemporalCoverage(start=date(2020, 1, 1), end=date(2023, 12, 31)),
        record_count=200,
        contributor_count=10,
        columns=[PublicColumn(name="age", type="integer", unit="years")],
        schema_hash="0x" + keccak(text="schema").hex(),
        commitment="0x" + keccak(text="rows").hex(),
        previous_commitment=None,
    )
    version = (
        keccak(text="rows"),
        keccak(text="contributors"),
        keccak(text="schema"),
        bytes.fromhex(document.hash[2:]),
    )
    registry = world.chain.registry
    receipt = world.owner.send(registry.functions.register(version, 7000, document.uri))
    (event,) = registry.events.DatasetRegistered().process_receipt(receipt, DISCARD)
    dataset_id = int(event["args"]["datasetId"])
    store_document(world.engine, document, dataset_id=dataset_id, version=1)
    return dataset_id


def make_api_world(w3: Web3, url: str, data_dir: Path, database_url: str) -> ApiWorld:
    """Deploy, register datasets, index, and start the app (domain = the test client's)."""
    world = make_world(w3, url, data_dir, database_url)
    catalog_id = _catalog_dataset(world)
    settings = load_settings(
        data_dir=data_dir,
        rpc_url=url,
        database_url=database_url,
        executor_key=EXECUTOR_KEY,
    )
    app = create_app(settings, ApiOptions(max_body=64 * 1024))
    client = TestClient(app, base_url=f"http://{HOST}")
    api = ApiWorld(world, client, catalog_id)
    return api

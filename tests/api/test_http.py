"""HTTP behaviour of the API: JSON errors (422, 404, 405, 413), health, metrics by route
template, OpenAPI completeness; and a subset of the routes on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from ledger.chain.anvil import Anvil
from tests.api.test_flow import sign_typed
from tests.api.world import CONSUMER_KEY, OWNER_KEY, ApiWorld, make_api_world

OWNER = Account.from_key(OWNER_KEY).address
CONSUMER = Account.from_key(CONSUMER_KEY).address


@pytest.fixture(scope="module")
def api(anvil: Anvil, w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    data_dir: Path = tmp_path_factory.mktemp("http")
    world = make_api_world(w3, anvil.url, data_dir, f"sqlite:///{data_dir / 'ledger.db'}")
    world.index()
    yield world
    world.client.close()


def _error(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert "Traceback" not in body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


def test_validation_errors_are_json_and_name_the_field(api: ApiWorld) -> None:
    response = api.client.get("/v1/datasets", params={"limit": 0})
    assert response.status_code == 422
    error = _error(response)
    assert (error["code"], error["field"]) == ("invalid_request", "limit")
    assert "greater than or equal to 1" in str(error["message"])
    response = api.client.post("/v1/auth/login", json={"message": "x"})
    error = _error(response)
    assert (response.status_code, error["field"]) == (422, "signature")
    response = api.client.post(
        "/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and _error(response)["code"] == "invalid_request"
    response = api.client.get("/v1/provenance/0x12/lineage")
    assert response.status_code == 422 and _error(response)["field"] == "key"


def test_algorithm_catalog(api: ApiWorld) -> None:
    items = api.client.get("/v1/algorithms").json()["items"]
    names = {item["name"]: item for item in items}
    assert "dp_mean" in names and names["dp_mean"]["hash"].startswith("0x")
    one = api.client.get(f"/v1/algorithms/{names['dp_mean']['hash']}").json()
    assert one["name"] == "dp_mean" and "properties" in one["parameters"]
    missing = api.client.get("/v1/algorithms/nope")
    assert missing.status_code == 404 and _error(missing)["code"] == "unknown_algorithm"


def test_unknown_route_and_method_are_json(api: ApiWorld) -> None:
    response = api.client.get("/v1/nothing")
    assert response.status_code == 404 and _error(response)["code"] == "not_found"
    response = api.client.delete("/v1/datasets")
    assert response.status_code == 405 and _error(response)["code"] == "method_not_allowed"


def test_body_over_the_limit_is_413(api: ApiWorld) -> None:
    big = {"message": "x" * 70_000, "signature": "0x00"}
    response = api.client.post("/v1/auth/login", json=big)
    assert response.status_code == 413
    assert _error(response) == {
        "code": "body_too_large",
        "message": "request body must be at most 65536 bytes",
        "field": "body",
    }

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 5_000

    streamed = api.client.post(
        "/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413 and _error(streamed)["code"] == "body_too_large"


def test_healthz_reports_chain_database_and_lag(api: ApiWorld) -> None:
    body = api.client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["chain"]["ok"] is True and body["chain"]["chain_id"] == 31337
    assert body["database"]["ok"] is True
    assert body["index"]["lag"] == 0
    api.world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert api.client.get("/healthz").json()["index"]["lag"] == 1


def test_metrics_use_route_templates(api: ApiWorld) -> None:
    for dataset_id in (api.catalog_id, 424242):
        api.client.get(f"/v1/datasets/{dataset_id}")
    text = api.client.get("/metrics").text
    assert 'route="/v1/datasets/{dataset_id}"' in text
    assert 'status="404"' in text and 'status="200"' in text
    assert "424242" not in text
    assert "ledger_api_request_seconds_bucket" in text


def test_openapi_documents_errors_and_examples(api: ApiWorld) -> None:
    spec = api.client.get("/openapi.json").json()
    assert "ErrorResponse" in spec["components"]["schemas"]
    paths = spec["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path in ("/metrics",):
                continue
            assert operation.get("description") or operation.get("summary"), (method, path)
            codes = set(operation["responses"])
            assert codes - {"200", "201", "204"}, (method, path)
    assert "examples" in str(spec["components"]["schemas"]["GrantTermsIn"])
    assert paths["/v1/auth/login"]["post"]["responses"]["401"]["content"]["application/json"][
        "schema"
    ]["$ref"].endswith("/ErrorResponse")


def test_catalog_grants_and_auth_on_both_databases(
    anvil: Anvil, w3: Web3, database_url: str, tmp_path: Path
) -> None:
    world = make_api_world(w3, anvil.url, tmp_path, database_url)
    try:
        dataset_id = world.world.add_dataset("beta", 30)
        world.index()
        owner = world.login(OWNER_KEY)
        client = world.client
        terms = {
            "datasetId": dataset_id,
            "grantee": CONSUMER,
            "algorithm": "any",
            "purpose": "research.cardiology",
        }
        typed = client.post("/v1/grants/typed-data", json=terms, headers=owner).json()
        sent = client.post(
            "/v1/grants",
            json={
                "typed_data": typed["typed_data"],
                "signature": sign_typed(OWNER_KEY, typed["typed_data"]),
            },
            headers=owner,
        )
        assert sent.status_code == 201, sent.text
        world.index()
        listed = client.get("/v1/grants", headers=owner).json()
        assert [g["grant_id"] for g in listed["items"]] == [typed["grant_id"]]
        hits = client.get("/v1/datasets", params={"q": "breast", "limit": 5}).json()
        assert [d["dataset_id"] for d in hits["items"]] == [world.catalog_id]
        assert client.get("/healthz").json()["database"]["ok"] is True
    finally:
        world.client.close()
        world.client.app.state.services.close()  # type: ignore[attr-defined]
        world.world.engine.dispose()

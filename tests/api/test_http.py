"""HTTP behaviour of the API: JSON errors (422, 404, 405, 413), health, metrics by route
template, OpenAPI completeness; and a subset of the routes on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import inspect
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from web3 import Web3

from api.deps import SESSION_COOKIE
from api.security import with_security_headers
from ledger.chain.anvil import Anvil
from ledger.jobs.store import JobStore
from ledger.store.models.jobs import JobStatus, PipelineJob
from tests.api.test_flow import sign_typed
from tests.api.world import CONSUMER_KEY, OWNER_KEY, ApiWorld, make_api_world, sign_in

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
        # The jobs list: the caller's own, newest first, on both databases.
        store = JobStore(world.world.engine)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for i, consumer in enumerate((CONSUMER, OWNER, CONSUMER)):
            store.create(
                PipelineJob(
                    job_id=f"0x{i + 1:064x}",
                    consumer=consumer,
                    status=JobStatus.AWAITING_PAYMENT,
                    request_json="{}",
                    created_at=start + timedelta(minutes=i),
                    updated_at=start,
                )
            )
        jobs = client.get("/v1/jobs", headers=world.login(CONSUMER_KEY)).json()
        assert [j["job_id"] for j in jobs["items"]] == [f"0x{3:064x}", f"0x{1:064x}"]
        assert jobs["total"] == 2 and jobs["items"][0]["created_at"].startswith("2026-01-01")
    finally:
        world.client.close()
        world.client.app.state.services.close()  # type: ignore[attr-defined]
        world.world.engine.dispose()


#: The console's policy, written out (not imported) so that a weakened policy fails here.
CONSOLE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _policy(response: Any) -> dict[str, str]:
    text = response.headers["content-security-policy"]
    return dict((d.strip().split(" ", 1) + [""])[:2] for d in text.split(";") if d.strip())


def _common_headers(response: Any) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    policy = _policy(response)
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'"


def test_console_files_carry_the_strict_policy(api: ApiWorld) -> None:
    for path in ("/", "/index.html", "/app.js", "/styles.css", "/favicon.svg"):
        response = api.client.get(path)
        assert response.status_code == 200, path
        _common_headers(response)
        assert response.headers["content-security-policy"] == CONSOLE_POLICY, path
        assert "cache-control" not in response.headers, path


def test_api_responses_carry_security_headers_and_no_store_when_signed_in(
    api: ApiWorld,
) -> None:
    client = api.client
    public = [
        client.get("/v1/datasets"),
        client.get("/v1/nothing"),  # 404
        client.delete("/v1/datasets"),  # 405
        client.get("/v1/datasets", params={"limit": 0}),  # 422
        client.post("/v1/auth/login", json={"message": "x" * 70_000}),  # 413
        client.get("/healthz"),
        client.get("/metrics"),
        client.get("/openapi.json"),
    ]
    assert [r.status_code for r in public] == [200, 404, 405, 422, 413, 200, 200, 200]
    for response in public:
        _common_headers(response)
        policy = _policy(response)
        assert "script-src" not in policy and "connect-src" not in policy, response.url
    for response in public[:4]:
        # Anonymous /v1 reads may be cached, but never served to a signed-in caller.
        assert "cache-control" not in response.headers, response.url
        assert response.headers["vary"] == "Authorization, Cookie"
    # Sign-in material (nonces, the session token) is never stored.
    nonce = client.get("/v1/auth/nonce")
    assert nonce.headers["cache-control"] == "no-store"
    login = sign_in(client, CONSUMER_KEY)
    assert login["token"]
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {login['token']}"}
    signed_in = [
        client.get("/v1/auth/me", headers=headers),
        client.get("/v1/jobs", headers=headers),
        client.get("/v1/datasets", headers=headers),
        client.get("/v1/jobs/" + "0x" + "ab" * 32, headers=headers),  # 404
        client.get("/v1/jobs", params={"limit": 0}, headers=headers),  # 422
    ]
    assert [r.status_code for r in signed_in] == [200, 200, 200, 404, 422]
    for response in signed_in:
        _common_headers(response)
        assert response.headers["cache-control"] == "no-store", response.url
    # The session cookie counts as much as the bearer header.
    client.cookies.set(SESSION_COOKIE, login["token"])
    try:
        cookie = client.get("/v1/datasets")
    finally:
        client.cookies.clear()
    assert cookie.status_code == 200 and cookie.headers["cache-control"] == "no-store"


def test_unexpected_errors_carry_security_headers(api: ApiWorld) -> None:
    app = api.client.app
    assert isinstance(app, FastAPI)

    def boom() -> None:
        raise RuntimeError("a bug")

    # Ahead of the console's mount at "/", which matches every path.
    app.router.routes.insert(0, APIRoute("/v1/boom", boom, methods=["GET"]))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/v1/boom", headers={"Authorization": "Bearer nothing"})
    finally:
        del app.router.routes[0]
    assert response.status_code == 500 and _error(response)["code"] == "internal_error"
    _common_headers(response)
    assert response.headers["cache-control"] == "no-store"


def test_docs_pages_run_only_their_own_inline_script_and_the_cdn(api: ApiWorld) -> None:
    for path, library in (("/docs", "swagger_js_url"), ("/redoc", "redoc_js_url")):
        response = api.client.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/html"
        )
        _common_headers(response)
        policy = _policy(response)
        scripts = policy["script-src"].split()
        assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts
        page = response.text
        assert "fonts.googleapis" not in page
        source = re.search(r'<script src="([^"]+)"', page)
        assert source is not None
        parts = urlsplit(source.group(1))
        assert f"{parts.scheme}://{parts.netloc}" in scripts
        function = get_swagger_ui_html if library == "swagger_js_url" else get_redoc_html
        assert source.group(1) == inspect.signature(function).parameters[library].default
        for body in re.findall(r"<script>(.*?)</script>", page, re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in scripts
        assert policy["connect-src"] == "'self'"
    assert "/docs" not in api.client.get("/openapi.json").json()["paths"]


def test_security_headers_replace_the_apps_and_keep_its_vary() -> None:
    raw = [
        (b"content-type", b"application/json"),
        (b"vary", b"Accept-Encoding"),
        (b"x-frame-options", b"SAMEORIGIN"),
        (b"cache-control", b"max-age=600"),
    ]
    headers = with_security_headers(raw, "/v1/grants", authenticated=True)
    names = [k for k, _ in headers]
    assert len(names) == len(set(names)), names
    got = dict(headers)
    assert got[b"vary"] == b"Accept-Encoding, Authorization, Cookie"
    assert got[b"x-frame-options"] == b"DENY" and got[b"cache-control"] == b"no-store"
    anonymous = dict(with_security_headers(raw[:1], "/v1/datasets", authenticated=False))
    assert b"cache-control" not in anonymous
    page = dict(with_security_headers([(b"content-type", b"text/html")], "/", authenticated=True))
    assert page[b"content-security-policy"].decode() == CONSOLE_POLICY
    assert b"cache-control" not in page and b"vary" not in page

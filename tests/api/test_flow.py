"""The API end to end on a real anvil and SQLite: an owner signs a grant in a "wallet" (eth_account
keys of anvil), the service relays it; the consumer creates a job and pays its escrow from its
wallet; the worker (a real process) runs it; the grantee reads the result; anyone reads and
verifies provenance; the owner revokes. And every cross-account attempt is refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eth_account import Account
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.sender import TxSender
from ledger.settlement.service import ETH, Settlement
from ledger.settlement.vaults import VaultIndex
from ledger.store.models.jobs import JobStatus, PipelineJob
from tests.api.world import (
    CONSUMER_KEY,
    EXECUTOR_KEY,
    OTHER_KEY,
    OWNER_KEY,
    ApiWorld,
    make_api_world,
)
from tests.integration.jobs_world import PRICE, default_params

OWNER = Account.from_key(OWNER_KEY).address
CONSUMER = Account.from_key(CONSUMER_KEY).address
OTHER = Account.from_key(OTHER_KEY).address


@dataclass
class Flow:
    api: ApiWorld
    owner: dict[str, str]
    consumer: dict[str, str]
    other: dict[str, str]
    dataset_id: int
    grant_id: str
    typed_data: dict[str, Any]
    job_id: str


def sign_typed(key: str, typed_data: dict[str, Any]) -> str:
    signed = Account.sign_typed_data(key, full_message=typed_data)
    return "0x" + bytes(signed.signature).hex()


def _terms(dataset_id: int, **changes: Any) -> dict[str, Any]:
    terms: dict[str, Any] = {
        "datasetId": str(dataset_id),
        "grantee": CONSUMER,
        "algorithm": "dp_mean",
        "purpose": "research.oncology",
        "maxUses": 5,
        "epsilonBudget": "2000000",
        "pricePerUse": str(PRICE),
    }
    terms.update(changes)
    return terms


@pytest.fixture(scope="module")
def flow(anvil: Anvil, w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    data_dir: Path = tmp_path_factory.mktemp("flow")
    api = make_api_world(w3, anvil.url, data_dir, f"sqlite:///{data_dir / 'ledger.db'}")
    dataset_id = api.world.add_dataset("alpha", 60)
    api.index()
    client = api.client
    owner, consumer, other = (api.login(k) for k in (OWNER_KEY, CONSUMER_KEY, OTHER_KEY))
    made = client.post("/v1/grants/typed-data", json=_terms(dataset_id), headers=owner)
    assert made.status_code == 200, made.text
    typed = made.json()["typed_data"]
    sent = client.post(
        "/v1/grants",
        json={"typed_data": typed, "signature": sign_typed(OWNER_KEY, typed)},
        headers=owner,
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["grant_id"] == made.json()["grant_id"]
    api.index()
    job = client.post(
        "/v1/jobs",
        json={
            "grants": [typed["message"]],
            "algorithm": "dp_mean",
            "params": default_params(),
            "datasets": [{"datasetId": dataset_id}],
        },
        headers=consumer,
    )
    assert job.status_code == 201, job.text
    body = job.json()
    (payment,) = body["payments"]
    assert payment["amount"] == str(PRICE)
    unknown = client.post(
        f"/v1/jobs/{body['job_id']}/payments",
        json={"tx_hashes": ["0x" + "42" * 32]},
        headers=consumer,
    )
    error = unknown.json()["error"]
    assert (unknown.status_code, error["code"], error["field"]) == (
        409,
        "payment_not_mined",
        "tx_hashes[0]",
    )
    hashes = [api.send(CONSUMER_KEY, tx) for tx in payment["transactions"]]
    paid = client.post(
        f"/v1/jobs/{body['job_id']}/payments", json={"tx_hashes": hashes}, headers=consumer
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["confirmed"] == [payment["grant_id"]]
    api.world.run_worker()
    api.index()
    yield Flow(
        api, owner, consumer, other, dataset_id, made.json()["grant_id"], typed, body["job_id"]
    )
    api.client.close()


def test_typed_data_is_what_wallets_sign(flow: Flow) -> None:
    typed = flow.typed_data
    assert typed["primaryType"] == "Grant"
    assert typed["domain"]["chainId"] == 31337
    assert typed["domain"]["verifyingContract"] == flow.api.world.chain.grants.address
    message = typed["message"]
    assert message["grantor"] == OWNER and message["grantee"] == CONSUMER
    assert message["pricePerUse"] == str(PRICE) and message["nonce"] == "0"


def test_grant_relayed_listed_and_checked(flow: Flow) -> None:
    client = flow.api.client
    mine = client.get("/v1/grants", params={"role": "grantor"}, headers=flow.owner).json()
    assert [g["grant_id"] for g in mine["items"]] == [flow.grant_id]
    assert mine["items"][0]["relayed"] is True
    received = client.get("/v1/grants", params={"role": "grantee"}, headers=flow.consumer).json()
    assert [g["grant_id"] for g in received["items"]] == [flow.grant_id]
    assert client.get("/v1/grants", headers=flow.other).json()["total"] == 0
    state = client.get(f"/v1/grants/{flow.grant_id}", headers=flow.consumer).json()
    assert state["status"] == "active" and state["uses"] == 1
    check = client.get(f"/v1/grants/{flow.grant_id}/check", headers=flow.consumer).json()
    assert check == {"grant_id": flow.grant_id, "allowed": True, "reason": None, "detail": ""}
    wrong = client.get(
        f"/v1/grants/{flow.grant_id}/check",
        params={"purpose": "marketing"},
        headers=flow.consumer,
    ).json()
    assert (wrong["allowed"], wrong["reason"]) == (False, "wrong_purpose")


def test_job_ran_and_result_goes_to_the_grantee(flow: Flow) -> None:
    client = flow.api.client
    status = client.get(f"/v1/jobs/{flow.job_id}", headers=flow.consumer).json()
    assert status["status"] in ("recorded", "anchored", "done"), status
    assert status["result_available"] is True
    result = client.get(f"/v1/jobs/{flow.job_id}/result", headers=flow.consumer)
    assert result.status_code == 200
    body = result.json()
    assert body["receipt_hash"] == status["receipt_hash"]
    assert isinstance(body["result"], dict)


def test_provenance_lineage_prov_and_verify(flow: Flow) -> None:
    client = flow.api.client
    result = client.get(f"/v1/jobs/{flow.job_id}/result", headers=flow.consumer).json()
    lineage = client.get(f"/v1/provenance/{flow.job_id}/lineage").json()
    assert lineage["job_id"] == flow.job_id
    assert [g["grant_id"] for g in lineage["grants"]] == [flow.grant_id]
    assert lineage["datasets"][0]["dataset_id"] == flow.dataset_id
    by_result = client.get(f"/v1/provenance/{result['result_hash']}/lineage").json()
    assert by_result["job_id"] == flow.job_id
    prov = client.get(f"/v1/provenance/{flow.job_id}/prov")
    assert prov.headers["content-type"].startswith("application/json")
    assert "wasGeneratedBy" in prov.json() and "entity" in prov.json()
    verdict = client.post(
        "/v1/provenance/verify", json={"result": result["result"], "receipt": result["receipt"]}
    ).json()
    assert verdict["verified"] is True, verdict
    tampered = dict(result["result"]) | {"tampered": 1}
    verdict = client.post(
        "/v1/provenance/verify", json={"result": tampered, "receipt": result["receipt"]}
    ).json()
    assert (verdict["verified"], verdict["reason"]) == (False, "tampered_result")
    missing = client.get("/v1/provenance/0x" + "12" * 32 + "/lineage")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "lineage_not_found"


def test_catalog_search_detail_versions_usage(flow: Flow) -> None:
    client = flow.api.client
    page = client.get("/v1/datasets").json()
    assert page["total"] == 2
    hits = client.get("/v1/datasets", params={"q": "oncology cohort"}).json()
    assert [d["dataset_id"] for d in hits["items"]] == [flow.api.catalog_id]
    assert hits["items"][0]["title"] == "Breast cancer cohort, hospital A"
    assert client.get("/v1/datasets", params={"license": "CC-BY-4.0"}).json()["total"] == 1
    assert client.get("/v1/datasets", params={"owner": OTHER}).json()["total"] == 0
    detail = client.get(f"/v1/datasets/{flow.api.catalog_id}").json()
    assert detail["metadata"]["publisher"] == "Hospital A"
    versions = client.get(f"/v1/datasets/{flow.api.catalog_id}/versions").json()
    assert [v["version"] for v in versions["versions"]] == [1]
    usage = client.get(f"/v1/datasets/{flow.dataset_id}/usage").json()
    assert (usage["jobs"], usage["uses"]) == (1, 1)
    assert sum(int(v) for v in usage["revenue"].values()) > 0
    bad = client.get("/v1/datasets", params={"license": "nope"})
    assert bad.status_code == 422
    assert bad.json()["error"] == {
        "code": "catalog_query",
        "message": bad.json()["error"]["message"],
        "field": "license",
    }
    assert client.get("/v1/datasets/999").json()["error"]["code"] == "dataset_not_found"


def test_grant_submission_refusals_send_nothing(flow: Flow) -> None:
    client = flow.api.client
    w3 = flow.api.world.w3
    typed = client.post(
        "/v1/grants/typed-data", json=_terms(flow.dataset_id, maxUses=2), headers=flow.owner
    ).json()["typed_data"]
    block = w3.eth.block_number
    # Another key's signature.
    bad = client.post(
        "/v1/grants",
        json={"typed_data": typed, "signature": sign_typed(OTHER_KEY, typed)},
        headers=flow.owner,
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_signature")
    # A used nonce.
    reused = dict(typed, message=dict(typed["message"], nonce="0"))
    bad = client.post(
        "/v1/grants",
        json={"typed_data": reused, "signature": sign_typed(OWNER_KEY, reused)},
        headers=flow.owner,
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (409, "nonce_used")
    # Another chain's domain.
    foreign = dict(typed, domain=dict(typed["domain"], chainId=1))
    bad = client.post(
        "/v1/grants",
        json={"typed_data": foreign, "signature": sign_typed(OWNER_KEY, foreign)},
        headers=flow.owner,
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "wrong_domain")
    # A malformed term names its field.
    broken = dict(typed, message=dict(typed["message"], maxUses="-1"))
    bad = client.post(
        "/v1/grants", json={"typed_data": broken, "signature": "0x00"}, headers=flow.owner
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "typed_data.message.maxUses"
    assert w3.eth.block_number == block


def test_revoke_returns_the_wallet_transaction(flow: Flow) -> None:
    client = flow.api.client
    terms = _terms(flow.dataset_id, maxUses=1, pricePerUse="0")
    typed = client.post("/v1/grants/typed-data", json=terms, headers=flow.owner).json()
    sent = client.post(
        "/v1/grants",
        json={
            "typed_data": typed["typed_data"],
            "signature": sign_typed(OWNER_KEY, typed["typed_data"]),
        },
        headers=flow.owner,
    )
    assert sent.status_code == 201
    flow.api.index()
    grant_id = typed["grant_id"]
    revoke = client.post(f"/v1/grants/{grant_id}/revoke", headers=flow.owner)
    assert revoke.status_code == 200
    tx = revoke.json()["tx"]
    assert tx["to"] == flow.api.world.chain.grants.address and tx["from"] == OWNER
    flow.api.send(OWNER_KEY, tx)
    flow.api.index()
    state = client.get(f"/v1/grants/{grant_id}", headers=flow.owner).json()
    assert state["status"] == "revoked"
    check = client.get(f"/v1/grants/{grant_id}/check", headers=flow.consumer).json()
    assert (check["allowed"], check["reason"]) == (False, "revoked")
    again = client.post(f"/v1/grants/{grant_id}/revoke", headers=flow.owner)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_revoked")


def _settle(flow: Flow) -> None:
    """Give the compute dataset a contributor table (contributor 1 paid to OTHER), then settle
    ETH revenue as the operator (the executor key holds SETTLER_ROLE after deploy)."""
    world = flow.api.world
    directory = world.data_dir / "vault" / OWNER / "datasets" / "alpha" / "v1"
    contributors = [f"0x{i:064x}" for i in (1, 2, 3)]
    table = pa.table(
        {
            "contributor_id": contributors,
            "kind": ["patient"] * 3,
            "payout": [OTHER, "", ""],
            "rows": [20, 20, 20],
        }
    )
    pq.write_table(table, directory / "contributors.parquet")
    service = Settlement(
        world.w3,
        world.chain.deployment,
        world.engine,
        vaults=VaultIndex(world.data_dir),
        out_dir=world.data_dir / "settlement",
        sender=TxSender(world.w3, EXECUTOR_KEY),
    )
    world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    flow.api.index()
    (outcome,) = service.run(ETH)
    assert outcome.sent


def test_settlement_entitlements_reports_and_charts(flow: Flow) -> None:
    client = flow.api.client
    assert client.get("/v1/settlement/epochs").json()["epochs"] == []
    missing = client.get(f"/v1/settlement/entitlements/{OTHER}", headers=flow.other)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "no_entitlement")
    report = client.get("/v1/settlement/epochs/1/report", headers=flow.other)
    assert (report.status_code, report.json()["error"]["code"]) == (404, "unknown_epoch")
    _settle(flow)
    (epoch,) = client.get("/v1/settlement/epochs").json()["epochs"]
    assert (epoch["epoch"], epoch["status"]) == (1, "published")
    assert "top_accounts" not in epoch
    mine = client.get(f"/v1/settlement/entitlements/{OWNER}", headers=flow.owner).json()
    assert mine["account"] == OWNER and int(mine["cumulative"]) > 0 and mine["proof"]
    theirs = client.get(f"/v1/settlement/entitlements/{OTHER}", headers=flow.other).json()
    assert int(theirs["cumulative"]) > 0 and theirs["claimable"] == theirs["cumulative"]
    # The claim transaction for the contributor's wallet: RevenueVault.claim with the proof.
    vault = flow.api.world.chain.vault
    tx = theirs["tx"]
    assert (tx["chainId"], tx["from"], tx["to"], tx["value"]) == (31337, OTHER, vault.address, "0")
    function, args = vault.decode_function_input(tx["data"])
    assert function.fn_name == "claim"
    assert (args["token"], args["account"]) == (ETH, OTHER)
    assert args["cumulative"] == int(theirs["cumulative"])
    assert ["0x" + bytes(p).hex() for p in args["proof"]] == theirs["proof"]
    w3 = flow.api.world.w3
    before = w3.eth.get_balance(OTHER)
    claimed = w3.eth.get_transaction_receipt(flow.api.send(OTHER_KEY, tx))  # type: ignore[arg-type]
    fee = claimed["gasUsed"] * claimed["effectiveGasPrice"]
    assert w3.eth.get_balance(OTHER) - before + fee == int(theirs["cumulative"])
    after = client.get(f"/v1/settlement/entitlements/{OTHER}", headers=flow.other).json()
    assert (after["claimed"], after["claimable"]) == (theirs["cumulative"], "0")
    assert after["tx"]["data"] == tx["data"]  # the same claim; the vault would refuse it now
    none = client.get(f"/v1/settlement/entitlements/{CONSUMER}", headers=flow.consumer)
    assert none.json()["error"]["code"] == "no_entitlement"
    seen = client.get("/v1/settlement/epochs/1/report", headers=flow.other).json()
    assert [a["account"] for a in seen["top_accounts"]] == [OTHER]
    assert seen["top_contributors"] == []
    operator = flow.api.login(EXECUTOR_KEY)
    full = client.get("/v1/settlement/epochs/1/report", headers=operator).json()
    assert {a["account"] for a in full["top_accounts"]} == {OWNER, OTHER}
    chart = client.get("/v1/settlement/epochs/1/chart.png", headers=operator)
    assert chart.status_code == 200 and chart.content.startswith(b"\x89PNG")


def _job_body(flow: Flow) -> dict[str, Any]:
    return {
        "grants": [flow.typed_data["message"]],
        "algorithm": "dp_mean",
        "params": default_params(),
        "datasets": [{"datasetId": flow.dataset_id}],
    }


def test_jobs_list_only_the_callers_own_newest_first(flow: Flow) -> None:
    client = flow.api.client
    created = []
    for _ in range(2):  # two more jobs of the consumer, left awaiting payment
        made = client.post("/v1/jobs", json=_job_body(flow), headers=flow.consumer)
        assert made.status_code == 201, made.text
        created.append(made.json()["job_id"])
    # A job of another consumer, stored as the pipeline stores it.
    now = datetime.now(UTC)
    foreign = "0x" + "5a" * 32
    flow.api.world.store.create(
        PipelineJob(
            job_id=foreign,
            consumer=OTHER,
            status=JobStatus.AWAITING_PAYMENT,
            request_json="{}",
            created_at=now,
            updated_at=now,
        )
    )
    mine = client.get("/v1/jobs", headers=flow.consumer).json()
    assert (mine["total"], mine["limit"], mine["offset"]) == (3, 20, 0)
    ids = [j["job_id"] for j in mine["items"]]
    assert ids == [*reversed(created), flow.job_id]
    assert foreign not in ids and {j["consumer"] for j in mine["items"]} == {CONSUMER}
    created_at = [j["created_at"] for j in mine["items"]]
    assert created_at == sorted(created_at, reverse=True)
    # Each item is the job's status, as its own route says.
    for item in mine["items"]:
        assert item == client.get(f"/v1/jobs/{item['job_id']}", headers=flow.consumer).json()
    first = client.get("/v1/jobs", params={"limit": 2}, headers=flow.consumer).json()
    rest = client.get("/v1/jobs", params={"limit": 2, "offset": 2}, headers=flow.consumer).json()
    assert [j["job_id"] for j in first["items"] + rest["items"]] == ids
    assert (first["total"], rest["total"]) == (3, 3)
    waiting = client.get(
        "/v1/jobs", params={"status": "awaiting_payment"}, headers=flow.consumer
    ).json()
    assert [j["job_id"] for j in waiting["items"]] == list(reversed(created))
    # Everyone else sees only their own.
    theirs = client.get("/v1/jobs", headers=flow.other).json()
    assert theirs["total"] == 1 and [j["job_id"] for j in theirs["items"]] == [foreign]
    assert client.get("/v1/jobs", headers=flow.owner).json() == {
        "total": 0,
        "limit": 20,
        "offset": 0,
        "items": [],
    }
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "finished"}, "status"),
    ):
        bad = client.get("/v1/jobs", params=params, headers=flow.consumer)
        assert bad.status_code == 422, params
        assert field in bad.json()["error"]["message"], bad.json()


CROSS_ACCOUNT = [
    # (who, method, path template, json body, expected code)
    ("other", "POST", "/v1/grants/typed-data", "terms", "not_dataset_owner"),
    ("other", "POST", "/v1/grants", "signed", "not_grantor"),
    ("consumer", "POST", "/v1/grants", "signed", "not_grantor"),
    ("other", "GET", "/v1/grants/{grant}", None, "not_grant_party"),
    ("other", "GET", "/v1/grants/{grant}/check", None, "not_grant_party"),
    ("other", "POST", "/v1/grants/{grant}/revoke", None, "not_grant_party"),
    ("consumer", "POST", "/v1/grants/{grant}/revoke", None, "not_grant_owner"),
    ("other", "GET", "/v1/jobs/{job}", None, "not_job_consumer"),
    ("owner", "GET", "/v1/jobs/{job}/result", None, "not_job_consumer"),
    ("other", "GET", "/v1/jobs/{job}/result", None, "not_job_consumer"),
    ("other", "POST", "/v1/jobs/{job}/payments", "payments", "not_job_consumer"),
    ("other", "POST", "/v1/jobs", "job", "invalid_request"),
    ("other", "GET", "/v1/settlement/entitlements/{consumer}", None, "not_your_entitlement"),
    ("consumer", "GET", "/v1/settlement/entitlements/{owner}", None, "not_your_entitlement"),
    ("other", "GET", "/v1/settlement/epochs/1/chart.png", None, "not_operator"),
]


@pytest.mark.parametrize(("who", "method", "path", "body", "code"), CROSS_ACCOUNT)
def test_cross_account_attempt_is_refused(
    flow: Flow, who: str, method: str, path: str, body: str | None, code: str
) -> None:
    headers = {"owner": flow.owner, "consumer": flow.consumer, "other": flow.other}[who]
    url = path.format(grant=flow.grant_id, job=flow.job_id, consumer=CONSUMER, owner=OWNER)
    payloads: dict[str, Any] = {
        "terms": _terms(flow.dataset_id),
        "signed": {
            "typed_data": flow.typed_data,
            "signature": sign_typed(OWNER_KEY, flow.typed_data),
        },
        "payments": {"tx_hashes": ["0x" + "00" * 32]},
        # A job under the consumer's grant, asked by someone else: the grant's grantee is not
        # the caller, so the request itself is refused before any chain call.
        "job": _job_body(flow),
    }
    response = flow.api.client.request(
        method, url, headers=headers, json=None if body is None else payloads[body]
    )
    expected = 422 if code == "invalid_request" else 403
    assert response.status_code == expected, response.text
    error = response.json()["error"]
    assert error["code"] == (code if code != "invalid_request" else "job_request")
    assert "0x" not in error["message"] or code == "invalid_request"


PROTECTED = [
    ("GET", "/v1/auth/me"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/grants/typed-data"),
    ("POST", "/v1/grants"),
    ("GET", "/v1/grants"),
    ("GET", "/v1/grants/{grant}"),
    ("GET", "/v1/grants/{grant}/check"),
    ("POST", "/v1/grants/{grant}/revoke"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{job}"),
    ("GET", "/v1/jobs/{job}/result"),
    ("POST", "/v1/jobs/{job}/payments"),
    ("GET", "/v1/settlement/entitlements/{owner}"),
    ("GET", "/v1/settlement/epochs/1/report"),
    ("GET", "/v1/settlement/epochs/1/chart.png"),
]


def test_every_protected_route_needs_a_session(flow: Flow) -> None:
    for method, path in PROTECTED:
        url = path.format(grant=flow.grant_id, job=flow.job_id, owner=OWNER)
        response = flow.api.client.request(method, url, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"


def test_job_on_an_unknown_dataset_or_version_is_refused_and_nothing_stored(flow: Flow) -> None:
    client = flow.api.client
    before = client.get("/v1/jobs", headers=flow.consumer).json()["total"]
    grant = flow.typed_data["message"] | {"datasetId": 999}
    body = _job_body(flow) | {"grants": [grant], "datasets": [{"datasetId": 999}]}
    unknown = client.post("/v1/jobs", json=body, headers=flow.consumer)
    error = unknown.json()["error"]
    assert (unknown.status_code, error["code"], error["field"]) == (
        404,
        "job_dataset_not_found",
        "datasets[0].datasetId",
    )
    body = _job_body(flow) | {"datasets": [{"datasetId": flow.dataset_id, "version": 99}]}
    late = client.post("/v1/jobs", json=body, headers=flow.consumer)
    error = late.json()["error"]
    assert (late.status_code, error["field"]) == (422, "datasets[0].version")
    assert "a version from 1 to" in error["message"]
    assert client.get("/v1/jobs", headers=flow.consumer).json()["total"] == before

"""Sign-In with Ethereum against a real anvil: EOAs, an ERC-1271 wallet, and every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from api.auth import SiweMessage, build_message, parse_message
from api.errors import ApiError
from ledger.chain.anvil import Anvil
from tests.api.world import (
    OTHER_KEY,
    OWNER_KEY,
    ApiWorld,
    make_api_world,
    sign_in,
    sign_text,
    siwe_text,
)
from tests.integration.chain import deploy, mock_wallet_artifact

OWNER = Account.from_key(OWNER_KEY).address


@pytest.fixture(scope="module")
def api(anvil: Anvil, w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    data_dir: Path = tmp_path_factory.mktemp("auth")
    world = make_api_world(w3, anvil.url, data_dir, f"sqlite:///{data_dir / 'ledger.db'}")
    yield world
    world.client.close()


def test_message_round_trip_with_every_field() -> None:
    message = SiweMessage(
        domain="example.org:8000",
        address=OWNER,
        statement="Sign in.",
        uri="https://example.org:8000/login",
        chain_id=10,
        nonce="abcdef123456",
        issued_at="2026-11-30T00:00:00Z",
        expiration_time="2026-11-30T01:00:00Z",
        not_before="2026-11-30T00:00:00Z",
        request_id="req-1",
        resources=("https://example.org/a", "ipfs://b"),
        scheme="https",
    )
    text = build_message(message)
    assert text.splitlines()[0] == (
        "https://example.org:8000 wants you to sign in with your Ethereum account:"
    )
    assert parse_message(text) == message
    bare = SiweMessage(
        "example.org", OWNER, "https://example.org", 1, "abcdef123456", "2026-11-30T00:00:00Z"
    )
    assert "\n\n\nURI: " in build_message(bare)
    assert parse_message(build_message(bare)) == bare


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("hello", "domain"),
        (
            f"example.org wants you to sign in with your Ethereum account:\n{OWNER.lower()}\n\n",
            "address",
        ),
        (
            f"example.org wants you to sign in with your Ethereum account:\n{OWNER}\n\n\n"
            "URI: https://example.org\nVersion: 2\nChain ID: 1\nNonce: abcdefgh1\n"
            "Issued At: 2026-11-30T00:00:00Z",
            "version",
        ),
        (
            f"example.org wants you to sign in with your Ethereum account:\n{OWNER}\n\n\n"
            "URI: https://example.org\nVersion: 1\nChain ID: 1\nNonce: short\n"
            "Issued At: 2026-11-30T00:00:00Z",
            "nonce",
        ),
        (
            f"example.org wants you to sign in with your Ethereum account:\n{OWNER}\n\n\n"
            "URI: https://example.org\nVersion: 1\nNonce: abcdefgh1\nChain ID: 1\n"
            "Issued At: 2026-11-30T00:00:00Z",
            "Chain ID",
        ),
        (
            f"example.org wants you to sign in with your Ethereum account:\n{OWNER}\n\n\n"
            "URI: https://example.org\nVersion: 1\nChain ID: 1\nNonce: abcdefgh1\n"
            "Issued At: yesterday",
            "issued_at",
        ),
    ],
)
def test_malformed_messages_name_the_field(text: str, field: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_message(text)
    assert info.value.code == "siwe_invalid"
    assert info.value.field == field


def test_cookie_session_login_me_logout(api: ApiWorld) -> None:
    client = api.client
    assert client.get("/v1/auth/me").json()["error"]["code"] == "unauthenticated"
    body = sign_in(client, OWNER_KEY)
    assert body["address"] == OWNER
    cookie = client.cookies.get("ledger_session")
    assert cookie == body["token"]
    me = client.get("/v1/auth/me")
    assert me.status_code == 200 and me.json()["address"] == OWNER
    assert client.post("/v1/auth/logout").status_code == 204
    client.cookies.clear()
    again = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert again.status_code == 401


def test_cookie_attributes(api: ApiWorld) -> None:
    text = api.client.get("/v1/auth/nonce", params={"address": OWNER}).json()["message"]
    response = api.client.post(
        "/v1/auth/login", json={"message": text, "signature": sign_text(OWNER_KEY, text)}
    )
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/" in header
    api.client.cookies.clear()


def _login(api: ApiWorld, text: str, key: str) -> tuple[int, dict[str, str]]:
    response = api.client.post(
        "/v1/auth/login", json={"message": text, "signature": sign_text(key, text)}
    )
    api.client.cookies.clear()
    return response.status_code, response.json().get("error", {})


def test_nonce_is_single_use(api: ApiWorld) -> None:
    text = siwe_text(api.client, OWNER)
    assert _login(api, text, OWNER_KEY)[0] == 200
    status, error = _login(api, text, OWNER_KEY)
    assert (status, error["code"], error["field"]) == (401, "siwe_nonce", "nonce")


def test_unknown_nonce_refused(api: ApiWorld) -> None:
    text = siwe_text(api.client, OWNER, nonce="abcdef0123456789")
    assert _login(api, text, OWNER_KEY)[1]["code"] == "siwe_nonce"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"domain": "evil.example"}, "siwe_domain"),
        ({"uri": "http://evil.example"}, "siwe_uri"),
        ({"chain_id": 1}, "siwe_chain"),
        ({"expiration_time": "2020-01-01T00:00:00Z"}, "siwe_expired"),
        ({"issued_at": "2020-01-01T00:00:00Z"}, "siwe_expired"),
        ({"not_before": "2999-01-01T00:00:00Z"}, "siwe_not_yet_valid"),
    ],
)
def test_message_for_another_site_chain_or_time_refused(
    api: ApiWorld, changes: dict[str, object], code: str
) -> None:
    text = siwe_text(api.client, OWNER, **changes)
    status, error = _login(api, text, OWNER_KEY)
    assert (status, error["code"]) == (401, code)


def test_a_forged_host_cannot_relay_a_sign_in_for_another_site(api: ApiWorld) -> None:
    """A phishing site asking for a nonce (or logging in) with its own Host header is refused:
    the sign-in domain is never taken from an arbitrary Host."""
    for path, call in (
        (
            "/v1/auth/nonce",
            lambda h: api.client.get("/v1/auth/nonce", params={"address": OWNER}, headers=h),
        ),
        (
            "/v1/auth/login",
            lambda h: api.client.post(
                "/v1/auth/login", json={"message": "x", "signature": "0x00"}, headers=h
            ),
        ),
    ):
        response = call({"host": "evil.example"})
        error = response.json()["error"]
        assert (response.status_code, error["code"], error["field"]) == (
            400,
            "host_not_allowed",
            "host",
        ), path
    # The service's own loopback names still work.
    ok = api.client.get(
        "/v1/auth/nonce", params={"address": OWNER}, headers={"host": "localhost:8000"}
    )
    assert ok.status_code == 200 and ok.json()["domain"] == "localhost:8000"


def test_signature_of_another_key_refused_and_nonce_spent(api: ApiWorld) -> None:
    text = siwe_text(api.client, OWNER)
    status, error = _login(api, text, OTHER_KEY)
    assert (status, error["code"], error["field"]) == (401, "siwe_signature", "signature")
    # The nonce was spent by the failed attempt.
    assert _login(api, text, OWNER_KEY)[1]["code"] == "siwe_nonce"


def test_high_s_signature_refused(api: ApiWorld) -> None:
    text = siwe_text(api.client, OWNER)
    signature = bytes.fromhex(sign_text(OWNER_KEY, text)[2:])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(signature[32:64], "big")
    flipped = signature[:32] + (n - s).to_bytes(32, "big") + bytes([signature[64] ^ 1])
    response = api.client.post(
        "/v1/auth/login", json={"message": text, "signature": "0x" + flipped.hex()}
    )
    assert response.json()["error"]["code"] == "siwe_signature"


def test_contract_wallet_signs_in_with_erc1271(api: ApiWorld, w3: Web3) -> None:
    abi, bytecode = mock_wallet_artifact()
    wallet = deploy(w3, abi, bytecode, OWNER, sender=w3.eth.accounts[0])
    text = siwe_text(api.client, wallet.address)
    # The wallet vouches for its signer's signature over the EIP-191 hash...
    status, _ = _login(api, text, OWNER_KEY)
    assert status == 200
    # ...and not for another key's.
    status, error = _login(api, siwe_text(api.client, wallet.address), OTHER_KEY)
    assert (status, error["code"]) == (401, "siwe_signature")


def test_bad_bearer_header_and_unknown_token(api: ApiWorld) -> None:
    response = api.client.get("/v1/auth/me", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    response = api.client.get("/v1/auth/me", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_nonce_expiry(api: ApiWorld) -> None:
    store = api.client.app.state.services.auth  # type: ignore[attr-defined]
    nonce, expires = store.new_nonce()
    assert expires > datetime.now(UTC) + timedelta(seconds=store.nonce_ttl - 5)
    store._nonces[nonce] = 0.0  # expired long ago
    assert store.use_nonce(nonce) is False

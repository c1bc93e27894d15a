"""The checks `verify_result` makes before asking the chain: they reject without any RPC call
(the node here does not exist), and a receipt that passes them needs the node for a verdict."""

from __future__ import annotations

import json
import socket

import pytest
from web3 import Web3

from ledger.errors import RpcUnavailableError
from ledger.provenance.canonical import result_hash
from ledger.provenance.receipt import Receipt, sign_receipt
from ledger.provenance.verify import Rejection, verify_result
from ledger.settings import ANVIL_DEV_KEYS
from tests.unit.provenance.test_receipt import fields

RESULT = {"mean": 1.25, "n": 400}


@pytest.fixture()
def dead_node() -> Web3:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 2}))


def signed_text() -> str:
    receipt = Receipt.of(**fields(result_hash=result_hash(RESULT)))
    return sign_receipt(receipt, ANVIL_DEV_KEYS[0]).to_json()


def test_offline_rejections_need_no_node(dead_node: Web3) -> None:
    text = signed_text()
    good = json.dumps(RESULT).encode()
    data = json.loads(text)
    data["receipt"]["chain_id"] = 1
    cases = [
        (good, "{}", Rejection.MALFORMED_RECEIPT),
        (good, json.dumps(data), Rejection.TAMPERED_RECEIPT),
        (
            good,
            json.dumps(json.loads(text) | {"signature": "0x" + "11" * 65}),
            Rejection.BAD_SIGNATURE,
        ),
        (b'{"mean": 1.25, "n": 401}', text, Rejection.TAMPERED_RESULT),
    ]
    for result, receipt, reason in cases:
        verdict = verify_result(result, receipt, dead_node)
        assert (verdict.verified, verdict.reason) == (False, reason), verdict.message
        assert verdict.to_json()["reason"] == reason.value


def test_no_verdict_without_the_node(dead_node: Web3) -> None:
    with pytest.raises(RpcUnavailableError, match="--rpc"):
        verify_result(json.dumps(RESULT).encode(), signed_text(), dead_node)

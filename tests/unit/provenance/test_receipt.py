"""Receipts: canonical bytes and hash, the rules of every field, EIP-191 signatures checked
against an independent recovery, signed receipt files, batch inclusion proofs."""

from __future__ import annotations

import json
import pickle
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_keys import keys
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import StandardMerkleTree
from ledger.provenance.canonical import canonical_json
from ledger.provenance.errors import (
    ReceiptChainConflictError,
    ReceiptConflictError,
    ReceiptInvalidError,
    ReceiptNotFoundError,
)
from ledger.provenance.receipt import (
    BatchInclusion,
    Receipt,
    SignedReceipt,
    job_tuple,
    recover_signer,
    sign_receipt,
    utc_seconds,
)
from ledger.settings import ANVIL_DEV_KEYS

KEY = ANVIL_DEV_KEYS[0]
EXECUTOR = Account.from_key(KEY).address
T0 = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def h(tag: str) -> str:
    return "0x" + keccak(text=tag).hex()


def entry(dataset_id: int, **changes: Any) -> dict[str, Any]:
    base = {
        "dataset_id": dataset_id,
        "version": 2,
        "commitment": h(f"commitment{dataset_id}"),
        "grant_id": h(f"grant{dataset_id}"),
        "uses": 1,
        "epsilon_spent": 250_000,
        "previous_receipt": None,
    }
    return base | changes


def fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "job_id": h("job"),
        "chain_id": 31337,
        "contracts": {
            "registry": "0x" + "11" * 20,
            "grants": "0x" + "22" * 20,
            "usage_ledger": "0x" + "33" * 20,
            "vault": "0x" + "44" * 20,
        },
        "consumer": "0x" + "55" * 20,
        "purpose": h("purpose"),
        "executor": EXECUTOR,
        "algorithm_hash": h("algorithm"),
        "runtime_hash": h("runtime"),
        "parameters_hash": h("parameters"),
        "result_hash": h("result"),
        "suppression_k": 10,
        "requested_at": T0,
        "completed_at": T0 + timedelta(seconds=2),
        "datasets": [entry(3, previous_receipt=h("prev3")), entry(1)],
    }
    return base | changes


def test_canonical_bytes_and_hash() -> None:
    receipt = Receipt.of(**fields())
    data = receipt.canonical_bytes()
    assert data == canonical_json(json.loads(data))
    assert b" " not in data and data.startswith(b'{"algorithm_hash":')
    assert receipt.hash() == "0x" + keccak(data).hex()
    value = json.loads(data)
    assert value["format"] == "ledger.provenance.receipt/1"
    assert value["requested_at"] == "2026-11-30T01:02:03Z"
    assert [d["dataset_id"] for d in value["datasets"]] == [1, 3]  # ascending dataset id
    assert value["contracts"]["registry"] == "0x" + "11" * 20
    assert Receipt.from_json_value(value) == receipt


@settings(max_examples=30, deadline=None)
@given(st.permutations([1, 2, 5, 9]))
def test_dataset_order_does_not_change_the_hash(order: list[int]) -> None:
    ordered = Receipt.of(**fields(datasets=[entry(i) for i in (1, 2, 5, 9)]))
    shuffled = Receipt.of(**fields(datasets=[entry(i) for i in order]))
    assert shuffled.hash() == ordered.hash()


@pytest.mark.parametrize(
    "change",
    [
        {"job_id": h("other")},
        {"chain_id": 1},
        {"result_hash": h("other")},
        {"runtime_hash": h("other")},
        {"suppression_k": 11},
        {"completed_at": T0 + timedelta(seconds=3)},
        {"datasets": [entry(3, previous_receipt=h("prev3")), entry(1, epsilon_spent=1)]},
        {"datasets": [entry(3), entry(1)]},
    ],
)
def test_every_field_is_bound_by_the_hash(change: dict[str, Any]) -> None:
    assert Receipt.of(**fields(**change)).hash() != Receipt.of(**fields()).hash()


def test_hex_and_addresses_are_normalized() -> None:
    upper = Receipt.of(
        **fields(job_id=h("job").upper().replace("0X", "0x"), consumer="0x" + "ab" * 20)
    )
    as_bytes = Receipt.of(**fields(job_id=keccak(text="job"), consumer="0x" + "AB" * 20))
    assert upper.job_id == h("job") and upper == as_bytes
    assert upper.consumer == to_checksum_address("0x" + "ab" * 20) != "0x" + "ab" * 20


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"job_id": "0x12"}, "job_id", "64 hex digits"),
        ({"purpose": 7}, "purpose", ""),
        ({"chain_id": 2**53}, "chain_id", "less than or equal"),
        ({"chain_id": 0}, "chain_id", "greater than or equal to 1"),
        ({"chain_id": True}, "chain_id", "integer"),
        ({"consumer": "alice"}, "consumer", "20-byte"),
        ({"suppression_k": -1}, "suppression_k", "greater than or equal to 0"),
        ({"requested_at": datetime(2026, 1, 1)}, "requested_at", "time zone"),
        ({"requested_at": T0.replace(microsecond=5)}, "requested_at", "whole seconds"),
        ({"completed_at": T0 - timedelta(seconds=1)}, "receipt", "before requested_at"),
        ({"datasets": []}, "datasets", "at least 1"),
        ({"datasets": [entry(1), entry(1, grant_id=h("g"))]}, "datasets", "each dataset once"),
        ({"datasets": [entry(1), entry(2, grant_id=h("grant1"))]}, "datasets", "each grant once"),
        ({"datasets": [entry(i) for i in range(1, 34)]}, "datasets", "at most 32"),
        ({"datasets": [entry(1, version=0)]}, "datasets.0.version", "greater than or equal"),
        ({"datasets": [entry(1, epsilon_spent=-1)]}, "datasets.0.epsilon_spent", "greater"),
        ({"datasets": [entry(1, uses=0)]}, "datasets.0.uses", "greater"),
        ({"datasets": [entry(1, extra=1)]}, "datasets.0.extra", "unknown fields"),
        ({"contracts": {"registry": "0x" + "11" * 20}}, "contracts.grants", "required"),
        ({"format": "other/1"}, "format", ""),
        ({"salt": "x"}, "salt", "unknown fields are refused"),
    ],
)
def test_each_rule_names_its_field(change: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ReceiptInvalidError) as info:
        Receipt.of(**fields(**change))
    assert info.value.field == field
    assert rule in info.value.rule
    assert isinstance(info.value, ValueError)


def test_times_in_other_zones_are_utc() -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert Receipt.of(**fields(requested_at=plus_two)) == Receipt.of(**fields())
    assert utc_seconds(T0.replace(microsecond=999_999)) == T0
    assert utc_seconds().tzinfo is not None
    with pytest.raises(ReceiptInvalidError, match="time zone"):
        utc_seconds(datetime(2026, 1, 1))


def test_signature_is_eip191_over_the_32_byte_hash() -> None:
    receipt = Receipt.of(**fields())
    signed = sign_receipt(receipt, KEY)
    assert signed.hash == receipt.hash()
    assert signed.signer() == EXECUTOR
    # Independent recovery: keccak256("\x19Ethereum Signed Message:\n32" || hash) and eth-keys.
    digest = keccak(b"\x19Ethereum Signed Message:\n32" + bytes.fromhex(signed.hash[2:]))
    raw = bytes.fromhex(signed.signature[2:])
    vrs = (raw[64] - 27, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"))
    public = keys.Signature(vrs=vrs).recover_public_key_from_msg_hash(digest)
    assert public.to_checksum_address() == EXECUTOR


def test_signature_matches_cast_wallet_sign() -> None:
    # Foundry's cast, an independent client, signs the 32-byte hash exactly as we do.
    cast = (
        Path(__file__).resolve().parents[3] / "node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
    )
    assert cast.exists(), f"{cast} is missing: run `make setup`"
    signed = sign_receipt(Receipt.of(**fields()), KEY)
    out = subprocess.run(
        [str(cast), "wallet", "sign", "--private-key", KEY, signed.hash],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == signed.signature


def test_signing_with_another_key_is_refused() -> None:
    with pytest.raises(ReceiptInvalidError, match="signing key") as info:
        sign_receipt(Receipt.of(**fields()), ANVIL_DEV_KEYS[1])
    assert info.value.field == "executor"


def test_malformed_signatures_are_refused() -> None:
    signed = sign_receipt(Receipt.of(**fields()), KEY)
    raw = bytearray.fromhex(signed.signature[2:])
    high_s = bytearray(raw)
    s = int.from_bytes(raw[32:64], "big")
    high_s[32:64] = (SECP256K1_N - s).to_bytes(32, "big")
    high_s[64] = 55 - raw[64]  # flips v along with s: the same signer, but malleated
    with pytest.raises(ReceiptInvalidError, match="low s"):
        recover_signer(signed.hash, "0x" + high_s.hex())
    bad_v = bytearray(raw)
    bad_v[64] = 1
    with pytest.raises(ReceiptInvalidError, match="v = 27 or 28"):
        recover_signer(signed.hash, "0x" + bad_v.hex())
    with pytest.raises(ReceiptInvalidError, match="65 bytes"):
        recover_signer(signed.hash, "0x1234")
    flipped = bytearray(raw)
    flipped[5] ^= 1
    try:
        assert recover_signer(signed.hash, "0x" + flipped.hex()) != EXECUTOR
    except ReceiptInvalidError as exc:
        assert exc.field == "signature"


def test_signed_receipt_file_round_trips_and_is_strict() -> None:
    signed = sign_receipt(Receipt.of(**fields()), KEY)
    text = signed.to_json()
    assert SignedReceipt.from_json(text) == signed
    data = json.loads(text)
    assert set(data) == {"format", "receipt", "hash", "signature", "batch"}
    data["receipt"]["suppression_k"] = 3
    with pytest.raises(ReceiptInvalidError, match="hash is not keccak256"):
        SignedReceipt.from_json(json.dumps(data))
    with pytest.raises(ReceiptInvalidError) as info:
        SignedReceipt.from_json(json.dumps(json.loads(text) | {"note": "x"}))
    assert info.value.field == "note"
    with pytest.raises(ReceiptInvalidError, match="130 hex digits"):
        SignedReceipt.from_json(json.dumps(json.loads(text) | {"signature": "0xab"}))
    for junk in ("not json", "[1]"):
        with pytest.raises(ReceiptInvalidError) as info:
            SignedReceipt.from_json(junk)
        assert info.value.field == "file"


def test_batch_inclusion_proves_each_receipt_of_its_tree() -> None:
    receipts = [sign_receipt(Receipt.of(**fields(job_id=h(f"job{i}"))), KEY) for i in range(5)]
    tree = StandardMerkleTree.of([[s.hash] for s in receipts], ["bytes32"])
    for i, signed in enumerate(receipts):
        inclusion = BatchInclusion(root=tree.root, proof=tree.proof(i))
        assert inclusion.proves(signed.hash)
        assert not inclusion.proves(receipts[(i + 1) % 5].hash)
        with_batch = signed.with_batch(inclusion)
        assert SignedReceipt.from_json(with_batch.to_json()) == with_batch
    with pytest.raises(ValueError, match="bytes32"):
        BatchInclusion(root=tree.root, proof=[], leaf_encoding=["uint256"])


def test_job_tuple_is_the_record_usage_argument() -> None:
    signed = sign_receipt(Receipt.of(**fields()), KEY)
    job_id, consumer, algorithm, purpose, receipt_hash = job_tuple(signed)
    assert job_id == keccak(text="job") and consumer == signed.receipt.consumer
    assert algorithm == keccak(text="algorithm") and purpose == keccak(text="purpose")
    assert receipt_hash.hex() == signed.hash[2:]


@pytest.mark.parametrize(
    "error",
    [
        ReceiptInvalidError("datasets", "must name each dataset once"),
        ReceiptConflictError(h("job"), h("a"), h("b")),
        ReceiptChainConflictError(7, h("a"), None),
        ReceiptNotFoundError("job id", h("job")),
    ],
)
def test_errors_survive_pickling(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert copy.__dict__ == error.__dict__

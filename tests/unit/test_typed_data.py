"""Grant typed data: the eth_signTypedData_v4 JSON, its digest, and the checks on grant values."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidGrantError, LedgerError
from ledger.rights.typed_data import (
    GRANT_TYPE,
    Grant,
    grant_as_tuple,
    grant_digest,
    grant_typed_data,
)

# Copied from AccessGrants.sol (GRANT_TYPEHASH) and EIP-712, to check against an independent
# implementation of the spec rather than against eth-account.
SOLIDITY_GRANT_TYPE = (
    "Grant(uint256 datasetId,address grantor,address grantee,bytes32 algorithmHash,"
    "bytes32 purpose,uint64 validFrom,uint64 validUntil,uint32 maxUses,uint64 epsilonBudget,"
    "address paymentToken,uint256 pricePerUse,uint256 nonce,uint256 deadline)"
)
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
SOLIDITY_TYPES = [
    "uint256",
    "address",
    "address",
    "bytes32",
    "bytes32",
    "uint64",
    "uint64",
    "uint32",
    "uint64",
    "address",
    "uint256",
    "uint256",
    "uint256",
]
JSON_NAMES = dict(
    zip([f.name for f in dataclasses.fields(Grant)], [n for n, _ in GRANT_TYPE], strict=True)
)
CONTRACT = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
GRANTOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
GRANTEE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _grant(**changes: Any) -> Grant:
    grant = Grant(
        dataset_id=1,
        grantor=to_checksum_address(GRANTOR),
        grantee=to_checksum_address(GRANTEE),
        algorithm_hash=keccak(text="algorithm:dp-mean:v1"),
        purpose=keccak(text="research.oncology"),
        valid_from=1_800_000_000,
        valid_until=1_802_592_000,
        max_uses=10,
        epsilon_budget=1_000_000,
        payment_token=to_checksum_address("0x" + "00" * 20),
        price_per_use=10**16,
        nonce=0,
        deadline=1_800_003_600,
    )
    return dataclasses.replace(grant, **changes)


def _spec_digest(grant: Grant, chain_id: int, contract: str) -> bytes:
    domain = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=DOMAIN_TYPE),
                keccak(text="Ledger AccessGrants"),
                keccak(text="1"),
                chain_id,
                contract,
            ],
        )
    )
    struct = keccak(
        encode(
            ["bytes32", *SOLIDITY_TYPES], [keccak(text=SOLIDITY_GRANT_TYPE), *grant_as_tuple(grant)]
        )
    )
    return keccak(b"\x19\x01" + domain + struct)


def test_typed_data_is_the_wallet_json() -> None:
    grant = _grant()
    data = grant_typed_data(grant, 31337, CONTRACT.lower())
    assert set(data) == {"types", "primaryType", "domain", "message"}
    assert data["primaryType"] == "Grant"
    assert data["types"]["EIP712Domain"] == [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ]
    encoded_type = "Grant(" + ",".join(f"{m['type']} {m['name']}" for m in data["types"]["Grant"])
    assert encoded_type + ")" == SOLIDITY_GRANT_TYPE
    assert data["domain"] == {
        "name": "Ledger AccessGrants",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": CONTRACT,  # checksummed
    }
    assert data["message"] == {
        "datasetId": "1",
        "grantor": GRANTOR,
        "grantee": GRANTEE,
        "algorithmHash": "0x" + keccak(text="algorithm:dp-mean:v1").hex(),
        "purpose": "0x" + keccak(text="research.oncology").hex(),
        "validFrom": "1800000000",
        "validUntil": "1802592000",
        "maxUses": "10",
        "epsilonBudget": "1000000",
        "paymentToken": "0x" + "00" * 20,
        "pricePerUse": "10000000000000000",
        "nonce": "0",
        "deadline": "1800003600",
    }
    assert json.loads(json.dumps(data)) == data


def test_large_integers_stay_exact_as_decimal_strings() -> None:
    grant = _grant(dataset_id=2**256 - 1, epsilon_budget=2**64 - 1, nonce=2**53 + 1)
    message = json.loads(json.dumps(grant_typed_data(grant, 1, CONTRACT)))["message"]
    assert message["datasetId"] == str(2**256 - 1)
    assert message["epsilonBudget"] == "18446744073709551615"
    assert message["nonce"] == "9007199254740993"


def test_digest_follows_the_eip712_spec() -> None:
    grant = _grant()
    assert grant_digest(grant, 31337, CONTRACT) == _spec_digest(grant, 31337, CONTRACT)


def test_digest_binds_chain_and_contract() -> None:
    grant = _grant()
    digests = {
        grant_digest(grant, 31337, CONTRACT),
        grant_digest(grant, 31338, CONTRACT),
        grant_digest(grant, 31337, GRANTEE),
        grant_digest(_grant(nonce=1), 31337, CONTRACT),
    }
    assert len(digests) == 4


def _uint(bits: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=2**bits - 1)


_addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
_words = st.binary(min_size=32, max_size=32)
_grants = st.builds(
    Grant,
    dataset_id=_uint(256),
    grantor=_addresses,
    grantee=_addresses,
    algorithm_hash=_words,
    purpose=_words,
    valid_from=_uint(64),
    valid_until=_uint(64),
    max_uses=_uint(32),
    epsilon_budget=_uint(64),
    payment_token=_addresses,
    price_per_use=_uint(256),
    nonce=_uint(256),
    deadline=_uint(256),
)


@given(grant=_grants, chain_id=st.integers(min_value=1, max_value=2**64), contract=_addresses)
def test_digest_matches_the_spec_for_any_grant(grant: Grant, chain_id: int, contract: str) -> None:
    assert grant_digest(grant, chain_id, contract) == _spec_digest(grant, chain_id, contract)


def test_tuple_is_in_struct_order() -> None:
    grant = _grant()
    names = [field.name for field in dataclasses.fields(Grant)]
    assert grant_as_tuple(grant) == tuple(getattr(grant, name) for name in names)
    assert len(names) == len(GRANT_TYPE) == len(SOLIDITY_TYPES)


def test_addresses_are_stored_checksummed() -> None:
    grant = _grant(grantor=GRANTOR.lower(), payment_token="0x" + "ab" * 20)
    assert grant.grantor == GRANTOR
    assert grant.payment_token == to_checksum_address("0x" + "ab" * 20)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("dataset_id", -1, "[0, 2^256)"),
        ("dataset_id", 2**256, "[0, 2^256)"),
        ("max_uses", 2**32, "[0, 2^32)"),
        ("valid_until", 2**64, "[0, 2^64)"),
        ("nonce", True, "integer"),
        ("deadline", "1800003600", "integer"),
        ("grantee", "0x1234", "address"),
        ("grantee", GRANTEE[2:], "0x-prefixed"),
        ("grantee", GRANTEE.replace("C", "c", 1), "checksum"),
        ("payment_token", None, "address"),
        ("purpose", b"\x01" * 31, "32 bytes"),
        ("algorithm_hash", "0x" + "11" * 32, "32 bytes"),
    ],
)
def test_values_outside_their_solidity_type_are_refused(field: str, value: Any, rule: str) -> None:
    with pytest.raises(InvalidGrantError) as info:
        _grant(**{field: value})
    error = info.value
    assert isinstance(error, LedgerError) and isinstance(error, ValueError)
    assert error.field == JSON_NAMES[field]  # named as in the JSON a wallet signs
    assert rule in error.rule and error.value == value
    assert f"'{error.field}'" in str(error)


@pytest.mark.parametrize(
    ("chain_id", "contract", "field"),
    [
        (0, CONTRACT, "domain.chainId"),
        (True, CONTRACT, "domain.chainId"),
        (1, "0x00", "domain.verifyingContract"),
    ],
)
def test_bad_domain_is_refused(chain_id: Any, contract: str, field: str) -> None:
    with pytest.raises(InvalidGrantError) as info:
        grant_typed_data(_grant(), chain_id, contract)
    assert info.value.field == field

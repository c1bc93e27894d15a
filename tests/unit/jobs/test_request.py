"""Job requests: grant JSON in both shapes, datasets, params, the checks that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from ledger.jobs.errors import JobRequestError
from ledger.jobs.request import (
    DatasetSpec,
    JobRequestSpec,
    build_request,
    grant_from_json,
    grant_to_json,
    load_grants,
    new_job_id,
    parse_dataset,
    parse_params,
)
from ledger.rights.typed_data import Grant, grant_typed_data

CONSUMER = Account.from_key(keccak(text="consumer")).address
OWNER = Account.from_key(keccak(text="owner")).address
ALGO = keccak(text="algo")
PURPOSE = keccak(text="research")


def grant(dataset_id: int = 1, **changes: object) -> Grant:
    values: dict[str, object] = {
        "dataset_id": dataset_id,
        "grantor": OWNER,
        "grantee": CONSUMER,
        "algorithm_hash": ALGO,
        "purpose": PURPOSE,
        "valid_from": 0,
        "valid_until": 2**40,
        "max_uses": 3,
        "epsilon_budget": 10**6,
        "payment_token": "0x" + "00" * 20,
        "price_per_use": 10**15,
        "nonce": dataset_id,
        "deadline": 2**40,
    }
    values.update(changes)
    return Grant(**values)  # type: ignore[arg-type]


def request(**changes: object) -> JobRequestSpec:
    args: dict[str, object] = {
        "consumer": CONSUMER,
        "grants": (grant(1), grant(2)),
        "algorithm": "dp_mean",
        "algorithm_hash": ALGO,
        "params": {"column": "age", "epsilon": 0.5},
        "datasets": (DatasetSpec(2, 1), DatasetSpec(1, None)),
    }
    args.update(changes)
    return build_request(**args)  # type: ignore[arg-type]


def test_grant_json_round_trip_and_typed_data_shape() -> None:
    g = grant(7, price_per_use=2**80)
    assert grant_from_json(grant_to_json(g)) == g
    typed = grant_typed_data(g, 31337, "0x" + "11" * 20)
    assert grant_from_json(typed) == g
    assert grant_to_json(g)["pricePerUse"] == str(2**80)


def test_load_grants_file_one_or_list(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps(grant_to_json(grant(1))))
    many = tmp_path / "many.json"
    many.write_text(json.dumps([grant_to_json(grant(1)), grant_to_json(grant(2))]))
    assert load_grants(one) == [grant(1)]
    assert [g.dataset_id for g in load_grants(many)] == [1, 2]


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("not json", "grant"),
        ("[]", "grant"),
        ("42", "grant[0]"),
    ],
)
def test_load_grants_refuses_bad_files(tmp_path: Path, content: str, field: str) -> None:
    path = tmp_path / "g.json"
    path.write_text(content)
    with pytest.raises(JobRequestError) as info:
        load_grants(path)
    assert info.value.field == field


def test_load_grants_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JobRequestError, match="readable JSON file"):
        load_grants(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("maxUses", "-1", "uint32"),
        ("maxUses", True, "uint32"),
        ("grantee", "0x1234", "address"),
        ("purpose", "0x12", "64 hex digits"),
        ("pricePerUse", str(2**256), "uint256"),
    ],
)
def test_grant_terms_checked_by_field(key: str, value: object, rule: str) -> None:
    data = grant_to_json(grant(1))
    data[key] = value
    with pytest.raises(JobRequestError, match=rule) as info:
        grant_from_json(data)
    assert info.value.field == f"grant.{key}"


def test_grant_term_missing() -> None:
    data = grant_to_json(grant(1))
    del data["nonce"]
    with pytest.raises(JobRequestError) as info:
        grant_from_json(data)
    assert info.value.field == "grant.nonce"


def test_request_orders_grants_by_dataset_and_round_trips() -> None:
    spec = request()
    assert [g.dataset_id for g in spec.grants] == [2, 1]
    assert spec.grant_for(1) == grant(1)
    assert JobRequestSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert spec.purpose == PURPOSE


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"consumer": "nobody"}, "consumer"),
        ({"datasets": ()}, "datasets"),
        ({"datasets": (DatasetSpec(1), DatasetSpec(1))}, "datasets"),
        ({"grants": (grant(1),)}, "grants"),
        ({"grants": (grant(1), grant(3))}, "grants"),
        ({"grants": (grant(1), grant(2, grantee=OWNER))}, "grants[1].grantee"),
        ({"grants": (grant(1), grant(2, purpose=ALGO))}, "grants[1].purpose"),
        ({"params": [1, 2]}, "params"),
        ({"params": {"x": "y" * 70_000}}, "params"),
        ({"algorithm": "Bad Name!"}, "algorithm"),
        ({"algorithm_hash": bytes(32)}, "algorithm"),
    ],
)
def test_request_refusals_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(JobRequestError) as info:
        request(**changes)
    assert info.value.field == field
    assert field in str(info.value)


def test_job_ids_are_fresh_unless_salted() -> None:
    spec = request()
    assert new_job_id(spec) != new_job_id(spec)
    assert new_job_id(spec, b"s" * 32) == new_job_id(spec, b"s" * 32)
    assert len(new_job_id(spec)) == 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", DatasetSpec(3, None)), ("3:2", DatasetSpec(3, 2)), (" 12:1 ", DatasetSpec(12, 1))],
)
def test_parse_dataset(text: str, expected: DatasetSpec) -> None:
    assert parse_dataset(text) == expected


@pytest.mark.parametrize("text", ["", "x", "3:", "3:0", "-1", "1:2:3", f"1:{2**32}"])
def test_parse_dataset_refuses(text: str) -> None:
    with pytest.raises(JobRequestError) as info:
        parse_dataset(text)
    assert info.value.field == "dataset"


def test_parse_params() -> None:
    assert parse_params('{"a": 1}') == {"a": 1}
    for bad in ("[1]", "nope", "1"):
        with pytest.raises(JobRequestError) as info:
            parse_params(bad)
        assert info.value.field == "params"


def test_stored_request_that_is_corrupt_is_a_typed_error() -> None:
    data = request().to_json()
    del data["algorithm"]
    with pytest.raises(JobRequestError) as info:
        JobRequestSpec.from_json(data)
    assert info.value.field == "request"

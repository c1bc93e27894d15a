"""FAIR metadata: validation with errors that name the field, the rounding rule, and the
canonical form and hash of the document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from ledger.registry.errors import MetadataError
from ledger.registry.metadata import (
    MetadataDocument,
    PublicColumn,
    build_document,
    load_metadata_input,
    metadata_uri,
    parse_metadata_input,
    parse_metadata_uri,
    round_count,
)
from tests.unit.registry.vaultfiles import metadata_fields

HASH_A = "0x" + "ab" * 32
HASH_B = "0x" + "cd" * 32


def _document(**changes: Any) -> MetadataDocument:
    fields: dict[str, Any] = {
        "row_count": 147,
        "contributor_count": 3,
        "columns": [PublicColumn(name="age", type="decimal", unit="years")],
        "schema_hash": HASH_A,
        "commitment": HASH_B,
        "previous_commitment": None,
    }
    fields.update(changes)
    meta = parse_metadata_input(metadata_fields(keywords=["diabetes"], description="Rows."))
    return build_document(meta, name="diabetes-north", version=1, **fields)


@pytest.mark.parametrize(
    ("n", "step", "expected"),
    [
        (0, 100, 0),
        (1, 100, 100),
        (57, 100, 100),
        (149, 100, 100),
        (150, 100, 200),
        (1_234, 100, 1_200),
        (9_950, 100, 10_000),
        (98_765, 100, 99_000),
        (123_456_789, 100, 120_000_000),
        (3, 10, 10),
        (47, 10, 50),
        (1, 1, 1),
        (12, 1, 12),
        (123, 1, 120),
    ],
)
def test_round_count_table(n: int, step: int, expected: int) -> None:
    assert round_count(n, step) == expected


@given(st.integers(min_value=1, max_value=10**12), st.sampled_from([1, 10, 100]))
def test_round_count_is_coarse_and_close(n: int, step: int) -> None:
    rounded = round_count(n, step)
    assert rounded >= step and rounded % step == 0
    unit = max(step, 10 ** max(len(str(n)) - 2, 0))
    assert rounded % unit == 0  # never finer than two significant digits or the step
    assert abs(rounded - n) <= max(unit // 2, step)


def test_round_count_refuses_negative() -> None:
    with pytest.raises(ValueError):
        round_count(-1)


def test_valid_metadata_is_normalized() -> None:
    meta = parse_metadata_input(
        metadata_fields(keywords=["Diabetes", "diabetes ", "  Type  2 "], license="cc0-1.0")
    )
    assert meta.license == "CC0-1.0"
    assert meta.keywords == ["diabetes", "type 2"]
    assert meta.title == "Diabetes progression, north hospital"


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"license": "CC-BY-4"}, "license", "did you mean 'CC-BY-4.0'"),
        ({"license": "GPL-3.0-only"}, "license", "SPDX"),
        ({"title": "   "}, "title", "must not be empty"),
        ({"title": "x" * 201}, "title", "at most 200"),
        ({"description": "bad\x00text"}, "description", "control characters"),
        ({"keywords": []}, "keywords", "at least 1"),
        ({"keywords": ["ok", "no|bars"]}, "keywords", "each keyword"),
        (
            {"temporal_coverage": {"start": "2022-01-01", "end": "2021-01-01"}},
            "temporal_coverage",
            "start must be on or before end",
        ),
        (
            {"temporal_coverage": {"start": "2022-13-01", "end": "2023-01-01"}},
            "temporal_coverage.start",
            "date",
        ),
        ({"titel": "typo"}, "titel", "not a known field"),
    ],
)
def test_bad_metadata_names_field_and_rule(changes: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(MetadataError) as info:
        parse_metadata_input(metadata_fields(**changes))
    assert info.value.field == field
    assert rule in str(info.value)


def test_missing_field_is_named() -> None:
    fields = metadata_fields()
    del fields["publisher"]
    with pytest.raises(MetadataError, match="'publisher': is required"):
        parse_metadata_input(fields)


def test_metadata_files_yaml_and_json(tmp_path: Path) -> None:
    as_json = tmp_path / "meta.json"
    as_json.write_text(json.dumps(metadata_fields()))
    as_yaml = tmp_path / "meta.yaml"
    as_yaml.write_text(
        "title: Diabetes progression, north hospital\n"
        "description: Baseline measurements and one-year disease progression of patients.\n"
        "keywords: [diabetes, Endocrinology, progression]\n"
        "license: cc-by-4.0\n"
        "publisher: North Hospital\n"
        "temporal_coverage: {start: 2019-01-01, end: 2021-12-31}\n"
    )
    assert load_metadata_input(as_json) == load_metadata_input(as_yaml)


@pytest.mark.parametrize(
    ("name", "text", "rule"),
    [
        ("meta.yaml", "title: [unclosed\n", "not valid YAML"),
        ("meta.json", "{", "not valid JSON"),
        ("meta.yaml", "- a list\n", "must be a mapping"),
    ],
)
def test_bad_metadata_files(tmp_path: Path, name: str, text: str, rule: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(MetadataError, match=rule):
        load_metadata_input(path)
    with pytest.raises(MetadataError, match="does not exist"):
        load_metadata_input(tmp_path / "missing.yaml")


def test_canonical_form_matches_hand_written_text() -> None:
    document = _document()
    # Written by hand from RFC 8785: keys sorted by UTF-16 code units, no whitespace, counts
    # rounded (147 records -> 100, 3 contributors -> 10), null kept.
    expected = (
        '{"columns":[{"name":"age","type":"decimal","unit":"years"}],'
        f'"commitment":"{HASH_B}","contributor_count":10,'
        '"count_rounding":"two significant digits, multiples of 100 (records) and 10 '
        '(contributors), at least one step when non-empty",'
        '"description":"Rows.","format":"ledger.registry.metadata/1","keywords":["diabetes"],'
        '"license":"CC-BY-4.0","name":"diabetes-north","previous_commitment":null,'
        '"publisher":"North Hospital","record_count":100,'
        f'"schema_hash":"{HASH_A}",'
        '"temporal_coverage":{"end":"2021-12-31","start":"2019-01-01"},'
        '"title":"Diabetes progression, north hospital","version":1}'
    ).encode()
    assert document.canonical_bytes() == expected
    assert document.hash == "0x" + keccak(expected).hex()
    assert document.uri == f"ledger:metadata:{document.hash}"


def test_hash_is_stable_and_sensitive() -> None:
    first = _document()
    again = MetadataDocument.from_json(
        json.dumps(json.loads(first.canonical_bytes()), indent=4), expected_hash=first.hash
    )
    assert again.hash == first.hash
    assert _document(row_count=120).hash == first.hash  # same rounded count
    assert _document(row_count=160).hash != first.hash
    assert _document(previous_commitment=HASH_A).hash != first.hash


def test_stored_document_with_other_hash_is_refused() -> None:
    document = _document()
    with pytest.raises(MetadataError, match="does not hash to"):
        MetadataDocument.from_json(document.canonical_bytes(), expected_hash=HASH_A)


def test_metadata_uri_round_trip() -> None:
    assert parse_metadata_uri(metadata_uri(HASH_A.upper().replace("0X", "0x"))) == HASH_A
    assert parse_metadata_uri("ipfs://Qm") is None
    assert parse_metadata_uri("ledger:metadata:0x1234") is None


def test_document_refuses_bad_hashes() -> None:
    with pytest.raises(MetadataError, match="schema_hash"):
        _document(schema_hash="0x1234")

"""Canonical JSON (RFC 8785) and the hashes on it: the RFC's own examples, strict parsing of
result files, and the integer domain."""

from __future__ import annotations

import json

import pytest
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from ledger.provenance.canonical import (
    MAX_SAFE_INTEGER,
    canonical_json,
    parse_json_strict,
    result_hash,
    result_hash_of_bytes,
)
from ledger.provenance.errors import ResultInvalidError


def test_rfc8785_example_of_values() -> None:
    # RFC 8785 section 3.2.2: numbers, string escapes and literals.
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(json.loads(text)) == expected.encode("utf-8")


def test_rfc8785_sorts_keys_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3: the order of these property names.
    names = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    value = {name: i for i, name in enumerate(names)}
    order = list(json.loads(canonical_json(value)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_result_hash_ignores_layout_but_not_values() -> None:
    result = {"mean": 61.25, "count": 412, "cells": [{"k": "a", "n": 12}]}
    compact = json.dumps(result, separators=(",", ":")).encode()
    pretty = json.dumps(dict(reversed(list(result.items()))), indent=4).encode()
    expected = "0x" + keccak(canonical_json(result)).hex()
    assert result_hash_of_bytes(compact) == result_hash_of_bytes(pretty) == expected
    assert result_hash(result) == expected
    assert result_hash_of_bytes(compact.replace(b"412", b"413")) != expected


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"{", "not JSON"),
        (b'{"a": 1, "a": 2}', "repeats the object key 'a'"),
        (b'{"a": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"[1e400]", "NaN or an infinity"),
        (b"[1" + b"0" * 400 + b"]", "range of an IEEE double"),
    ],
)
def test_result_files_without_a_canonical_form_are_refused(data: bytes, rule: str) -> None:
    with pytest.raises(ResultInvalidError, match=rule) as info:
        result_hash_of_bytes(data)
    assert str(info.value).startswith("result: ")


def test_large_integers_read_as_the_double_they_equal() -> None:
    assert parse_json_strict(b"[9007199254740992, 100000000000000000000]") == [2.0**53, 1e20]
    assert result_hash_of_bytes(b"[1e20]") == result_hash_of_bytes(b"[100000000000000000000]")
    # As JSON.parse: 2^53 + 1 is read as 2^53.
    assert parse_json_strict(b"[9007199254740993]") == [2.0**53]


def test_safe_integers_are_exact() -> None:
    assert (
        canonical_json([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER])
        == b"[9007199254740991,-9007199254740991]"
    )
    with pytest.raises(ResultInvalidError):
        canonical_json({"x": object()})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_bytes_parse_back_and_are_a_fixed_point(value: object) -> None:
    data = canonical_json(value)
    parsed = parse_json_strict(data)
    assert canonical_json(parsed) == data
    assert result_hash_of_bytes(json.dumps(value, indent=1).encode()) == result_hash(value)

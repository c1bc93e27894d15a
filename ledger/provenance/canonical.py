"""Canonical JSON (RFC 8785, the JSON Canonicalization Scheme) and the hashes built on it.

Receipts, parameters and results are hashed the same way: ``keccak256(JCS(value))``, where JCS
sorts object keys by UTF-16 code units, writes numbers as ECMAScript does and strings with
minimal escaping (the ``rfc8785`` package). JCS numbers are IEEE doubles, so integers must lie
within +-(2^53 - 1) (I-JSON); larger ones are refused rather than rounded.

A released result file is JSON text; its hash is the keccak256 of the JCS bytes of the parsed
value, so whitespace and key order in the file do not matter but every value does. Parsing is
strict: duplicate keys, ``NaN`` and ``Infinity`` are refused (they have no canonical form), and
an integer beyond 2^53 - 1 is read as the nearest double, as JavaScript reads it, so the hash of
a file is what a JavaScript JCS implementation computes for it.
"""

from __future__ import annotations

import json
from typing import Any, Final

import rfc8785

from ledger.merkle import keccak256
from ledger.provenance.errors import ResultInvalidError

__all__ = [
    "MAX_SAFE_INTEGER",
    "canonical_json",
    "hash_hex",
    "keccak_hex",
    "parameters_hash",
    "parse_json_strict",
    "result_hash",
    "result_hash_of_bytes",
]

#: Largest integer JCS (an IEEE double) represents exactly: 2^53 - 1.
MAX_SAFE_INTEGER: Final = 2**53 - 1


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical bytes of `value` (dicts, lists, str, int, float, bool, None).

    Raises:
        ResultInvalidError: `value` holds a type JSON lacks, an integer beyond +-(2^53 - 1), or a
            non-finite float.
    """
    try:
        return rfc8785.dumps(value)
    except rfc8785.IntegerDomainError:
        raise ResultInvalidError(
            "holds an integer beyond +-(2^53 - 1), which JCS cannot represent"
        ) from None
    except rfc8785.FloatDomainError:
        raise ResultInvalidError("holds NaN or an infinity, which JSON cannot represent") from None
    except rfc8785.CanonicalizationError as exc:
        raise ResultInvalidError(f"is not canonicalizable JSON ({exc})") from None


def keccak_hex(data: bytes) -> str:
    """``0x`` + the 64 lowercase hex digits of keccak256(`data`)."""
    return "0x" + keccak256(data).hex()


def hash_hex(value: Any) -> str:
    """keccak256 of the canonical JSON of `value`, as ``0x`` hex.

    Raises:
        ResultInvalidError: as `canonical_json`.
    """
    return keccak_hex(canonical_json(value))


def parameters_hash(parameters: Any) -> str:
    """The hash of a job's parameters (a JSON value): keccak256 of its canonical JSON.

    Raises:
        ResultInvalidError: as `canonical_json`.
    """
    return hash_hex(parameters)


def result_hash(result: Any) -> str:
    """The hash of a released result (a JSON value): keccak256 of its canonical JSON.

    Raises:
        ResultInvalidError: as `canonical_json`.
    """
    return hash_hex(result)


def result_hash_of_bytes(data: bytes) -> str:
    """The hash of a released result file: its JSON text parsed strictly, then `result_hash`.

    Raises:
        ResultInvalidError: the bytes are not UTF-8 JSON, repeat a key, hold NaN/Infinity, or
            an integer beyond +-(2^53 - 1).
    """
    return result_hash(parse_json_strict(data))


def parse_json_strict(data: bytes) -> Any:
    """Parse JSON text, refusing what has no canonical form (duplicate keys, NaN, Infinity).

    Raises:
        ResultInvalidError: the bytes are not strict UTF-8 JSON.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultInvalidError("is not UTF-8 text") from None
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_int=_number,
        )
    except ValueError as exc:
        if isinstance(exc, ResultInvalidError):
            raise
        raise ResultInvalidError(f"is not JSON ({exc.args[0] if exc.args else exc})") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ResultInvalidError(f"repeats the object key {key!r} (no canonical form)")
        result[key] = value
    return result


def _number(digits: str) -> int | float:
    # JCS numbers are doubles: an integer beyond 2^53 - 1 is read as the nearest double, as
    # JavaScript's JSON.parse reads it (and as JCS writes large floats).
    value = int(digits)
    if abs(value) <= MAX_SAFE_INTEGER:
        return value
    try:
        return float(value)
    except OverflowError:
        raise ResultInvalidError("holds a number beyond the range of an IEEE double") from None


def _no_constant(name: str) -> Any:
    raise ResultInvalidError(f"holds {name}, which JSON cannot represent")

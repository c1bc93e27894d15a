"""Small helpers shared by the routers: error responses for OpenAPI, parsing of numbers and
hashes from JSON, and the session's database connection."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from eth_utils.address import is_address, to_checksum_address
from fastapi.encoders import jsonable_encoder
from sqlalchemy import Engine
from sqlmodel import Session

from api.errors import ApiError
from api.schemas import ErrorResponse

__all__ = ["ERRORS", "address", "hash32", "plain", "reading", "responses", "uint"]

_HASH: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_DESCRIPTIONS: Final = {
    401: "Not signed in, or the sign-in failed.",
    403: "Signed in as an address that may not do this.",
    404: "No such object.",
    409: "Conflicts with the chain's or the service's state.",
    413: "Request body too large.",
    429: "Too many pending sign-ins; retry later.",
    422: "A field breaks a rule (the message names it).",
    503: "The chain or the database is unavailable.",
}
ERRORS: Final = _DESCRIPTIONS


def responses(*codes: int, ok: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses (all share the `ErrorResponse` body), and the 200
    entry `ok` if given."""
    out: dict[int | str, dict[str, Any]] = {}
    if ok is not None:
        out[200] = ok
    for c in codes:
        out[c] = {"model": ErrorResponse, "description": _DESCRIPTIONS[c]}
    return out


def plain(value: Any) -> dict[str, Any]:
    """`value` (dataclasses, datetimes, pydantic models) as a JSON object."""
    data: dict[str, Any] = jsonable_encoder(value)
    return data


def uint(value: object, field: str, bits: int = 256) -> int:
    """A JSON integer or decimal string as an unsigned integer of `bits` bits.

    Raises:
        ApiError: 422 ``invalid_request`` naming `field`.
    """
    if isinstance(value, bool):
        raise ApiError(422, "invalid_request", f"{field} must be an integer", field)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,78}", value):
        value = int(value)
    if not isinstance(value, int) or not 0 <= value < 2**bits:
        raise ApiError(
            422, "invalid_request", f"{field} must be an integer in [0, 2^{bits})", field
        )
    return value


def hash32(value: object, field: str) -> str:
    """A 0x-prefixed 32-byte hex hash, lower case.

    Raises:
        ApiError: 422 naming `field`.
    """
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise ApiError(422, "invalid_request", f"{field} must be 0x + 64 hex digits", field)
    return value.lower()


def address(value: object, field: str) -> str:
    """A checksummed address.

    Raises:
        ApiError: 422 naming `field`.
    """
    if not isinstance(value, str) or not is_address(value):
        raise ApiError(422, "invalid_request", f"{field} must be an address (0x + 40 hex)", field)
    return to_checksum_address(value)


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A read-only session (nothing is committed)."""
    with Session(engine) as session:
        yield session

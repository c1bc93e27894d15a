"""Column types the chain needs and SQL databases lack: exact 256-bit integers and UTC times.

`UInt256` holds any Solidity ``uintN`` (token amounts, dataset ids, nonces, micro-epsilon): it is
``NUMERIC(78, 0)`` on PostgreSQL and a zero-padded 78-digit string on SQLite, whose integers stop
at 2^63. Padding keeps equality, ``IN`` and ordering exact on both; sums belong to PostgreSQL or
to Python. `UtcDateTime` stores aware datetimes and always gives back aware UTC datetimes, also
on SQLite, which keeps no time zone. `JsonText` marks a JSON column value that is serialized
already (`ledger.store.bulk` stores it as it is).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "UINT256_DIGITS",
    "JsonText",
    "UInt256",
    "UtcDateTime",
    "check_uint256",
    "utc_from_timestamp",
]

#: Decimal digits of 2^256 - 1.
UINT256_DIGITS: Final = 78
_MAX: Final = 2**256


class JsonText(str):
    """The JSON text of a value, serialized already (exactly as ``json.dumps`` would), for a JSON
    column written by `ledger.store.bulk.bulk_insert`."""

    __slots__ = ()


class UInt256(TypeDecorator[int]):
    """An unsigned integer below 2^256, exact on every database (see the module notes).

    Binding a negative or too large value raises ValueError.
    """

    impl = String(UINT256_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(UINT256_DIGITS, 0))
        return dialect.type_descriptor(String(UINT256_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        check_uint256(value)
        if dialect.name == "postgresql":
            return value
        return f"{value:0{UINT256_DIGITS}d}"

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)

    @property
    def python_type(self) -> type[int]:
        return int


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, stored in UTC; naive datetimes are refused (ValueError)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone")
        value = value.astimezone(UTC)
        # SQLite keeps no zone: store the UTC wall time and restore the zone on the way out.
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


def utc_from_timestamp(seconds: int) -> datetime:
    """The aware UTC datetime of a Unix timestamp (a block's or a contract's ``uint40`` time)."""
    return datetime.fromtimestamp(seconds, UTC)


def check_uint256(value: int) -> int:
    """`value` itself if it is an unsigned 256-bit integer.

    Raises:
        ValueError: it is negative or 2^256 or more.
    """
    if not 0 <= value < _MAX:
        raise ValueError(f"{value} is not an unsigned 256-bit integer")
    return value

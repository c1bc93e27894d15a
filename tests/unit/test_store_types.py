"""Column types, COPY formatting, database URLs and the node-error classifier, without a
database or a chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import JSON, BigInteger, Boolean, String
from sqlalchemy.dialects import postgresql, sqlite

from ledger.errors import DatabaseUnavailableError
from ledger.indexer.rpc import is_range_too_large
from ledger.store.bulk import _copy_converter
from ledger.store.database import parse_database_url, redact
from ledger.store.types import UInt256, UtcDateTime, utc_from_timestamp

SQLITE = sqlite.dialect()
POSTGRES = postgresql.dialect()


@pytest.mark.parametrize("value", [0, 1, 9, 10, 2**63, 2**200, 2**256 - 1])
def test_uint256_on_sqlite_is_padded_so_text_order_is_number_order(value: int) -> None:
    stored = UInt256().process_bind_param(value, SQLITE)
    assert isinstance(stored, str) and len(stored) == 78
    assert UInt256().process_result_value(stored, SQLITE) == value
    bigger = UInt256().process_bind_param(value + 1, SQLITE) if value < 2**256 - 1 else None
    assert bigger is None or stored < bigger


def test_uint256_on_postgresql_is_a_number_and_range_checked() -> None:
    assert UInt256().process_bind_param(2**255, POSTGRES) == 2**255
    for bad in (-1, 2**256):
        with pytest.raises(ValueError, match="256-bit"):
            UInt256().process_bind_param(bad, POSTGRES)
    assert UInt256().process_bind_param(None, SQLITE) is None


def test_utc_datetime_refuses_naive_and_returns_aware_utc() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2)))
    stored = UtcDateTime().process_bind_param(moment, SQLITE)
    assert stored is not None and stored.tzinfo is None and stored.hour == 3
    back = UtcDateTime().process_result_value(stored, SQLITE)
    assert back == moment and back is not None and back.tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2026, 1, 1), POSTGRES)  # noqa: DTZ001
    assert utc_from_timestamp(0) == datetime(1970, 1, 1, tzinfo=UTC)


def test_copy_text_escapes_what_copy_would_misread() -> None:
    text = _copy_converter(String())
    assert text("0xabc") == "0xabc"
    assert text("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert text(None) == "\\N"
    assert _copy_converter(JSON())({"k": "line\nbreak"}) == '{"k": "line\\\\nbreak"}'
    assert _copy_converter(Boolean())(False) == "f"
    assert _copy_converter(BigInteger())(12) == "12"
    assert _copy_converter(UInt256())(2**255) == str(2**255)
    with pytest.raises(ValueError, match="256-bit"):
        _copy_converter(UInt256())(-3)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert _copy_converter(UtcDateTime())(moment) == "2026-01-01T00:00:00+00:00"


def test_database_urls() -> None:
    assert parse_database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_database_url("sqlite:///x.db").drivername == "sqlite"
    assert "pw" not in redact("postgresql://u:pw@h/db")
    with pytest.raises(DatabaseUnavailableError, match="LEDGER_DATABASE_URL"):
        parse_database_url("::nonsense::")


@pytest.mark.parametrize(
    "error",
    [
        {"code": -32005, "message": "query returned more than 10000 results"},
        {"code": -32602, "message": "query exceeds max results 20000, retry with the range 5-9"},
        {"code": -32000, "message": "Log response size exceeded. You can make eth_getLogs ..."},
        {"code": -32600, "message": "eth_getLogs is limited to a 10,000 block range"},
        {"code": -32000, "message": "exceed maximum block range: 5000"},
        {"code": -32603, "message": "Requested range exceeds maximum range limit"},
    ],
)
def test_node_complaints_about_large_ranges_are_recognised(error: dict[str, object]) -> None:
    assert is_range_too_large(error)


@pytest.mark.parametrize(
    "error",
    [
        {"code": -32601, "message": "Method not found"},
        {"code": -32602, "message": "invalid argument 0: hex string without 0x prefix"},
    ],
)
def test_other_node_errors_are_not_mistaken_for_large_ranges(error: dict[str, object]) -> None:
    assert not is_range_too_large(error)

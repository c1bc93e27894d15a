"""Bulk inserts for the indexer's backfill: many rows per statement, little Python per row.

SQLite gets one ``executemany`` of values converted by each column's own SQLAlchemy bind
processor, so they are stored exactly as ``session.execute(insert(table), rows)`` would store
them, without that path's per-row statement machinery. PostgreSQL (psycopg 3) gets one
``COPY ... FROM STDIN`` in text format, built column by column from the column types
(`UInt256`, `UtcDateTime`, JSON, booleans, integers, strings). A JSON value given as `JsonText`
is serialized already and stored as it is. Other databases fall back to the plain insert.
Everything runs in the session's transaction; nothing commits here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import psycopg
from sqlalchemy import JSON, Boolean, Dialect, Integer, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine
from sqlmodel import Session

from ledger.store.types import JsonText, UInt256, UtcDateTime, check_uint256

__all__ = ["bulk_insert"]

Processor = Callable[[Any], Any] | None
# Column names, their converters, and whether their values repeat much (times, flags).
_Plan = tuple[tuple[str, ...], tuple[Processor, ...], tuple[bool, ...]]
# Per table and driver: column names and their value converters (costly to look up).
_PLANS: dict[tuple[Table, str, str], _Plan] = {}
# COPY text format: backslash, tab, newline and carriage return are escaped; NULL is \N.
_COPY_SPECIAL: Final = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES: Final = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_COPY_BLOCK: Final = 2_000


def bulk_insert(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (each with a value for every column of `table`) in the session's transaction.

    Raises:
        KeyError: a row lacks a column.
        ValueError: a value does not fit its column (e.g. a naive datetime).
        sqlalchemy.exc.IntegrityError: a row repeats a primary key.
        sqlalchemy.exc.DBAPIError: the database refused the rows otherwise.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    kind = (dialect.name, dialect.driver)
    if kind not in (("sqlite", "pysqlite"), ("postgresql", "psycopg")):
        session.execute(insert(table), [_parsed(row) for row in rows])
        return
    names, converters, repeats = _plan(table, dialect)
    # Column by column: the loops run in C, and values that repeat (a chunk's block times) are
    # converted once.
    columns = [
        _converted([row[name] for row in rows], convert, repeat)
        for name, convert, repeat in zip(names, converters, repeats, strict=True)
    ]
    if dialect.name == "sqlite":
        connection.exec_driver_sql(_insert_sql(table, dialect), list(zip(*columns, strict=True)))
        return
    lines = ["\t".join(values) + "\n" for values in zip(*columns, strict=True)]
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    statement = _copy_sql(table, dialect)
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for start in range(0, len(lines), _COPY_BLOCK):
                copy.write("".join(lines[start : start + _COPY_BLOCK]))
    except psycopg.Error as exc:
        # Translated as SQLAlchemy would have, so callers catch one family of errors.
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from None


def _parsed(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` with its `JsonText` values parsed back, for the plain insert."""
    return {k: json.loads(v) if isinstance(v, JsonText) else v for k, v in row.items()}


def _converted(values: list[Any], convert: Processor, repeats: bool) -> list[Any]:
    if convert is None:
        return values
    if not repeats:
        return list(map(convert, values))
    distinct = {value: convert(value) for value in set(values)}
    return [distinct[value] for value in values]


def _plan(table: Table, dialect: Dialect) -> _Plan:
    key = (table, dialect.name, dialect.driver)
    plan = _PLANS.get(key)
    if plan is None:
        names = tuple(column.name for column in table.columns)
        converters: tuple[Processor, ...]
        if dialect.name == "postgresql":
            converters = tuple(_copy_converter(column.type) for column in table.columns)
        else:
            converters = tuple(
                _serialized_json(column.type.dialect_impl(dialect).bind_processor(dialect))
                if isinstance(column.type, JSON)
                else column.type.dialect_impl(dialect).bind_processor(dialect)
                for column in table.columns
            )
        repeats = tuple(isinstance(c.type, UtcDateTime | Boolean) for c in table.columns)
        plan = _PLANS[key] = (names, converters, repeats)
    return plan


def _copy_converter(column_type: TypeEngine[Any]) -> Callable[[Any], str]:
    """How one value of a column is written in COPY text format."""
    if isinstance(column_type, UInt256):
        return _nullable(lambda value: str(check_uint256(value)))
    if isinstance(column_type, UtcDateTime):
        return _nullable(_copy_time)
    if isinstance(column_type, JSON):
        return _nullable(
            lambda value: _copy_text(value if type(value) is JsonText else json.dumps(value))
        )
    if isinstance(column_type, Boolean):
        return _nullable(lambda value: "t" if value else "f")
    if isinstance(column_type, Integer):
        return _nullable(lambda value: str(int(value)))
    return _nullable(lambda value: _copy_text(str(value)))


def _serialized_json(convert: Processor) -> Processor:
    """A JSON column's bind processor that stores `JsonText` as it is."""
    if convert is None:
        return None
    serialize = convert
    return lambda value: value if type(value) is JsonText else serialize(value)


def _copy_text(text: str) -> str:
    if _COPY_SPECIAL.search(text) is None:  # hashes and addresses: nothing to escape
        return text
    return _COPY_SPECIAL.sub(lambda match: _COPY_ESCAPES[match.group()], text)


def _copy_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone")
    return value.isoformat()


def _nullable(convert: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: "\\N" if value is None else convert(value)


def _insert_sql(table: Table, dialect: Dialect) -> str:
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.quote(column.name) for column in table.columns)
    marks = ", ".join("?" for _ in table.columns)
    return f"INSERT INTO {quote.format_table(table)} ({columns}) VALUES ({marks})"


def _copy_sql(table: Table, dialect: Dialect) -> str:
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.quote(column.name) for column in table.columns)
    return f"COPY {quote.format_table(table)} ({columns}) FROM STDIN"

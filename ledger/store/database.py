"""Opening the database: SQLite by default, PostgreSQL (psycopg 3) when the URL says so.

There is no module-level engine: the service opens one with `open_engine` and hands it on.
Connection problems become `DatabaseUnavailableError`, which names ``LEDGER_DATABASE_URL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlmodel import create_engine

from ledger.errors import DatabaseUnavailableError

__all__ = ["is_postgresql", "open_engine", "parse_database_url", "redact"]

_CONNECT_TIMEOUT: Final = 5
# Waits for another writer (the API next to the indexer) instead of failing at once.
_SQLITE_BUSY_MS: Final = 10_000


def parse_database_url(url: str) -> URL:
    """The SQLAlchemy URL of `url`; a bare ``postgresql://`` gets the psycopg 3 driver.

    Raises:
        DatabaseUnavailableError: `url` is not a database URL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailableError(redact(url), f"not a database URL: {exc}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def redact(url: str | URL) -> str:
    """`url` with its password hidden, fit for messages and logs."""
    parsed = url if isinstance(url, URL) else _try_parse(url)
    return parsed.render_as_string(hide_password=True) if parsed is not None else "<invalid URL>"


def is_postgresql(engine: Engine) -> bool:
    """Whether `engine` talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


def open_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url`, checked by connecting once.

    SQLite files get their directory created, WAL journaling and a busy timeout; PostgreSQL
    connections get a connect timeout and are pinged before reuse.

    Raises:
        DatabaseUnavailableError: the URL is malformed, its driver is missing, or the database
            cannot be reached or opened.
    """
    parsed = parse_database_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        _make_sqlite_dir(parsed)
        kwargs["connect_args"] = {"timeout": _SQLITE_BUSY_MS / 1000}
    elif parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT}
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnavailableError(redact(parsed), str(exc)) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        engine.dispose()
        raise DatabaseUnavailableError(redact(parsed), _reason(exc)) from None
    return engine


def _make_sqlite_dir(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailableError(redact(url), f"cannot create its directory: {exc}") from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        # 64 MiB of page cache (the default is 2 MiB): index pages of a backfill stay in memory.
        cursor.execute("PRAGMA cache_size=-65536")
    finally:
        cursor.close()


def _reason(exc: DBAPIError) -> str:
    original = str(exc.orig) if exc.orig is not None else str(exc)
    lines = [line.strip() for line in original.strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc.orig).__name__


def _try_parse(url: str) -> URL | None:
    try:
        return make_url(url)
    except ArgumentError:
        return None

"""Storage: SQLModel tables (`ledger.store.models`), engines (`ledger.store.database`), bulk
inserts (`ledger.store.bulk`) and Alembic migrations (`ledger.store.migrate.upgrade`). SQLite by
default, PostgreSQL in production."""

from ledger.store.database import open_engine, parse_database_url, redact

__all__ = ["open_engine", "parse_database_url", "redact"]

"""End-to-end tests share the integration tests' real databases (SQLite and PostgreSQL)."""

from tests.integration.databases import (  # noqa: F401 - fixtures for the e2e tests
    database_url,
    postgres_database,
    postgres_server,
)

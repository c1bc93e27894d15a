"""API tests run against a real anvil and a real database: the fixtures of tests/integration."""

from tests.integration.conftest import anvil, w3  # noqa: F401 - fixtures
from tests.integration.databases import (  # noqa: F401 - fixtures
    database_url,
    postgres_database,
    postgres_server,
)

"""End-to-end fixtures: the integration tests' real databases (SQLite and PostgreSQL), and an
environment of its own per test (a fresh data dir and anvil port, the chain stopped after)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli import free_port, ledger
from tests.integration.databases import (  # noqa: F401 - fixtures for the e2e tests
    database_url,
    postgres_database,
    postgres_server,
)


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    variables["LEDGER_DATA_DIR"] = str(tmp_path / "data")
    variables["LEDGER_ANVIL_PORT"] = str(free_port())
    yield variables
    ledger(variables, "chain", "down")

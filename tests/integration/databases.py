"""Real databases for integration tests: a SQLite file, or a fresh PostgreSQL schema.

`database_url` is parametrized over both. PostgreSQL runs get one database per test session
(``ledger_test_<random>``, dropped at the end) and one schema per test, so concurrent runs and
tests never see each other's tables. When nothing answers at ``LEDGER_TEST_POSTGRES_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``), the fixture starts the local
cluster with ``pg_ctlcluster`` (as root) and stops it afterwards; if it cannot, the test fails
with the reason. It never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = ["database_url", "postgres_database", "postgres_server"]

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_START_TIMEOUT = 30.0


def _libpq(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (psycopg.connect does not know ``+psycopg``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _answers(url: str) -> str | None:
    """None if PostgreSQL at `url` accepts a connection, else why not."""
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def _start_local_clusters() -> tuple[list[tuple[str, str]], str]:
    """Start every local cluster ``pg_ctlcluster`` knows; returns those started and a log."""
    if os.geteuid() != 0:
        return [], "not root, so pg_ctlcluster cannot start a cluster"
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return [], "no pg_ctlcluster or /etc/postgresql here (is postgresql installed?)"
    started: list[tuple[str, str]] = []
    log = []
    for version in sorted(os.listdir("/etc/postgresql")):
        for cluster in sorted(os.listdir(f"/etc/postgresql/{version}")):
            result = subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"],
                capture_output=True,
                text=True,
                check=False,
            )
            log.append(
                f"pg_ctlcluster {version} {cluster} start: {result.returncode} "
                f"{result.stderr.strip()}"
            )
            if result.returncode == 0:
                started.append((version, cluster))
    return started, "; ".join(log)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The maintenance URL of a PostgreSQL server that answers; started here if need be."""
    url = os.environ.get("LEDGER_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)
    reason = _answers(url)
    started: list[tuple[str, str]] = []
    if reason is not None:
        started, log = _start_local_clusters()
        deadline = time.monotonic() + _START_TIMEOUT
        while started and reason is not None and time.monotonic() < deadline:
            time.sleep(0.5)
            reason = _answers(url)
        if reason is not None:
            pytest.fail(
                f"PostgreSQL does not answer at {url} ({reason}) and could not be started: "
                f"{log or 'nothing to start'}. Start it, or set LEDGER_TEST_POSTGRES_URL.",
                pytrace=False,
            )
    yield url
    for version, cluster in started:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "stop"],
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh schema of the session's PostgreSQL database
    (selected through ``search_path`` in the URL, so migrations and queries land there)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    database: str = request.getfixturevalue("postgres_database")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(database, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{database}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

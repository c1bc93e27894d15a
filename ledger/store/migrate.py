"""Alembic migrations through the API: `upgrade` is ``alembic upgrade head`` without an ini file.

The revisions ship in ``ledger/store/migrations`` as package data. On PostgreSQL an advisory lock
serialises concurrent upgrades (the API and ``ledger index`` starting together).

``python -m ledger.store.migrate revision "message"`` autogenerates the next revision from the
models (developers only).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ledger.errors import MigrationError
from ledger.store.database import is_postgresql, open_engine, redact

__all__ = [
    "MIGRATIONS_DIR",
    "current_revision",
    "head_revision",
    "migration_config",
    "upgrade",
    "upgrade_engine",
]

#: Where the Alembic environment and revisions live (package data).
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same in every process of the ledger.
_ADVISORY_LOCK: Final = 0x1ED6E5


def migration_config(connection: Connection | None = None) -> Config:
    """The Alembic configuration, pointing at the packaged migrations and using `connection`."""
    config = Config()
    # ConfigParser interpolates '%': escape it in the path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision shipped with this version of the ledger."""
    head = ScriptDirectory.from_config(migration_config()).get_current_head()
    assert head is not None, "the migrations directory holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None if it was never migrated).

    Raises:
        MigrationError: the database cannot be read.
    """
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as exc:
        raise MigrationError(redact(engine.url), str(exc.orig or exc)) from None


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at `database_url` to `revision` (``alembic upgrade head``).

    Raises:
        DatabaseUnavailableError: the database cannot be reached (names LEDGER_DATABASE_URL).
        MigrationError: a migration failed; nothing of it is committed.
    """
    engine = open_engine(database_url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Migrate the database of an open `engine` to `revision`, in one transaction.

    Raises:
        MigrationError: a migration failed; nothing of it is committed.
    """
    try:
        with engine.begin() as connection:
            if is_postgresql(engine):
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK}
                )
            command.upgrade(migration_config(connection), revision)
    except (CommandError, DBAPIError) as exc:
        reason = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig else str(exc)
        raise MigrationError(redact(engine.url), reason.strip().splitlines()[0]) from None


def _revision(message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        engine = open_engine(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        upgrade_engine(engine)
        with engine.begin() as connection:
            script = ScriptDirectory.from_config(migration_config())
            number = len(list(script.walk_revisions())) + 1
            command.revision(
                migration_config(connection),
                message=message,
                autogenerate=True,
                rev_id=f"{number:04d}",
            )
        engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit('usage: python -m ledger.store.migrate revision "message"')
    _revision(sys.argv[2])

"""The Alembic environment: `ledger.store.migrate` passes an open connection in
``config.attributes["connection"]``; nothing else (no alembic.ini) is needed."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

from ledger.errors import MigrationError
from ledger.store.models import metadata
from ledger.store.types import UInt256, UtcDateTime

__all__: list[str] = []


def _render_type(kind: str, item: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Revisions spell column types with SQLAlchemy and ``ledger.store.types`` only."""
    if kind != "type":
        return False
    if isinstance(item, UInt256 | UtcDateTime):
        name = type(item).__name__
        autogen.imports.add(f"from ledger.store.types import {name}")
        return f"{name}()"
    if isinstance(item, AutoString):
        return f"sa.String(length={item.length})"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters a table by copying it: revisions use batch operations to stay portable.
        render_as_batch=True,
        render_item=_render_type,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise MigrationError(
            "(none)", "run migrations through ledger.store.migrate, which passes a connection"
        )
    _run(connection)


_main()

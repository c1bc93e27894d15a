"""Alembic migrations of the ledger's database (run them with `ledger.store.migrate.upgrade`).

A new revision, after changing ``ledger/store/models``::

    .venv/bin/python -m ledger.store.migrate revision "what changed"

autogenerates it against a scratch SQLite database at the current head; review it, then check
that ``tests/integration/test_store.py`` still passes on SQLite and PostgreSQL.
"""

__all__: list[str] = []

"""The revisions, oldest first (Alembic reads them by path; ``__init__`` is skipped)."""

__all__: list[str] = []

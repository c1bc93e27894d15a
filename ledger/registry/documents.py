"""Metadata documents in the database (table ``dataset_metadata``, migration 0003).

Writes are idempotent: storing a document again only fills in the dataset id and version once
the chain has confirmed them. Each function is one short transaction of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from ledger.errors import DatabaseUnavailableError
from ledger.registry.metadata import MetadataDocument
from ledger.store.database import redact
from ledger.store.models import DatasetMetadata

__all__ = ["keywords_column", "load_document", "store_document"]


def keywords_column(keywords: list[str]) -> str:
    """How keywords are stored: lower-case, between bars (``|cancer|oncology|``)."""
    return "|" + "|".join(k.lower() for k in keywords) + "|"


def store_document(
    engine: Engine,
    document: MetadataDocument,
    *,
    dataset_id: int | None = None,
    version: int | None = None,
) -> None:
    """Store `document` under its hash (once), recording `dataset_id` and `version` if given.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
    """
    digest = document.hash
    for attempt in range(2):
        try:
            with Session(engine) as session:
                row = session.get(DatasetMetadata, digest)
                if row is None:
                    row = DatasetMetadata(
                        metadata_hash=digest,
                        name=document.name,
                        title=document.title,
                        description=document.description,
                        keywords=keywords_column(document.keywords),
                        license=document.license,
                        publisher=document.publisher,
                        document=document.canonical_bytes().decode("utf-8"),
                        stored_at=datetime.now(UTC),
                    )
                if dataset_id is not None:
                    row.dataset_id = dataset_id
                    row.version = version
                session.add(row)
                session.commit()
                return
        except IntegrityError:
            if attempt:
                raise
            # Another process stored it first: the second attempt updates that row.
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DatabaseUnavailableError(redact(engine.url), reason) from None


def load_document(engine: Engine, metadata_hash: str) -> MetadataDocument | None:
    """The stored document of `metadata_hash` (checked to hash to it), or None.

    Raises:
        MetadataError: the stored text does not hash to its key (the row was tampered with).
        DatabaseUnavailableError: the database cannot be reached.
    """
    try:
        with Session(engine) as session:
            row = session.get(DatasetMetadata, metadata_hash.lower())
            text = None if row is None else row.document
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailableError(redact(engine.url), reason) from None
    if text is None:
        return None
    return MetadataDocument.from_json(text, expected_hash=metadata_hash)

"""FAIR metadata documents of dataset versions, written by ``ledger/registry`` (not by events).

A row is keyed by the document's hash (the on-chain ``metadataHash``) and holds the canonical
JSON as registered, plus the fields the catalog searches on. ``dataset_id`` and ``version`` are
filled in once the chain has confirmed the registration; the catalog joins on the hash, so a
document stored by an owner is found for every dataset version that names it. The indexer
never writes or rolls back these rows: they are off-chain documents the chain points at.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from ledger.store.models.base import HASH_LENGTH
from ledger.store.types import UInt256, UtcDateTime

__all__ = ["DatasetMetadata"]


class DatasetMetadata(SQLModel, table=True):
    """A metadata document (RFC 8785 canonical JSON) by its keccak256 hash."""

    __tablename__ = "dataset_metadata"

    metadata_hash: str = Field(primary_key=True, max_length=HASH_LENGTH)
    dataset_id: int | None = Field(default=None, sa_type=UInt256, index=True)
    version: int | None = Field(default=None, ge=1)
    name: str = Field(max_length=63)
    title: str = Field(max_length=200)
    description: str = Field(sa_type=Text)
    # Lower-case keywords between bars ("|cancer|oncology|"), so one keyword matches exactly.
    keywords: str = Field(sa_type=Text)
    license: str = Field(max_length=64, index=True)
    publisher: str = Field(max_length=200)
    document: str = Field(sa_type=Text)
    stored_at: datetime = Field(sa_type=UtcDateTime)

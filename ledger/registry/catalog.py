"""The dataset catalog: search and detail from the index, joined with the metadata documents.

Everything here reads the database: the indexer's tables (datasets, versions, usage, captures)
and ``dataset_metadata`` (written at registration). What it shows is metadata, commitments and
what the chain itself says about use: never rows, never identifier columns, and record and
contributor counts only as rounded in the metadata document. Datasets registered without a
document this database knows (e.g. by another service) are listed with their on-chain fields
only and match no free-text query.

Works the same on SQLite and PostgreSQL: matching is case-insensitive ``LIKE`` with escaped
wildcards; sums of 256-bit amounts run in SQL on PostgreSQL and in Python on SQLite (whose
integers stop at 2^63).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from eth_utils.address import is_address, to_checksum_address
from sqlalchemy import ColumnElement, Connection, Engine, and_, distinct, func, or_, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from ledger.errors import DatabaseUnavailableError
from ledger.indexer.state import table_of
from ledger.registry.errors import CatalogQueryError, DatasetNotFoundError
from ledger.registry.metadata import (
    KNOWN_LICENSES,
    MetadataDocument,
    parse_metadata_uri,
)
from ledger.store.database import is_postgresql, redact
from ledger.store.models import Capture, Dataset, DatasetMetadata, DatasetVersion, UsageRecord

__all__ = [
    "MAX_LIMIT",
    "DatasetDetail",
    "DatasetSummary",
    "SearchPage",
    "UsageStats",
    "VersionInfo",
    "dataset_detail",
    "resolve_metadata_uri",
    "search_datasets",
]

MAX_LIMIT: Final = 100
_MAX_QUERY: Final = 200
_MAX_TERMS: Final = 8

_DATASETS = table_of(Dataset)
_VERSIONS = table_of(DatasetVersion)
_METADATA = table_of(DatasetMetadata)
_USAGE = table_of(UsageRecord)
_CAPTURES = table_of(Capture)


@dataclass(frozen=True)
class DatasetSummary:
    """One search hit: on-chain head plus the catalog fields of its metadata (if known)."""

    dataset_id: int
    owner: str
    version: int
    metadata_hash: str
    metadata_uri: str
    title: str | None
    license: str | None
    publisher: str | None
    keywords: list[str]
    record_count: int | None


@dataclass(frozen=True)
class SearchPage:
    """A page of hits; `total` counts every match."""

    total: int
    limit: int
    offset: int
    items: list[DatasetSummary]


@dataclass(frozen=True)
class VersionInfo:
    """One version as the chain recorded it."""

    version: int
    commitment: str
    contributors_root: str
    schema_hash: str
    metadata_hash: str
    metadata_uri: str
    previous_commitment: str | None
    block_number: int
    tx_hash: str
    block_time: datetime
    has_metadata: bool


@dataclass(frozen=True)
class UsageStats:
    """Use of a dataset as recorded on chain: jobs, grant uses, privacy spent (micro-epsilon),
    and revenue captured per token (net of the platform fee, in base units)."""

    jobs: int = 0
    uses: int = 0
    epsilon_micro: int = 0
    revenue: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetDetail:
    """A dataset's catalog page: head, metadata of the latest version, versions, usage."""

    dataset_id: int
    owner: str
    owner_epoch: int
    owner_share_bps: int
    version: int
    registered_block: int
    registered_tx: str
    registered_at: datetime
    updated_at: datetime
    metadata: MetadataDocument | None
    versions: list[VersionInfo]
    usage: UsageStats


def search_datasets(
    engine: Engine,
    query: str | None = None,
    *,
    license: str | None = None,
    keyword: str | None = None,
    owner: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SearchPage:
    """Datasets whose metadata matches every word of `query` (title, description or keyword)
    and every filter given, newest first.

    Raises:
        CatalogQueryError: a parameter breaks a rule (names it).
        DatabaseUnavailableError: the database cannot be read (is it migrated and indexed?).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise CatalogQueryError("limit", f"must be 1..{MAX_LIMIT}, got {limit}")
    if offset < 0:
        raise CatalogQueryError("offset", f"must be 0 or more, got {offset}")
    conditions: list[ColumnElement[bool]] = []
    if query is not None and query.strip():
        if len(query) > _MAX_QUERY:
            raise CatalogQueryError("query", f"must be at most {_MAX_QUERY} characters")
        terms = query.lower().split()
        if len(terms) > _MAX_TERMS:
            raise CatalogQueryError("query", f"must have at most {_MAX_TERMS} words")
        for term in terms:
            conditions.append(
                or_(
                    func.lower(_METADATA.c.title).contains(term, autoescape=True),
                    func.lower(_METADATA.c.description).contains(term, autoescape=True),
                    _METADATA.c.keywords.contains(term, autoescape=True),
                )
            )
    if license is not None:
        if license.lower() not in {name.lower() for name in KNOWN_LICENSES}:
            raise CatalogQueryError(
                "license", f"must be one of {', '.join(KNOWN_LICENSES)}, got {license!r}"
            )
        conditions.append(func.lower(_METADATA.c.license) == license.lower())
    if keyword is not None:
        normal = " ".join(keyword.lower().split())
        if not normal or "|" in normal or len(normal) > 50:
            raise CatalogQueryError("keyword", "must be 1-50 characters without '|'")
        conditions.append(_METADATA.c.keywords.contains(f"|{normal}|", autoescape=True))
    if owner is not None:
        if not is_address(owner):
            raise CatalogQueryError("owner", f"must be an address (0x + 40 hex digits): {owner!r}")
        conditions.append(_DATASETS.c.owner == to_checksum_address(owner))
    where = and_(*conditions) if conditions else None
    joined = _DATASETS.outerjoin(_METADATA, _METADATA.c.metadata_hash == _DATASETS.c.metadata_hash)
    count = select(func.count()).select_from(joined)
    page = (
        select(
            _DATASETS.c.dataset_id,
            _DATASETS.c.owner,
            _DATASETS.c.version,
            _DATASETS.c.metadata_hash,
            _DATASETS.c.metadata_uri,
            _METADATA.c.document,
        )
        .select_from(joined)
        .order_by(_DATASETS.c.dataset_id.desc())
        .limit(limit)
        .offset(offset)
    )
    if where is not None:
        count = count.where(where)
        page = page.where(where)
    with _reading(engine) as connection:
        total = int(connection.execute(count).scalar_one())
        rows = connection.execute(page).all()
    items = []
    for row in rows:
        # Checked against its hash when stored and when shown in detail; a page of hits skips
        # re-hashing (a third of a search's time).
        document = _document(row.document, row.metadata_hash, verify=False)
        items.append(
            DatasetSummary(
                dataset_id=int(row.dataset_id),
                owner=row.owner,
                version=int(row.version),
                metadata_hash=row.metadata_hash,
                metadata_uri=row.metadata_uri,
                title=document.title if document else None,
                license=document.license if document else None,
                publisher=document.publisher if document else None,
                keywords=list(document.keywords) if document else [],
                record_count=document.record_count if document else None,
            )
        )
    return SearchPage(total=total, limit=limit, offset=offset, items=items)


def dataset_detail(engine: Engine, dataset_id: int) -> DatasetDetail:
    """The catalog page of one dataset.

    Raises:
        CatalogQueryError: `dataset_id` is not 1 or more.
        DatasetNotFoundError: the index has no such dataset.
        DatabaseUnavailableError: the database cannot be read.
    """
    if dataset_id < 1:
        raise CatalogQueryError("dataset id", f"must be 1 or more, got {dataset_id}")
    with _reading(engine) as connection:
        head = connection.execute(
            select(_DATASETS, _METADATA.c.document)
            .select_from(
                _DATASETS.outerjoin(
                    _METADATA, _METADATA.c.metadata_hash == _DATASETS.c.metadata_hash
                )
            )
            .where(_DATASETS.c.dataset_id == dataset_id)
        ).one_or_none()
        if head is None:
            raise DatasetNotFoundError(
                f"dataset {dataset_id}",
                "check the id with `ledger dataset search`, or run `ledger index` to catch up",
            )
        version_rows = connection.execute(
            select(_VERSIONS, _METADATA.c.metadata_hash.label("known"))
            .select_from(
                _VERSIONS.outerjoin(
                    _METADATA, _METADATA.c.metadata_hash == _VERSIONS.c.metadata_hash
                )
            )
            .where(_VERSIONS.c.dataset_id == dataset_id)
            .order_by(_VERSIONS.c.version)
        ).all()
        usage = _usage(connection, engine, dataset_id)
    zero = "0x" + "00" * 32
    versions = [
        VersionInfo(
            version=int(r.version),
            commitment=r.commitment,
            contributors_root=r.contributors_root,
            schema_hash=r.schema_hash,
            metadata_hash=r.metadata_hash,
            metadata_uri=r.metadata_uri,
            previous_commitment=None if r.previous_commitment == zero else r.previous_commitment,
            block_number=int(r.block_number),
            tx_hash=r.tx_hash,
            block_time=r.block_time,
            has_metadata=r.known is not None,
        )
        for r in version_rows
    ]
    return DatasetDetail(
        dataset_id=int(head.dataset_id),
        owner=head.owner,
        owner_epoch=int(head.owner_epoch),
        owner_share_bps=int(head.owner_share_bps),
        version=int(head.version),
        registered_block=int(head.block_number),
        registered_tx=head.tx_hash,
        registered_at=head.block_time,
        updated_at=head.updated_at,
        metadata=_document(head.document, head.metadata_hash),
        versions=versions,
        usage=usage,
    )


def resolve_metadata_uri(engine: Engine, uri: str) -> MetadataDocument:
    """The document a ``ledger:metadata:0x<hash>`` URI names (checked to hash to it).

    Raises:
        CatalogQueryError: `uri` is not a ``ledger:metadata:`` URI.
        DatasetNotFoundError: this database holds no such document.
        DatabaseUnavailableError: the database cannot be read.
    """
    digest = parse_metadata_uri(uri)
    if digest is None:
        raise CatalogQueryError("uri", "must be ledger:metadata:0x followed by 64 hex digits")
    with _reading(engine) as connection:
        text = connection.execute(
            select(_METADATA.c.document).where(_METADATA.c.metadata_hash == digest)
        ).scalar_one_or_none()
    document = _document(text, digest)
    if document is None:
        raise DatasetNotFoundError(
            f"metadata document {digest}", "it was registered through another service"
        )
    return document


def _document(text: str | None, digest: str, *, verify: bool = True) -> MetadataDocument | None:
    if text is None:
        return None
    return MetadataDocument.from_json(text, expected_hash=digest if verify else None)


def _usage(connection: Connection, engine: Engine, dataset_id: int) -> UsageStats:
    by_dataset = _USAGE.c.dataset_id == dataset_id
    jobs, uses = connection.execute(
        select(
            func.count(distinct(_USAGE.c.job_id)), func.coalesce(func.sum(_USAGE.c.uses), 0)
        ).where(by_dataset)
    ).one()
    revenue: dict[str, int] = {}
    if is_postgresql(engine):
        epsilon = connection.execute(
            select(func.coalesce(func.sum(_USAGE.c.epsilon), 0)).where(by_dataset)
        ).scalar_one()
        for token, amount in connection.execute(
            select(_CAPTURES.c.token, func.sum(_CAPTURES.c.amount))
            .where(_CAPTURES.c.dataset_id == dataset_id)
            .group_by(_CAPTURES.c.token)
        ):
            revenue[token] = int(amount)
    else:
        # SQLite stores 256-bit values as padded text: add them up exactly in Python.
        epsilon = sum(
            int(e) for (e,) in connection.execute(select(_USAGE.c.epsilon).where(by_dataset))
        )
        for token, amount in connection.execute(
            select(_CAPTURES.c.token, _CAPTURES.c.amount).where(
                _CAPTURES.c.dataset_id == dataset_id
            )
        ):
            revenue[token] = revenue.get(token, 0) + int(amount)
    return UsageStats(jobs=int(jobs), uses=int(uses), epsilon_micro=int(epsilon), revenue=revenue)


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads, with database errors translated."""
    try:
        with engine.connect() as connection:
            yield connection
    except (OperationalError, ProgrammingError) as exc:
        raise _unavailable(engine, exc) from None


def _unavailable(engine: Engine, exc: OperationalError | ProgrammingError) -> Exception:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if re.search(r"no such table|does not exist", reason):
        reason += " (run `ledger index` to migrate and fill the catalog)"
    return DatabaseUnavailableError(redact(engine.url), reason)

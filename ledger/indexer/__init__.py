"""The event indexer: every contract event of a deployment into the database (``ledger.store``),
with a cursor, a confirmation depth and reorg rollback. See `ledger.indexer.service`."""

from ledger.indexer.service import (
    Indexer,
    IndexerOptions,
    IndexProgress,
    ProgressCallback,
    Rollback,
    RunReport,
)

__all__ = [
    "IndexProgress",
    "Indexer",
    "IndexerOptions",
    "ProgressCallback",
    "Rollback",
    "RunReport",
]

"""The event indexer: every contract event of a deployment into the database (``ledger.store``),
with a cursor, a confirmation depth and reorg rollback. See `ledger.indexer.service`."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
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

# Names load their module on first use, so that importing a submodule (the `ledger`
# command imports this package's `cli`) does not import web3, pandas, SQLAlchemy ...
_MODULES: Final[dict[str, str]] = {
    "IndexProgress": "ledger.indexer.service",
    "Indexer": "ledger.indexer.service",
    "IndexerOptions": "ledger.indexer.service",
    "ProgressCallback": "ledger.indexer.service",
    "Rollback": "ledger.indexer.service",
    "RunReport": "ledger.indexer.service",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

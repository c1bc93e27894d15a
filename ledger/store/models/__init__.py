"""The database tables (SQLModel): the indexer's own, and one module per contract."""

from __future__ import annotations

from sqlmodel import SQLModel

from ledger.store.models.base import CreatedRow, LoggedRow
from ledger.store.models.budget import BudgetReservation, PrivacyBudget  # noqa: F401 - registers
from ledger.store.models.chain import ChainEvent, IndexCursor, IndexedBlock
from ledger.store.models.grants import (
    CatalogAlgorithm,
    CatalogChange,
    GrantConsumption,
    GrantRecord,
    GrantStatus,
    NonceInvalidation,
    Revocation,
)
from ledger.store.models.jobs import OutboxEntry, PipelineJob  # noqa: F401 - registers
from ledger.store.models.metadata import DatasetMetadata
from ledger.store.models.provenance import ReceiptRow  # noqa: F401 - registers its tables
from ledger.store.models.registry import (
    Dataset,
    DatasetVersion,
    Executor,
    ExecutorChange,
    OwnershipEpoch,
    RevenueSplit,
    Transfer,
)
from ledger.store.models.settlement import SettlementEpoch  # noqa: F401 - registers its tables
from ledger.store.models.usage import BatchAnchor, JobRecord, UsageRecord
from ledger.store.models.vault import Capture, Claim, EpochRecord, Escrow, EscrowStatus, Refund

__all__ = [
    "DERIVED_TABLES",
    "BatchAnchor",
    "Capture",
    "CatalogAlgorithm",
    "CatalogChange",
    "ChainEvent",
    "Claim",
    "CreatedRow",
    "Dataset",
    "DatasetMetadata",
    "DatasetVersion",
    "EpochRecord",
    "Escrow",
    "EscrowStatus",
    "Executor",
    "ExecutorChange",
    "GrantConsumption",
    "GrantRecord",
    "GrantStatus",
    "IndexCursor",
    "IndexedBlock",
    "JobRecord",
    "LoggedRow",
    "NonceInvalidation",
    "OwnershipEpoch",
    "Refund",
    "RevenueSplit",
    "Revocation",
    "Transfer",
    "UsageRecord",
    "metadata",
]

#: Every table derived from events (everything but events, cursor and blocks).
DERIVED_TABLES: tuple[type[SQLModel], ...] = (
    Dataset,
    DatasetVersion,
    OwnershipEpoch,
    Transfer,
    RevenueSplit,
    ExecutorChange,
    Executor,
    GrantRecord,
    GrantConsumption,
    Revocation,
    NonceInvalidation,
    CatalogChange,
    CatalogAlgorithm,
    JobRecord,
    UsageRecord,
    BatchAnchor,
    Escrow,
    Capture,
    Refund,
    EpochRecord,
    Claim,
)

#: The metadata of every table above (what the migrations must create).
metadata = SQLModel.metadata

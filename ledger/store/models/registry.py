"""DataRegistry: datasets, their versions, owners, revenue splits and allowed executors."""

from __future__ import annotations

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from ledger.store.models.base import ADDRESS_LENGTH, HASH_LENGTH, CreatedRow, LoggedRow
from ledger.store.types import UInt256

__all__ = [
    "Dataset",
    "DatasetBase",
    "DatasetVersion",
    "Executor",
    "ExecutorChange",
    "OwnershipEpoch",
    "RevenueSplit",
    "Transfer",
]


class DatasetBase(SQLModel):
    """A dataset (data asset token) as it stands: latest version, owner, revenue split."""

    dataset_id: int = Field(primary_key=True, sa_type=UInt256, ge=1)
    owner: str = Field(max_length=ADDRESS_LENGTH, index=True)
    owner_epoch: int = Field(ge=0)
    owner_share_bps: int = Field(ge=0, le=10_000)
    version: int = Field(ge=1)
    commitment: str = Field(max_length=HASH_LENGTH)
    contributors_root: str = Field(max_length=HASH_LENGTH)
    schema_hash: str = Field(max_length=HASH_LENGTH)
    metadata_hash: str = Field(max_length=HASH_LENGTH)
    # As emitted: the chain puts no bound on its length.
    metadata_uri: str = Field(sa_type=Text)


class Dataset(DatasetBase, CreatedRow, table=True):
    """Created by ``DatasetRegistered``; kept current from the version, owner and split tables."""

    __tablename__ = "datasets"


class DatasetVersion(LoggedRow, table=True):
    """One version of a dataset (version 1 from ``DatasetRegistered``, then
    ``DatasetVersionPublished``)."""

    __tablename__ = "dataset_versions"

    dataset_id: int = Field(sa_type=UInt256, index=True)
    version: int = Field(ge=1)
    commitment: str = Field(max_length=HASH_LENGTH)
    contributors_root: str = Field(max_length=HASH_LENGTH)
    schema_hash: str = Field(max_length=HASH_LENGTH)
    metadata_hash: str = Field(max_length=HASH_LENGTH)
    previous_commitment: str = Field(max_length=HASH_LENGTH)
    metadata_uri: str = Field(sa_type=Text)


class OwnershipEpoch(LoggedRow, table=True):
    """An ownership epoch of a dataset (epoch 0 from registration, then ``OwnerEpochStarted``)."""

    __tablename__ = "ownership_epochs"

    dataset_id: int = Field(sa_type=UInt256, index=True)
    owner_epoch: int = Field(ge=0)
    owner: str = Field(max_length=ADDRESS_LENGTH, index=True)


class Transfer(LoggedRow, table=True):
    """An ERC-721 ``Transfer`` of a data asset, the mint included."""

    __tablename__ = "transfers"

    dataset_id: int = Field(sa_type=UInt256, index=True)
    from_address: str = Field(max_length=ADDRESS_LENGTH)
    to_address: str = Field(max_length=ADDRESS_LENGTH)


class RevenueSplit(LoggedRow, table=True):
    """The owner's revenue share of a dataset (from registration, then ``RevenueSplitChanged``)."""

    __tablename__ = "revenue_splits"

    dataset_id: int = Field(sa_type=UInt256, index=True)
    owner_share_bps: int = Field(ge=0, le=10_000)


class ExecutorChange(LoggedRow, table=True):
    """An ``ExecutorSet`` event: an executor allowed or disallowed in one ownership epoch."""

    __tablename__ = "executor_changes"

    dataset_id: int = Field(sa_type=UInt256, index=True)
    executor: str = Field(max_length=ADDRESS_LENGTH)
    owner_epoch: int = Field(ge=0)
    allowed: bool


class Executor(CreatedRow, table=True):
    """Whether an executor is allowed on a dataset in an ownership epoch, after the latest
    ``ExecutorSet``; approvals of past epochs have lapsed (compare with the dataset's epoch)."""

    __tablename__ = "executors"

    dataset_id: int = Field(primary_key=True, sa_type=UInt256)
    executor: str = Field(primary_key=True, max_length=ADDRESS_LENGTH, index=True)
    owner_epoch: int = Field(primary_key=True, ge=0)
    allowed: bool

"""Lineage over the index: where a result came from, and every use of a dataset.

`lineage` follows a job id or a result hash back: dataset versions -> grants -> algorithm ->
job -> result. On-chain facts (the job record, each grant's terms and part in the job, version
commitments, owners, batch anchors) come from the event index; off-chain facts only the
executor knows (result, runtime and parameters hashes, times, suppression threshold) come from
its stored receipts. Either source alone is enough to answer; both together give everything.

`dataset_uses` lists every recorded use of a dataset: who, purpose, when, privacy spent and
the revenue captured for it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlmodel import Session, col, select

from ledger.provenance.errors import LineageNotFoundError, LookupKeyError
from ledger.provenance.receipt import SignedReceipt
from ledger.provenance.store import find_receipt
from ledger.store.models import (
    BatchAnchor,
    Dataset,
    DatasetVersion,
    GrantRecord,
    JobRecord,
    UsageRecord,
)
from ledger.store.models.provenance import ReceiptRow

__all__ = [
    "DatasetUse",
    "DatasetVersionNode",
    "GrantNode",
    "Lineage",
    "RecordNode",
    "dataset_uses",
    "lineage",
]

_HASH: Final = re.compile(r"0x[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class DatasetVersionNode:
    """A dataset version a job computed on; `owner` is the grantor of the grant used on it."""

    dataset_id: int
    version: int
    commitment: str | None
    previous_commitment: str | None
    owner: str | None
    # False when the receipt's commitment differs from the registry's (never for honest runs).
    commitment_matches: bool | None = None


@dataclass(frozen=True, slots=True)
class GrantNode:
    """A grant a job used: its terms (from the index) and what the job consumed of it."""

    grant_id: str
    dataset_id: int
    dataset_version: int
    grantor: str | None
    grantee: str | None
    purpose: str | None
    algorithm_hash: str | None
    uses: int | None
    epsilon: int | None
    token: str | None
    price: int | None
    fee: int | None


@dataclass(frozen=True, slots=True)
class RecordNode:
    """Where a job or batch landed on chain."""

    block_number: int
    tx_hash: str
    block_time: datetime


@dataclass(frozen=True, slots=True)
class Lineage:
    """A job's lineage: dataset versions -> grants -> algorithm -> job -> result."""

    job_id: str
    executor: str | None
    consumer: str | None
    purpose: str | None
    algorithm_hash: str | None
    receipt_hash: str | None
    result_hash: str | None
    runtime_hash: str | None
    parameters_hash: str | None
    suppression_k: int | None
    requested_at: datetime | None
    completed_at: datetime | None
    recorded: RecordNode | None
    batch_root: str | None
    batch_anchored: RecordNode | None
    datasets: list[DatasetVersionNode] = field(default_factory=list)
    grants: list[GrantNode] = field(default_factory=list)
    receipt: SignedReceipt | None = None

    def to_json(self) -> dict[str, Any]:
        """The lineage as a JSON object (times ISO-8601, the receipt as its file would be)."""
        data: dict[str, Any] = _jsonable({k: v for k, v in asdict(self).items() if k != "receipt"})
        data["receipt"] = None if self.receipt is None else self.receipt.model_dump(mode="json")
        return data


@dataclass(frozen=True, slots=True)
class DatasetUse:
    """One recorded use of a dataset; `revenue` is what the dataset earned (price - fee)."""

    job_id: str
    grant_id: str
    dataset_version: int
    consumer: str | None
    purpose: str | None
    executor: str | None
    algorithm_hash: str | None
    when: datetime
    block_number: int
    uses: int
    epsilon: int
    token: str
    price: int
    fee: int
    revenue: int
    result_hash: str | None

    def to_json(self) -> dict[str, Any]:
        """The use as a JSON object (amounts as decimal strings: they exceed 2^53)."""
        data: dict[str, Any] = _jsonable(asdict(self))
        for key in ("price", "fee", "revenue"):
            data[key] = str(getattr(self, key))
        return data


def lineage(session: Session, key: str) -> Lineage:
    """The lineage of a job, given its job id, receipt hash or result hash (``0x`` hex).

    Raises:
        LookupKeyError: `key` is not a 32-byte 0x hash.
        LineageNotFoundError: neither the index nor the stored receipts know `key`.
    """
    key = key.lower()
    if not _HASH.fullmatch(key):
        raise LookupKeyError("job id, receipt hash or result hash")
    signed = find_receipt(session, key)
    job_id = signed.receipt.job_id if signed is not None else key
    job = session.exec(select(JobRecord).where(col(JobRecord.job_id) == job_id)).first()
    if job is None and signed is None:
        job = session.exec(select(JobRecord).where(col(JobRecord.receipt_hash) == key)).first()
        if job is None:
            raise LineageNotFoundError(key)
        job_id = job.job_id
    receipt = signed.receipt if signed is not None else None
    uses = list(
        session.exec(
            select(UsageRecord)
            .where(col(UsageRecord.job_id) == job_id)
            .order_by(col(UsageRecord.block_number), col(UsageRecord.log_index))
        )
    )
    use_by_grant = {use.grant_id: use for use in uses}
    grant_ids = list(use_by_grant)
    if receipt is not None:
        grant_ids += [g for g in receipt.grant_ids if g not in use_by_grant]
    terms = {
        row.grant_id: row
        for row in session.exec(select(GrantRecord).where(col(GrantRecord.grant_id).in_(grant_ids)))
    }
    entries = {entry.grant_id: entry for entry in receipt.datasets} if receipt else {}
    grants: list[GrantNode] = []
    for grant_id in grant_ids:
        use, term, entry = use_by_grant.get(grant_id), terms.get(grant_id), entries.get(grant_id)
        dataset_id = use.dataset_id if use else entry.dataset_id if entry else term.dataset_id  # type: ignore[union-attr]
        version = use.dataset_version if use else entry.version if entry else 0
        grants.append(
            GrantNode(
                grant_id=grant_id,
                dataset_id=dataset_id,
                dataset_version=version,
                grantor=term.grantor if term else None,
                grantee=term.grantee if term else None,
                purpose=term.purpose if term else None,
                algorithm_hash=term.algorithm_hash if term else None,
                uses=use.uses if use else entry.uses if entry else None,
                epsilon=use.epsilon if use else entry.epsilon_spent if entry else None,
                token=use.token if use else None,
                price=use.amount if use else None,
                fee=use.fee if use else None,
            )
        )
    datasets = [_version_node(session, g, entries.get(g.grant_id)) for g in grants]
    batch_root = None
    batch_anchored = None
    if signed is not None and signed.batch is not None:
        batch_root = signed.batch.root
    elif receipt is not None:
        row = session.get(ReceiptRow, signed.hash) if signed else None
        batch_root = row.batch_root if row else None
    if batch_root is not None:
        anchor = session.exec(
            select(BatchAnchor).where(col(BatchAnchor.root) == batch_root)
        ).first()
        if anchor is not None:
            batch_anchored = RecordNode(anchor.block_number, anchor.tx_hash, anchor.block_time)
    return Lineage(
        job_id=job_id,
        executor=job.executor if job else receipt.executor if receipt else None,
        consumer=job.consumer if job else receipt.consumer if receipt else None,
        purpose=job.purpose if job else receipt.purpose if receipt else None,
        algorithm_hash=job.algorithm_hash if job else receipt.algorithm_hash if receipt else None,
        receipt_hash=job.receipt_hash if job else signed.hash if signed else None,
        result_hash=receipt.result_hash if receipt else None,
        runtime_hash=receipt.runtime_hash if receipt else None,
        parameters_hash=receipt.parameters_hash if receipt else None,
        suppression_k=receipt.suppression_k if receipt else None,
        requested_at=receipt.requested_at if receipt else None,
        completed_at=receipt.completed_at if receipt else None,
        recorded=RecordNode(job.block_number, job.tx_hash, job.block_time) if job else None,
        batch_root=batch_root,
        batch_anchored=batch_anchored,
        datasets=datasets,
        grants=grants,
        receipt=signed,
    )


def dataset_uses(session: Session, dataset_id: int) -> list[DatasetUse]:
    """Every recorded use of dataset `dataset_id`, oldest first: consumer, purpose, when,
    privacy spent (micro-epsilon) and revenue captured (price, platform fee, net)."""
    rows = session.exec(
        select(UsageRecord, JobRecord, ReceiptRow)
        .join(JobRecord, col(JobRecord.job_id) == col(UsageRecord.job_id), isouter=True)
        .join(ReceiptRow, col(ReceiptRow.job_id) == col(UsageRecord.job_id), isouter=True)
        .where(col(UsageRecord.dataset_id) == dataset_id)
        .order_by(col(UsageRecord.block_number), col(UsageRecord.log_index))
    )
    result: list[DatasetUse] = []
    for use, job, stored in rows:
        result.append(
            DatasetUse(
                job_id=use.job_id,
                grant_id=use.grant_id,
                dataset_version=use.dataset_version,
                consumer=job.consumer if job else None,
                purpose=job.purpose if job else None,
                executor=job.executor if job else None,
                algorithm_hash=job.algorithm_hash if job else None,
                when=use.block_time,
                block_number=use.block_number,
                uses=use.uses,
                epsilon=use.epsilon,
                token=use.token,
                price=use.amount,
                fee=use.fee,
                revenue=use.amount - use.fee,
                result_hash=stored.result_hash if stored else None,
            )
        )
    return result


def _version_node(session: Session, grant: GrantNode, entry: Any) -> DatasetVersionNode:
    version = session.exec(
        select(DatasetVersion).where(
            col(DatasetVersion.dataset_id) == grant.dataset_id,
            col(DatasetVersion.version) == grant.dataset_version,
        )
    ).first()
    owner = grant.grantor
    if owner is None:
        dataset = session.get(Dataset, grant.dataset_id)
        owner = dataset.owner if dataset else None
    chain_commitment = version.commitment if version else None
    receipt_commitment = entry.commitment if entry is not None else None
    matches = (
        None
        if chain_commitment is None or receipt_commitment is None
        else chain_commitment == receipt_commitment
    )
    previous = version.previous_commitment if version else None
    return DatasetVersionNode(
        dataset_id=grant.dataset_id,
        version=grant.dataset_version,
        commitment=chain_commitment or receipt_commitment,
        previous_commitment=None if previous == "0x" + "00" * 32 else previous,
        owner=owner,
        commitment_matches=matches,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53 - 1:
        return str(value)
    return value

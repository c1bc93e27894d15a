"""Provenance: receipts (RFC 8785 JSON, keccak256, executor-signed), Merkle batches anchored on
``UsageLedger``, lineage queries over the index, W3C PROV-JSON export, and verification of a
result and its receipt against the chain with nothing but a JSON-RPC endpoint.

What the job pipeline calls, in order::

    heads = previous_receipts(session, dataset_ids)          # the hash chain per dataset
    receipt = Receipt.of(..., datasets=[DatasetEntry(..., previous_receipt=heads[id])])
    signed = sign_receipt(receipt, executor_key)
    save_receipt(session, signed, batched=...)                # same transaction as the job step
    usage.functions.recordUsage(job_tuple(signed), uses)      # per job (consumes, captures)
    ReceiptBatcher(engine, sender, usage).flush()             # batched mode: anchor roots
"""

from __future__ import annotations

from ledger.provenance.batcher import AnchoredBatch, BatchPolicy, ReceiptBatcher, inclusion_of
from ledger.provenance.canonical import (
    canonical_json,
    parameters_hash,
    result_hash,
    result_hash_of_bytes,
)
from ledger.provenance.errors import (
    LineageNotFoundError,
    ProvenanceError,
    ReceiptChainConflictError,
    ReceiptConflictError,
    ReceiptInvalidError,
    ReceiptNotFoundError,
    ResultInvalidError,
)
from ledger.provenance.lineage import DatasetUse, Lineage, dataset_uses, lineage
from ledger.provenance.prov_export import prov_document, prov_json
from ledger.provenance.receipt import (
    BatchInclusion,
    ContractAddresses,
    DatasetEntry,
    Receipt,
    SignedReceipt,
    job_tuple,
    recover_signer,
    sign_receipt,
    utc_seconds,
)
from ledger.provenance.store import (
    find_receipt,
    previous_receipts,
    receipt_by_hash,
    receipt_by_job,
    receipt_by_result,
    save_receipt,
)
from ledger.provenance.verify import Rejection, Verification, verify_result

__all__ = [
    "AnchoredBatch",
    "BatchInclusion",
    "BatchPolicy",
    "ContractAddresses",
    "DatasetEntry",
    "DatasetUse",
    "Lineage",
    "LineageNotFoundError",
    "ProvenanceError",
    "Receipt",
    "ReceiptBatcher",
    "ReceiptChainConflictError",
    "ReceiptConflictError",
    "ReceiptInvalidError",
    "ReceiptNotFoundError",
    "Rejection",
    "ResultInvalidError",
    "SignedReceipt",
    "Verification",
    "canonical_json",
    "dataset_uses",
    "find_receipt",
    "inclusion_of",
    "job_tuple",
    "lineage",
    "parameters_hash",
    "previous_receipts",
    "prov_document",
    "prov_json",
    "receipt_by_hash",
    "receipt_by_job",
    "receipt_by_result",
    "recover_signer",
    "result_hash",
    "result_hash_of_bytes",
    "save_receipt",
    "sign_receipt",
    "utc_seconds",
    "verify_result",
]

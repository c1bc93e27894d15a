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

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ledger.provenance.batcher import AnchoredBatch, BatchPolicy, ReceiptBatcher, inclusion_of
    from ledger.provenance.canonical import (
        canonical_json,
        parameters_hash,
        result_hash,
        result_hash_of_bytes,
    )
    from ledger.provenance.errors import (
        LineageNotFoundError,
        LookupKeyError,
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
    "LookupKeyError",
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

# Names load their module on first use, so `ledger verify` does not import the database,
# PROV and batching code it does not need (start-up time of a third party's command).
_MODULES: Final[dict[str, str]] = {
    "AnchoredBatch": "ledger.provenance.batcher",
    "BatchInclusion": "ledger.provenance.receipt",
    "BatchPolicy": "ledger.provenance.batcher",
    "ContractAddresses": "ledger.provenance.receipt",
    "DatasetEntry": "ledger.provenance.receipt",
    "DatasetUse": "ledger.provenance.lineage",
    "Lineage": "ledger.provenance.lineage",
    "LineageNotFoundError": "ledger.provenance.errors",
    "LookupKeyError": "ledger.provenance.errors",
    "ProvenanceError": "ledger.provenance.errors",
    "Receipt": "ledger.provenance.receipt",
    "ReceiptBatcher": "ledger.provenance.batcher",
    "ReceiptChainConflictError": "ledger.provenance.errors",
    "ReceiptConflictError": "ledger.provenance.errors",
    "ReceiptInvalidError": "ledger.provenance.errors",
    "ReceiptNotFoundError": "ledger.provenance.errors",
    "Rejection": "ledger.provenance.verify",
    "ResultInvalidError": "ledger.provenance.errors",
    "SignedReceipt": "ledger.provenance.receipt",
    "Verification": "ledger.provenance.verify",
    "canonical_json": "ledger.provenance.canonical",
    "dataset_uses": "ledger.provenance.lineage",
    "find_receipt": "ledger.provenance.store",
    "inclusion_of": "ledger.provenance.batcher",
    "job_tuple": "ledger.provenance.receipt",
    "lineage": "ledger.provenance.lineage",
    "parameters_hash": "ledger.provenance.canonical",
    "previous_receipts": "ledger.provenance.store",
    "prov_document": "ledger.provenance.prov_export",
    "prov_json": "ledger.provenance.prov_export",
    "receipt_by_hash": "ledger.provenance.store",
    "receipt_by_job": "ledger.provenance.store",
    "receipt_by_result": "ledger.provenance.store",
    "recover_signer": "ledger.provenance.receipt",
    "result_hash": "ledger.provenance.canonical",
    "result_hash_of_bytes": "ledger.provenance.canonical",
    "save_receipt": "ledger.provenance.store",
    "sign_receipt": "ledger.provenance.receipt",
    "utc_seconds": "ledger.provenance.receipt",
    "verify_result": "ledger.provenance.verify",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

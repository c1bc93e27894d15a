"""Errors of receipts, batches, lineage and verification.

    LedgerError
    └── ProvenanceError               a receipt, batch or lineage operation failed
        ├── ReceiptInvalidError       a receipt or signed receipt breaks a rule (also a ValueError)
        ├── ResultInvalidError        a result is not canonical-hashable JSON (also a ValueError)
        ├── ReceiptConflictError      the job has another receipt, or the hash is stored differently
        ├── ReceiptChainConflictError a receipt's previous hash is not its dataset's current head
        ├── ReceiptNotFoundError      no stored receipt has that hash, job id or result hash
        ├── LookupKeyError            a lookup key is not a 32-byte 0x hash (also a ValueError)
        └── LineageNotFoundError      neither the index nor the receipts know the job or result

A rejected verification is not an error: `ledger.provenance.verify.verify_result` returns a
`Verification` with a reason. These are raised for bad input and for store conflicts.
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = [
    "LineageNotFoundError",
    "LookupKeyError",
    "ProvenanceError",
    "ReceiptChainConflictError",
    "ReceiptConflictError",
    "ReceiptInvalidError",
    "ReceiptNotFoundError",
    "ResultInvalidError",
]


class ProvenanceError(LedgerError):
    """Raised when a receipt, batch or lineage operation fails."""


class ReceiptInvalidError(ProvenanceError, ValueError):
    """Raised when a receipt or signed receipt file breaks a rule; names the field and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"receipt field {field!r}: {rule}")


class ResultInvalidError(ProvenanceError, ValueError):
    """Raised when a result cannot be hashed: not UTF-8 JSON, or outside RFC 8785's domain."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        super().__init__(f"result: {rule}")


class ReceiptConflictError(ProvenanceError):
    """Raised when storing a receipt whose job already has another receipt (or whose hash is
    stored with other content): a job has exactly one receipt."""

    def __init__(self, job_id: str, stored: str, offered: str) -> None:
        self.job_id = job_id
        self.stored = stored
        self.offered = offered
        super().__init__(
            f"job {job_id} already has receipt {stored}; refusing a second receipt {offered}"
        )


class ReceiptChainConflictError(ProvenanceError):
    """Raised when a receipt's previous hash for a dataset is not that dataset's latest stored
    receipt (another receipt was stored meanwhile): rebuild it on the new head and retry."""

    def __init__(self, dataset_id: int, expected: str | None, offered: str | None) -> None:
        self.dataset_id = dataset_id
        self.expected = expected
        self.offered = offered
        super().__init__(
            f"dataset {dataset_id}: the receipt's previous_receipt is {offered or 'null'}, but the "
            f"dataset's latest stored receipt is {expected or 'none'}; rebuild the receipt on "
            "the current head (previous_receipts) and store it again"
        )


class ReceiptNotFoundError(ProvenanceError, LookupError):
    """Raised when no stored receipt matches; `key` names what was looked up."""

    def __init__(self, key: str, value: str) -> None:
        self.key = key
        self.value = value
        super().__init__(f"no stored receipt with {key} {value}")


class LookupKeyError(ProvenanceError, ValueError):
    """Raised when a job id, receipt hash or result hash to look up is not a 32-byte 0x hash."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"{field}: must be 0x followed by 64 hex digits (a 32-byte hash)")


class LineageNotFoundError(ProvenanceError, LookupError):
    """Raised when neither the event index nor the stored receipts know a job or result hash."""

    def __init__(self, value: str) -> None:
        self.value = value
        super().__init__(
            f"{value} is neither a recorded job id nor the result hash of a stored receipt "
            "(is the index up to date? run `ledger index`)"
        )

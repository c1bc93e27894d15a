"""Errors of the data vault; every one names the field (file, column, key, line) and the rule.

Messages and attributes never carry a cell value of the input: an identifier could be in it.

    VaultError (LedgerError)
    ├── SchemaError               the schema file is unreadable or breaks a rule (names the key)
    ├── InvalidNameError          a dataset name does not match ^[a-z0-9][a-z0-9_-]{0,62}$
    ├── SourceError               the input file cannot be read as a table
    │   ├── EmptySourceError      the file is empty or has a header and no rows
    │   ├── EncodingError         the header is not UTF-8
    │   └── ColumnsMismatchError  columns missing from or not declared in the schema
    ├── ValidationFailedError     rows break the schema's rules (reject mode); carries the report
    ├── DatasetNotFoundError      no such dataset or version in the vault (also a LookupError)
    ├── RowNotFoundError          no such row or record id in a version (also a LookupError)
    ├── PayoutsError              the payouts file is malformed (names the line and the rule)
    ├── ProofError                a proof file is malformed or does not verify
    └── VaultBusyError            another ingest of the same dataset holds its lock
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ledger.errors import LedgerError

__all__ = [
    "ColumnsMismatchError",
    "DatasetNotFoundError",
    "EmptySourceError",
    "EncodingError",
    "InvalidNameError",
    "PayoutsError",
    "ProofError",
    "RowNotFoundError",
    "SchemaError",
    "SourceError",
    "ValidationFailedError",
    "VaultBusyError",
    "VaultError",
]


class VaultError(LedgerError):
    """Raised when the data vault cannot do what was asked."""


class SchemaError(VaultError, ValueError):
    """Raised when a schema file is unreadable or breaks a rule; `field` is the key's path
    (e.g. ``columns[3].scale``)."""

    def __init__(self, field: str, rule: str, *, path: Path | None = None) -> None:
        self.field = field
        self.rule = rule
        self.path = path
        where = f"schema {path}: " if path else "schema: "
        super().__init__(f"{where}{field}: {rule}")


class InvalidNameError(VaultError, ValueError):
    """Raised when a dataset name is not ``^[a-z0-9][a-z0-9_-]{0,62}$``."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"dataset name {name!r}: must be 1-63 characters of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )


class SourceError(VaultError):
    """Raised when the input file cannot be read as a table; `reason` says why."""

    def __init__(self, path: Path, reason: str, *, line: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        at = f" line {line}" if line is not None else ""
        super().__init__(f"input {path.name}{at}: {reason}")


class EmptySourceError(SourceError, ValueError):
    """Raised when the input file is empty, or holds a header and no rows."""

    def __init__(self, path: Path, reason: str = "the file is empty (no header, no rows)") -> None:
        super().__init__(path, reason)


class EncodingError(SourceError, ValueError):
    """Raised when the input's header is not UTF-8 (bad cells are row errors of rule
    ``encoding``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, "the header is not valid UTF-8 (files must be UTF-8)", line=1)


class ColumnsMismatchError(SourceError, ValueError):
    """Raised when the input's columns are not the schema's: `missing` are declared but absent,
    `extra` are present but not declared, `duplicated` appear twice in the header."""

    def __init__(
        self,
        path: Path,
        *,
        missing: list[str],
        extra: list[str],
        duplicated: list[str] | None = None,
    ) -> None:
        self.missing = missing
        self.extra = extra
        self.duplicated = duplicated or []
        parts = []
        if missing:
            parts.append(f"missing columns {', '.join(missing)}")
        if extra:
            parts.append(f"columns not in the schema {', '.join(extra)}")
        if self.duplicated:
            parts.append(f"repeated columns {', '.join(self.duplicated)}")
        super().__init__(path, "; ".join(parts) + " (columns must be exactly the schema's)")


class ValidationFailedError(VaultError, ValueError):
    """Raised in reject mode when rows break the schema's rules; `report` is the validation
    report (counts per rule, first offending lines and columns; no values)."""

    def __init__(self, name: str, counts: Mapping[str, int], report: dict[str, object]) -> None:
        self.name = name
        self.counts = dict(counts)
        self.report = report
        shown = ", ".join(f"{rule}: {n}" for rule, n in sorted(self.counts.items()))
        first = report.get("offending") or []
        where = ""
        if isinstance(first, list) and first:
            f0 = first[0]
            where = f"; first at line {f0['line']} column {f0['column']!r} ({f0['rule']})"
        super().__init__(
            f"dataset {name!r}: rows break the schema ({shown}){where}; nothing was written "
            "(fix the file, or pass --on-error quarantine to drop bad rows)"
        )


class DatasetNotFoundError(VaultError, LookupError):
    """Raised when a dataset, or a version of it, is not in the vault."""

    def __init__(self, name: str, version: int | None = None) -> None:
        self.name = name
        self.version = version
        what = f"dataset {name!r}" + (f" version {version}" if version is not None else "")
        super().__init__(f"{what} is not in the vault; `ledger dataset list` shows what is")


class RowNotFoundError(VaultError, LookupError):
    """Raised when a row index is out of range, or a record id is not in a version."""

    def __init__(self, name: str, version: int, what: str, rows: int) -> None:
        self.name = name
        self.version = version
        self.what = what
        self.rows = rows
        super().__init__(f"dataset {name!r} v{version} ({rows} rows) has no {what}")


class PayoutsError(VaultError, ValueError):
    """Raised when the payouts file is malformed; names the line, the column and the rule."""

    def __init__(self, path: Path, rule: str, *, line: int | None = None) -> None:
        self.path = path
        self.rule = rule
        self.line = line
        at = f" line {line}" if line is not None else ""
        super().__init__(f"payouts {path.name}{at}: {rule}")


class ProofError(VaultError, ValueError):
    """Raised when a proof document is malformed (`field` names the part) or does not verify."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"proof {field}: {rule}")


class VaultBusyError(VaultError):
    """Raised when another ingest of the same dataset is running (its lock is held)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"dataset {name!r}: another ingest is running; try again when it ends")

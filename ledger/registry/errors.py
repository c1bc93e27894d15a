"""Errors of the registry: bad metadata, a manifest that does not check out, registration state.

LedgerError
└── RegistryError                 registering, versioning or finding a dataset failed
    ├── MetadataError             a FAIR metadata field breaks a rule (also a ValueError)
    ├── DatasetNameError          a dataset name breaks the naming rule (also a ValueError)
    ├── OwnerShareError           the owner share is not 0..10,000 basis points (ValueError)
    ├── ManifestError             a vault version's manifest is missing, malformed or tampered
    ├── VersionSequenceError      a version does not follow the one before it
    ├── RegistrationStateError    registration.json and the chain disagree, or a send is pending
    ├── CatalogQueryError         a search parameter breaks a rule (also a ValueError)
    └── DatasetNotFoundError      no such dataset (vault or catalog; also a LookupError)
"""

from __future__ import annotations

from pathlib import Path

from ledger.errors import LedgerError

__all__ = [
    "CatalogQueryError",
    "DatasetNameError",
    "DatasetNotFoundError",
    "ManifestError",
    "MetadataError",
    "NotOwnerError",
    "OwnerShareError",
    "RegistrationStateError",
    "RegistryArgumentError",
    "RegistryError",
    "VersionSequenceError",
]


class RegistryError(LedgerError):
    """Raised when registering, versioning or finding a dataset fails."""


class MetadataError(RegistryError, ValueError):
    """Raised when a FAIR metadata field breaks a rule; names the field and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"metadata field {field!r}: {rule}")


class DatasetNameError(RegistryError, ValueError):
    """Raised when a dataset name is not ``^[a-z0-9][a-z0-9_-]{0,62}$``."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"dataset name {name!r} must be 1-63 characters of a-z, 0-9, _ and -, "
            "starting with a letter or digit"
        )


class OwnerShareError(RegistryError, ValueError):
    """Raised when the owner's revenue share is outside 0..10,000 basis points."""

    def __init__(self, value: int) -> None:
        self.value = value
        super().__init__(
            f"--owner-share must be 0..10000 basis points (10000 = 100% to the owner), got {value}"
        )


class ManifestError(RegistryError):
    """Raised when a vault version's manifest is missing, malformed, or does not match its
    files; `field` names what failed. Nothing is sent when this is raised."""

    def __init__(self, path: Path, field: str, reason: str) -> None:
        self.path = path
        self.field = field
        self.reason = reason
        super().__init__(
            f"manifest {path}: {field}: {reason}; the vault version was changed after ingest or "
            "is incomplete: ingest it again (`ledger dataset ingest`)"
        )


class VersionSequenceError(RegistryError):
    """Raised when a version does not follow the one before it (number or previous link)."""

    def __init__(self, name: str, version: int, reason: str) -> None:
        self.name = name
        self.version = version
        self.reason = reason
        super().__init__(f"dataset {name!r} version {version}: {reason}")


class RegistrationStateError(RegistryError):
    """Raised when registration.json and the chain disagree, or an earlier send is pending."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class DatasetNotFoundError(RegistryError, LookupError):
    """Raised when a dataset is not in the vault, not registered, or not in the catalog."""

    def __init__(self, what: str, hint: str) -> None:
        self.what = what
        self.hint = hint
        super().__init__(f"{what} not found; {hint}")


class CatalogQueryError(RegistryError, ValueError):
    """Raised when a catalog search parameter breaks a rule; names the parameter."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"catalog search {field}: {rule}")


class NotOwnerError(RegistryError, PermissionError):
    """Raised when the owner key's account does not own the dataset it acts on."""

    def __init__(self, dataset_id: int, owner: str, caller: str) -> None:
        self.dataset_id = dataset_id
        self.owner = owner
        self.caller = caller
        super().__init__(
            f"dataset {dataset_id} is owned by {owner}, not by {caller}: "
            "set LEDGER_OWNER_KEY to the owner's key"
        )


class RegistryArgumentError(RegistryError, ValueError):
    """Raised when an argument of a registry operation breaks a rule; names the field."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")

"""What the registry keeps beside a dataset in the vault: ``registration.json`` and the metadata
document of each version.

``datasets/<name>/registration.json`` (written atomically: temporary file, fsync, rename)::

    {"format": "ledger.registry.registration/1", "name": ..., "chain_id": ..., "registry": ...,
     "owner": ..., "dataset_id": int | null,
     "versions": {"1": {"commitment", "metadata_hash", "metadata_uri", "tx_hash", "block_number",
                        "block_hash"}, ...},
     "pending": {"version", "commitment", "metadata_hash", "nonce", "from_block"} | null}

`pending` is the intent recorded before a transaction is sent: the version, its commitment and
the owner's nonce at that moment. A run that finds it knows a send may have happened and looks on
the chain (events from `from_block`, and whether that nonce was used) before sending again.

``datasets/<name>/metadata/v<N>.json`` holds the canonical metadata document of version N (the
version directories themselves are immutable once ingested).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.registry.errors import RegistrationStateError
from ledger.registry.metadata import MetadataDocument

__all__ = [
    "REGISTRATION_FORMAT",
    "PendingSend",
    "Registration",
    "RegisteredVersion",
    "load_registration",
    "metadata_path",
    "registration_path",
    "save_registration",
    "write_atomic",
    "write_metadata_file",
]

REGISTRATION_FORMAT: Final = "ledger.registry.registration/1"


class RegisteredVersion(BaseModel):
    """A version confirmed on chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    commitment: str
    metadata_hash: str
    metadata_uri: str
    tx_hash: str
    block_number: Annotated[int, Field(ge=0)]
    block_hash: str


class PendingSend(BaseModel):
    """The intent recorded just before sending a registration or version transaction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[int, Field(ge=1)]
    commitment: str
    metadata_hash: str
    nonce: Annotated[int, Field(ge=0)]
    from_block: Annotated[int, Field(ge=0)]


class Registration(BaseModel):
    """``registration.json`` of one dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = REGISTRATION_FORMAT
    name: str
    chain_id: int
    registry: str
    owner: str
    dataset_id: int | None = None
    versions: dict[str, RegisteredVersion] = Field(default_factory=dict)
    pending: PendingSend | None = None

    @property
    def head(self) -> int:
        """The highest version recorded (0 if none)."""
        return max((int(v) for v in self.versions), default=0)


def registration_path(dataset_dir: Path) -> Path:
    """``<dataset dir>/registration.json``."""
    return dataset_dir / "registration.json"


def metadata_path(dataset_dir: Path, version: int) -> Path:
    """``<dataset dir>/metadata/v<version>.json``."""
    return dataset_dir / "metadata" / f"v{version}.json"


def load_registration(dataset_dir: Path) -> Registration | None:
    """The dataset's registration record, or None if it has none.

    Raises:
        RegistrationStateError: the file exists but is not a valid record.
    """
    path = registration_path(dataset_dir)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistrationStateError(path, f"cannot be read ({type(exc).__name__})") from None
    try:
        return Registration.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise RegistrationStateError(
            path, f"is not a valid registration record ({field}: {first['msg']})"
        ) from None


def save_registration(dataset_dir: Path, record: Registration) -> None:
    """Write the record atomically (a crash leaves the old file or the new one)."""
    write_atomic(registration_path(dataset_dir), record.model_dump_json(indent=2) + "\n")


def write_metadata_file(dataset_dir: Path, document: MetadataDocument) -> Path:
    """Write a version's canonical metadata document beside the vault version; returns its
    path. The same document again leaves the file as it is."""
    path = metadata_path(dataset_dir, document.version)
    data = document.canonical_bytes()
    if path.is_file() and path.read_bytes() == data:
        return path
    write_atomic(path, data.decode("utf-8"))
    return path


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (temporary file in the same directory, fsync,
    rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

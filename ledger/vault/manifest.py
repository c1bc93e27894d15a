"""``manifest.json`` of a dataset version (format ``ledger.vault.manifest/1``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.vault.errors import DatasetNotFoundError, SchemaError

__all__ = ["MANIFEST_FORMAT", "Manifest", "Partition"]

MANIFEST_FORMAT: Final = "ledger.vault.manifest/1"
_HASH = r"^0x[0-9a-f]{64}$"
_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class Partition(BaseModel):
    """One Parquet partition of the version's ``data/`` directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    rows: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Manifest(BaseModel):
    """What a committed version is: schema, counts, commitments, partitions, lineage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["ledger.vault.manifest/1"] = MANIFEST_FORMAT
    name: str
    version: Annotated[int, Field(ge=1)]
    owner: Annotated[str, Field(pattern=_ADDRESS)]
    schema_hash: Annotated[str, Field(pattern=_HASH)]
    schema_: Annotated[dict[str, Any], Field(alias="schema")]
    row_count: Annotated[int, Field(ge=1)]
    commitment: Annotated[str, Field(pattern=_HASH)]
    leaf_encoding: list[str]
    contributors_root: Annotated[str, Field(pattern=_HASH)]
    contributor_rows: dict[str, int]
    partitions: list[Partition]
    previous_commitment: Annotated[str, Field(pattern=_HASH)] | None
    created_at: str
    validation: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The manifest as its JSON document (``schema`` under its real name)."""
        return self.model_dump(mode="json", by_alias=True)

    def save(self, path: Path) -> None:
        """Write the manifest to `path` (through a temporary file and a rename)."""
        tmp = path.with_name(path.name + ".tmp")
        # Compact: json's C encoder only runs without indent (a million contributors is fast).
        tmp.write_text(json.dumps(self.to_json(), sort_keys=True) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read a manifest.

        Raises:
            DatasetNotFoundError: no manifest at `path`.
            SchemaError: the file is not a valid manifest (names the field).
        """
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise DatasetNotFoundError(path.parent.parent.name) from None
        except (OSError, ValueError) as exc:
            raise SchemaError("(file)", f"manifest is unreadable ({exc})", path=path) from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "(top level)"
            raise SchemaError(field, str(error["msg"]), path=path) from None

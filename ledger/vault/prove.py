"""Inclusion proofs of single rows, checkable offline and by ``DataRegistry.verifyRecord``.

A proof carries the row's own leaf values only (row index, salt, and its kept columns in their
canonical encoding: strings as hashes), the ABI encoding to pass to ``verifyRecord``, the leaf
hash, the sibling hashes and the root. Siblings are hashes of salted rows: they reveal nothing
about other rows. Proving reads the stored node buffer (``tree.bin``) and one Parquet row
group; nothing is rebuilt.
"""

from __future__ import annotations

import mmap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from eth_abi.abi import encode

from ledger.merkle import leaf_hash, process_proof, proof_at
from ledger.vault.encoding import leaf_values
from ledger.vault.errors import ProofError, RowNotFoundError
from ledger.vault.ingest import TREE_FILE, TREE_INDEX_FILE
from ledger.vault.manifest import Manifest
from ledger.vault.schema import ColumnType, Schema
from ledger.vault.store import Vault

__all__ = ["PROOF_FORMAT", "RowProof", "find_record", "prove", "verify_row_proof"]

PROOF_FORMAT: Final = "ledger.vault.proof/1"


@dataclass(frozen=True)
class RowProof:
    """A row's inclusion proof. `values` are in JSON shapes (ints as decimal strings, bytes32
    as ``0x`` hex, bools); `columns` label them (``_row``, ``_salt``, then kept columns)."""

    dataset: str
    version: int
    owner: str
    row: int
    leaf_encoding: list[str]
    columns: list[str]
    values: list[Any]
    encoded: str
    leaf: str
    proof: list[str]
    root: str
    format: str = PROOF_FORMAT

    def to_json(self) -> dict[str, Any]:
        """The proof document."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> RowProof:
        """Read a proof document.

        Raises:
            ProofError: a field is missing or has the wrong shape (names the field).
        """
        if not isinstance(data, dict):
            raise ProofError("(document)", "must be a JSON object")
        if data.get("format") != PROOF_FORMAT:
            raise ProofError("format", f"must be {PROOF_FORMAT!r}")
        fields: dict[str, Any] = {}
        for name, kind in (
            ("dataset", str),
            ("version", int),
            ("owner", str),
            ("row", int),
            ("leaf_encoding", list),
            ("columns", list),
            ("values", list),
            ("encoded", str),
            ("leaf", str),
            ("proof", list),
            ("root", str),
        ):
            value = data.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ProofError(name, f"must be a {kind.__name__}")
            fields[name] = value
        return cls(**fields)


def find_record(vault: Vault, name: str, version: int, record_id: str) -> int:
    """The row index of the record with id `record_id` in a version.

    Raises:
        DatasetNotFoundError: no such dataset or version.
        RowNotFoundError: no row has that record id (or the schema has no record_id column).
    """
    manifest = _manifest(vault, name, version)
    schema = Schema.model_validate(manifest.schema_)
    record = schema.record_column
    if record is None:
        raise RowNotFoundError(name, version, "record_id column", manifest.row_count)
    wanted: object = record_id
    if record.type is ColumnType.INTEGER:
        try:
            wanted = int(record_id)
        except ValueError:
            raise RowNotFoundError(name, version, "such record id", manifest.row_count) from None
    base = vault.version_dir(name, version)
    for part in manifest.partitions:
        table = pq.read_table(base / part.path, columns=[record.name, "_row"])
        hits = table.filter(pc.equal(table.column(record.name), wanted))
        if hits.num_rows:
            return int(hits.column("_row")[0].as_py())
    raise RowNotFoundError(name, version, "such record id", manifest.row_count)


def prove(vault: Vault, name: str, version: int | None, row: int) -> RowProof:
    """The inclusion proof of row `row` (0-based, the ``_row`` column) of a version (the
    latest when `version` is None).

    Raises:
        DatasetNotFoundError: no such dataset or version.
        RowNotFoundError: `row` is out of range.
        ProofError: the stored row does not hash to its leaf (the vault was altered).
    """
    number = vault.resolve_version(name, version)
    manifest = _manifest(vault, name, number)
    if not 0 <= row < manifest.row_count:
        raise RowNotFoundError(name, number, f"row {row}", manifest.row_count)
    schema = Schema.model_validate(manifest.schema_)
    base = vault.version_dir(name, number)
    stored = _read_row(base, manifest, row)
    values = leaf_values(schema, vault.key(), name, number, row, stored)
    encoding = manifest.leaf_encoding
    leaf = leaf_hash(encoding, values)
    index = int(np.fromfile(base / TREE_INDEX_FILE, dtype=np.int64, count=1, offset=8 * row)[0])
    with (
        open(base / TREE_FILE, "rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as nodes,
    ):
        if nodes[32 * index : 32 * index + 32] != leaf:
            raise ProofError("leaf", f"row {row} of the vault does not match its commitment")
        siblings = proof_at(memoryview(nodes), index)
        root = "0x" + bytes(nodes[:32]).hex()
    if root != manifest.commitment:
        raise ProofError("root", "the stored tree does not match the manifest's commitment")
    shaped = [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values]
    return RowProof(
        dataset=name,
        version=number,
        owner=manifest.owner,
        row=row,
        leaf_encoding=list(encoding),
        columns=["_row", "_salt", *(c.name for c in schema.kept_columns)],
        values=shaped,
        encoded="0x" + encode(encoding, _abi_values(encoding, values)).hex(),
        leaf="0x" + leaf.hex(),
        proof=["0x" + s.hex() for s in siblings],
        root=root,
    )


def verify_row_proof(proof: RowProof, root: str | None = None) -> bool:
    """Whether `proof` is sound: its values encode to `encoded`, hash to `leaf`, and its
    siblings lead to `root` (the given one, e.g. read from the chain, or the document's).

    Raises:
        ProofError: a field is malformed (values that do not fit the encoding, bad hex).
    """
    try:
        leaf = leaf_hash(proof.leaf_encoding, proof.values)
        encoded = encode(proof.leaf_encoding, _abi_values(proof.leaf_encoding, proof.values))
        reached = process_proof(leaf, proof.proof)
        expected = bytes.fromhex((root or proof.root).removeprefix("0x"))
    except ValueError as exc:
        raise ProofError("values", f"malformed ({type(exc).__name__})") from None
    return (
        "0x" + leaf.hex() == proof.leaf.lower()
        and "0x" + encoded.hex() == proof.encoded.lower()
        and reached == expected
    )


def _abi_values(encoding: list[str], values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for abi_type, value in zip(encoding, values, strict=True):
        if abi_type.startswith(("uint", "int")):
            out.append(int(value))
        elif abi_type.startswith("bytes"):
            out.append(bytes.fromhex(str(value).removeprefix("0x")))
        else:
            out.append(value)
    return out


def _manifest(vault: Vault, name: str, version: int) -> Manifest:
    return Manifest.load(vault.version_dir(name, version) / "manifest.json")


def _read_row(base: Path, manifest: Manifest, row: int) -> dict[str, Any]:
    """The stored values of row `row`, reading one row group of one partition."""
    offset = row
    for part in manifest.partitions:
        if offset < part.rows:
            parquet = pq.ParquetFile(base / part.path)
            for group in range(parquet.metadata.num_row_groups):
                size = parquet.metadata.row_group(group).num_rows
                if offset < size:
                    table = parquet.read_row_group(group).slice(offset, 1)
                    result: dict[str, Any] = table.to_pylist()[0]
                    return result
                offset -= size
        offset -= part.rows
    raise RowNotFoundError(manifest.name, manifest.version, f"row {row}", manifest.row_count)

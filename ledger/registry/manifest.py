"""Reading a vault version's ``manifest.json`` and checking it before anything goes on chain.

The vault (``ledger/vault``) writes the manifest; this module reads it with the vault's model
(`ledger.vault.manifest.Manifest`) and refuses a version whose manifest does not match its
files: the schema hash is recomputed from the schema, every partition's SHA-256 and row count
are checked, the contributor table's rows and Merkle root are recomputed, and the counts must
add up, and the commitment must be the root of the tree the vault stored (``tree.bin``: its
size fits ``row_count`` leaves, and with the deep check every inner node hashes up). The leaves
themselves are not re-derived from the rows here (that needs the owner's key and the vault's row
encoding). A failure is a `ManifestError` naming the field.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Final

import pyarrow.parquet as pq
import rfc8785
from eth_utils.address import is_checksum_address
from eth_utils.crypto import keccak
from pydantic import ValidationError

from ledger.merkle import StandardMerkleTree, hash_pair
from ledger.registry.errors import DatasetNameError, DatasetNotFoundError, ManifestError
from ledger.registry.metadata import PublicColumn
from ledger.vault.manifest import Manifest as VaultManifest

__all__ = [
    "MANIFEST_FORMAT",
    "NAME_PATTERN",
    "VaultManifest",
    "check_name",
    "contributors_root",
    "dataset_dir",
    "load_manifest",
    "public_columns",
    "schema_hash_of",
    "vault_versions",
    "verify_manifest",
    "version_dir",
]

MANIFEST_FORMAT: Final = "ledger.vault.manifest/1"
NAME_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_ZERO_ADDRESS: Final = "0x" + "00" * 20
_CONTRIBUTOR_ENCODING: Final = ("bytes32", "address", "uint256")
# Columns the vault adds to every partition; never part of the public schema.
_INTERNAL_COLUMNS: Final = frozenset({"_row", "_contributor"})
# Column roles (or boolean flags) that mark identifiers: never shown in the catalog.
_IDENTIFIER_MARKS: Final = frozenset(
    {
        "identifier",
        "direct_identifier",
        "direct",
        "patient_id",
        "patient_identifier",
        "pseudonym",
        "pseudonymize",
        "pseudonymized",
        "record_id",
        "contributor",
        "drop",
    }
)
_CHUNK: Final = 1 << 20
#: The vault's flat node buffer of the row tree (OpenZeppelin layout: root first).
_TREE_FILE: Final = "tree.bin"


def check_name(name: str) -> str:
    """`name` if it is a valid dataset name. Raises DatasetNameError otherwise."""
    if not NAME_PATTERN.fullmatch(name):
        raise DatasetNameError(name)
    return name


def dataset_dir(vault_root: Path, name: str) -> Path:
    """``<vault root>/datasets/<name>`` (the vault root is the owner's)."""
    return vault_root / "datasets" / check_name(name)


def version_dir(vault_root: Path, name: str, version: int) -> Path:
    """``<vault root>/datasets/<name>/v<version>``."""
    return dataset_dir(vault_root, name) / f"v{version}"


def vault_versions(vault_root: Path, name: str) -> list[int]:
    """The committed versions of a dataset in the vault, ascending (those with a manifest)."""
    base = dataset_dir(vault_root, name)
    if not base.is_dir():
        return []
    found = []
    for child in base.iterdir():
        match = re.fullmatch(r"v([1-9][0-9]*)", child.name)
        if match and child.is_dir() and (child / "manifest.json").is_file():
            found.append(int(match.group(1)))
    return sorted(found)


def schema_hash_of(schema: dict[str, Any]) -> str:
    """``0x`` + keccak256 of the RFC 8785 canonical JSON of a normalized schema."""
    return "0x" + keccak(bytes(rfc8785.dumps(schema))).hex()


def contributors_root(rows: list[tuple[str, str, int]]) -> str:
    """The StandardMerkleTree root over ``(bytes32 contributorId, address payout, uint256 rows)``
    (an empty payout is the zero address)."""
    values = [(cid, payout or _ZERO_ADDRESS, n) for cid, payout, n in rows]
    return StandardMerkleTree.of(values, _CONTRIBUTOR_ENCODING).root


def load_manifest(directory: Path) -> VaultManifest:
    """Read ``<directory>/manifest.json`` (format only; see `verify_manifest`).

    Raises:
        DatasetNotFoundError: there is no manifest (the version was never ingested).
        ManifestError: it is not valid JSON of the agreed format.
    """
    path = directory / "manifest.json"
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise DatasetNotFoundError(
            f"vault version {directory}", "ingest it first with `ledger dataset ingest`"
        ) from None
    except OSError as exc:
        raise ManifestError(path, "(file)", f"cannot be read ({type(exc).__name__})") from None
    try:
        return VaultManifest.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]).replace("schema_", "schema") or "(file)"
        raise ManifestError(path, field, str(first["msg"])) from None


def verify_manifest(
    directory: Path, *, name: str, version: int, owner: str, deep: bool = True
) -> VaultManifest:
    """Load a version's manifest and check it against its name, version, owner and files.

    With `deep` (the default) the partitions' SHA-256 digests and the contributor table's root
    are recomputed; without it only sizes and row counts from the files' footers are checked.

    Raises:
        DatasetNotFoundError: the version has no manifest.
        ManifestError: the manifest does not match (names the field).
    """
    manifest = load_manifest(directory)
    path = directory / "manifest.json"

    def fail(field: str, reason: str) -> ManifestError:
        return ManifestError(path, field, reason)

    if manifest.name != name:
        raise fail("name", f"is {manifest.name!r}, but the directory is dataset {name!r}")
    if manifest.version != version:
        raise fail("version", f"is {manifest.version}, but the directory is v{version}")
    if not is_checksum_address(manifest.owner) or manifest.owner != owner:
        raise fail("owner", f"is {manifest.owner}, not the owner key's address {owner}")
    recomputed = schema_hash_of(manifest.schema_)
    if manifest.schema_hash.lower() != recomputed:
        raise fail("schema_hash", f"does not match the schema (recomputed {recomputed})")
    if (manifest.previous_commitment is None) != (version == 1):
        raise fail(
            "previous_commitment",
            "must be null for version 1 and set for every later version",
        )
    for field in ("commitment", "contributors_root", "schema_hash"):
        if int(getattr(manifest, field), 16) == 0:
            raise fail(field, "is zero")
    if sum(p.rows for p in manifest.partitions) != manifest.row_count:
        raise fail("row_count", "differs from the sum of the partitions' rows")
    if sum(manifest.contributor_rows.values()) != manifest.row_count:
        raise fail("contributor_rows", "do not add up to row_count")
    data = (directory / "data").resolve()
    for i, part in enumerate(manifest.partitions):
        file = (directory / part.path).resolve()
        if not file.is_relative_to(data):
            raise fail(f"partitions[{i}].path", "must name a file under data/")
        if not file.is_file():
            raise fail(f"partitions[{i}].path", f"{part.path} is missing")
        try:
            rows = pq.ParquetFile(file).metadata.num_rows
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            reason = f"{part.path} is not Parquet ({type(exc).__name__})"
            raise fail(f"partitions[{i}]", reason) from None
        if rows != part.rows:
            raise fail(f"partitions[{i}].rows", f"{part.path} holds {rows} rows")
        if deep and _sha256(file) != part.sha256.lower():
            raise fail(f"partitions[{i}].sha256", f"{part.path} was changed")
    _check_tree(directory, manifest, fail, deep=deep)
    if deep:
        _check_contributors(directory, manifest, fail)
    return manifest


def _check_tree(directory: Path, manifest: VaultManifest, fail: Any, *, deep: bool) -> None:
    file = directory / _TREE_FILE
    if not file.is_file():
        return  # a version written without its tree file: nothing to compare with
    leaves = manifest.row_count
    if file.stat().st_size != 32 * (2 * leaves - 1):
        raise fail("commitment", f"{_TREE_FILE} is not a tree of row_count ({leaves}) leaves")
    with file.open("rb") as handle:
        nodes = handle.read() if deep else handle.read(32)
    if "0x" + nodes[:32].hex() != manifest.commitment.lower():
        raise fail("commitment", f"is not the root of the stored tree ({_TREE_FILE})")
    if deep:
        view = memoryview(nodes)
        for i in range(leaves - 2, -1, -1):
            left = view[32 * (2 * i + 1) : 32 * (2 * i + 2)]
            right = view[32 * (2 * i + 2) : 32 * (2 * i + 3)]
            if hash_pair(bytes(left), bytes(right)) != view[32 * i : 32 * i + 32]:
                raise fail("commitment", f"{_TREE_FILE} node {i} does not hash up")


def _check_contributors(directory: Path, manifest: VaultManifest, fail: Any) -> None:
    file = directory / "contributors.parquet"
    try:
        table = pq.read_table(file, columns=["contributor_id", "payout", "rows"])
    except FileNotFoundError:
        raise fail("contributors_root", "contributors.parquet is missing") from None
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        reason = f"contributors.parquet unreadable ({type(exc).__name__})"
        raise fail("contributors_root", reason) from None
    rows = [
        (str(c), str(p or ""), int(n))
        for c, p, n in zip(
            table.column("contributor_id").to_pylist(),
            table.column("payout").to_pylist(),
            table.column("rows").to_pylist(),
            strict=True,
        )
    ]
    if {c: n for c, _, n in rows} != manifest.contributor_rows or len(rows) != len(
        manifest.contributor_rows
    ):
        raise fail("contributor_rows", "differ from contributors.parquet")
    if not rows:
        raise fail("contributors_root", "the contributor table is empty")
    try:
        root = contributors_root(rows)
    except ValueError as exc:
        raise fail("contributors_root", f"contributors.parquet holds a bad entry ({exc})") from None
    if root != manifest.contributors_root.lower():
        raise fail("contributors_root", "does not match contributors.parquet")


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def public_columns(directory: Path, manifest: VaultManifest) -> list[PublicColumn]:
    """The kept columns the catalog may show (name, type, unit), in the data's order.

    Kept columns are those of the Parquet partitions minus the vault's own (``_row``,
    ``_contributor``); identifier columns (role ``record_id``, ``patient_id`` even though
    pseudonymized, ``direct_identifier``) and the schema's contributor column are left out.
    """
    described = _schema_columns(manifest.schema_)
    contributor = manifest.schema_.get("contributor")
    contributor_column = contributor.get("column") if isinstance(contributor, dict) else None
    names: list[str]
    if manifest.partitions:
        first = directory / manifest.partitions[0].path
        arrow = pq.read_schema(first)
        names = [n for n in arrow.names if n not in _INTERNAL_COLUMNS]
        arrow_types = {n: str(arrow.field(n).type) for n in names}
    else:
        names = [n for n in described if n not in _INTERNAL_COLUMNS]
        arrow_types = {}
    columns = []
    for column in names:
        spec = described.get(column, {})
        if column == contributor_column or _is_identifier(spec):
            continue
        kind = spec.get("type") or arrow_types.get(column) or "unknown"
        unit = spec.get("unit")
        columns.append(
            PublicColumn(name=column, type=str(kind), unit=None if unit is None else str(unit))
        )
    return columns


def _schema_columns(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Column specs by name, from ``{"columns": [{"name": ...}, ...]}`` or ``{name: {...}}``."""
    raw = schema.get("columns", {})
    if isinstance(raw, list):
        return {
            str(c["name"]): c for c in raw if isinstance(c, dict) and isinstance(c.get("name"), str)
        }
    if isinstance(raw, dict):
        return {str(k): v for k, v in raw.items() if isinstance(v, dict)}
    return {}


def _is_identifier(spec: dict[str, Any]) -> bool:
    for key in ("role", "kind", "identifier", "pii"):
        value = spec.get(key)
        if isinstance(value, str) and value.lower() in _IDENTIFIER_MARKS:
            return True
    return any(spec.get(mark) is True for mark in _IDENTIFIER_MARKS)

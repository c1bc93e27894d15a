"""The contributor table of a version: pseudonym -> kind, payout address, rows; and its root.

Its commitment (``contributors_root``) is a StandardMerkleTree over
``(bytes32 contributorId, address payout, uint256 rows)`` (payout zero when none). Without a
contributor column, the owner is the only contributor: id 32 zero bytes, kind ``owner``, payout
the owner's address.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from eth_utils.address import is_address, is_checksum_address, to_checksum_address

from ledger.merkle import StandardMerkleTree, tree_of_leaves
from ledger.vault.encoding import (
    bytes_words,
    contributor_pseudonym,
    int_words,
    leaf_hashes,
    patient_pseudonym,
)
from ledger.vault.errors import PayoutsError
from ledger.vault.schema import ColumnType, Schema
from ledger.vault.store import Vault

__all__ = [
    "CONTRIBUTOR_ENCODING",
    "ContributorEntry",
    "build_entries",
    "contributors_root",
    "contributors_tree",
    "load_contributors",
    "read_payouts",
    "write_contributors",
]

CONTRIBUTOR_ENCODING: Final = ("bytes32", "address", "uint256")
_ZERO_ADDRESS: Final = "0x" + "00" * 20


@dataclass(frozen=True)
class ContributorEntry:
    """One contributor of a version: pseudonym, kind, payout address (or None), rows."""

    contributor_id: str
    kind: str
    payout: str | None
    rows: int

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON."""
        return asdict(self)


def read_payouts(path: Path, schema: Schema, key: bytes) -> dict[str, str]:
    """Payout addresses by contributor pseudonym (``0x`` hex) from a CSV with columns
    ``contributor,address`` whose contributor values are raw (pseudonymized here).

    Raises:
        PayoutsError: unreadable file, wrong header, invalid address, repeated contributor, or
            the schema has no contributor column; names the line, never the raw value.
    """
    if schema.contributor is None:
        raise PayoutsError(path, "the schema names no contributor column")
    kind = schema.contributor.kind.value
    column = next(c for c in schema.columns if c.name == schema.contributor.column)
    patient = schema.patient_column
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc.strerror)
        raise PayoutsError(path, f"cannot be read ({reason})") from None
    except csv.Error:
        raise PayoutsError(path, "malformed CSV") from None
    if not rows or [c.strip() for c in rows[0]] != ["contributor", "address"]:
        raise PayoutsError(path, "the header must be exactly: contributor,address", line=1)
    payouts: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise PayoutsError(path, f"expected 2 fields, got {len(row)}", line=line)
        raw, address = row[0].strip(), row[1].strip()
        if not raw:
            raise PayoutsError(path, "column contributor: must not be empty", line=line)
        digits = address[2:]
        mixed = digits not in (digits.lower(), digits.upper())
        if (
            not is_address(address)
            or not address.startswith("0x")
            or (mixed and not is_checksum_address(address))
        ):
            raise PayoutsError(
                path,
                "column address: must be 0x + 40 hex digits with a valid EIP-55 checksum",
                line=line,
            )
        if column.type is ColumnType.INTEGER:
            try:
                raw = str(int(raw))
            except ValueError:
                raise PayoutsError(
                    path, "column contributor: must be an integer", line=line
                ) from None
        if patient is not None and patient.name == column.name:
            digest = patient_pseudonym(key, raw)
        else:
            digest = contributor_pseudonym(key, kind, raw)
        pseudonym = "0x" + digest.hex()
        if pseudonym in payouts:
            raise PayoutsError(path, "column contributor: listed twice", line=line)
        payouts[pseudonym] = to_checksum_address(address)
    return payouts


def contributors_tree(entries: list[ContributorEntry]) -> StandardMerkleTree:
    """The StandardMerkleTree over ``(contributorId, payout, rows)`` of `entries`."""
    values = [[e.contributor_id, e.payout or _ZERO_ADDRESS, e.rows] for e in entries]
    return StandardMerkleTree.of(values, CONTRIBUTOR_ENCODING)


def contributors_root(entries: list[ContributorEntry]) -> str:
    """The root of `contributors_tree` (``0x`` hex), computed vectorized (equal to it)."""
    n = len(entries)
    ids = bytes_words([bytes.fromhex(e.contributor_id[2:]) for e in entries])
    payouts = np.zeros((n, 32), dtype=np.uint8)
    payouts[:, 12:] = np.frombuffer(
        b"".join(bytes.fromhex((e.payout or _ZERO_ADDRESS)[2:]) for e in entries), dtype=np.uint8
    ).reshape(n, 20)
    rows = int_words(np.array([e.rows for e in entries], dtype=np.int64))
    nodes, _ = tree_of_leaves(leaf_hashes([ids, payouts, rows]))
    return "0x" + nodes[:32].hex()


def build_entries(
    rows: Mapping[str, int], kind: str, payouts: Mapping[str, str]
) -> list[ContributorEntry]:
    """Entries sorted by pseudonym from row counts and payout addresses."""
    return [
        ContributorEntry(pseudonym, kind, payouts.get(pseudonym), count)
        for pseudonym, count in sorted(rows.items())
    ]


def write_contributors(path: Path, entries: list[ContributorEntry]) -> None:
    """Write ``contributors.parquet``."""
    table = pa.table(
        {
            "contributor_id": pa.array([e.contributor_id for e in entries], pa.string()),
            "kind": pa.array([e.kind for e in entries], pa.string()),
            "payout": pa.array([e.payout or "" for e in entries], pa.string()),
            "rows": pa.array([e.rows for e in entries], pa.int64()),
        }
    )
    pq.write_table(table, path)


def load_contributors(
    vault: Vault, name: str, version: int | None = None
) -> list[ContributorEntry]:
    """The contributor table of a version (the latest when `version` is None).

    Raises:
        DatasetNotFoundError: no such dataset or version.
    """
    number = vault.resolve_version(name, version)
    table = pq.read_table(vault.version_dir(name, number) / "contributors.parquet")
    return [
        ContributorEntry(r["contributor_id"], r["kind"], r["payout"] or None, int(r["rows"]))
        for r in table.to_pylist()
    ]

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
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from eth_utils.address import is_address, is_checksum_address, to_checksum_address

from ledger.merkle import StandardMerkleTree, tree_of_leaves
from ledger.vault.encoding import (
    contributor_pseudonym,
    hex_strings,
    int_words,
    leaf_hashes,
    patient_pseudonym,
)
from ledger.vault.errors import PayoutsError
from ledger.vault.schema import ColumnType, Schema
from ledger.vault.store import Vault

__all__ = [
    "CONTRIBUTOR_ENCODING",
    "ContributorCounter",
    "ContributorEntry",
    "contributor_table",
    "contributors_tree",
    "load_contributors",
    "read_payouts",
]

CONTRIBUTOR_ENCODING: Final = ("bytes32", "address", "uint256")
_ZERO_ADDRESS: Final = "0x" + "00" * 20
_KEY: Final = np.dtype((np.void, 32))


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


class ContributorCounter:
    """Rows per contributor pseudonym, kept as sorted numpy arrays (40 bytes a contributor)."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=_KEY)
        self._counts = np.empty(0, dtype=np.int64)
        self._pending: list[tuple[npt.NDArray[np.void], npt.NDArray[np.int64]]] = []
        self._pending_size = 0

    def add(self, words: npt.NDArray[np.uint8]) -> None:
        """Count one row per line of `words` ((m, 32) pseudonyms)."""
        keys = np.ascontiguousarray(words).view(_KEY).ravel()
        uniques, counts = np.unique(keys, return_counts=True)
        self._pending.append((uniques, counts.astype(np.int64)))
        self._pending_size += len(uniques)
        if self._pending_size > max(len(self._keys), 1 << 16):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        keys = np.concatenate([self._keys, *(k for k, _ in self._pending)])
        counts = np.concatenate([self._counts, *(c for _, c in self._pending)])
        self._keys, inverse = np.unique(keys, return_inverse=True)
        self._counts = np.bincount(inverse.ravel(), weights=counts).astype(np.int64)
        self._pending, self._pending_size = [], 0

    def result(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        """The pseudonyms ((k, 32), ascending bytewise) and their row counts."""
        self._merge()
        return self._keys.view(np.uint8).reshape(-1, 32), self._counts


def contributor_table(
    ids: npt.NDArray[np.uint8],
    rows: npt.NDArray[np.int64],
    kind: str,
    payouts: Mapping[str, str],
) -> tuple[pa.Table, str]:
    """``contributors.parquet``'s table and the contributors root, from pseudonyms (sorted) and
    row counts, without a Python object per contributor.

    Raises:
        PayoutsError: a payout names a contributor without rows.
    """
    n = len(ids)
    payout_words = np.zeros((n, 32), dtype=np.uint8)
    payout_text = np.full(n, "", dtype=object)
    if payouts:
        keys = np.ascontiguousarray(ids).view(_KEY).ravel()
        wanted = np.frombuffer(
            b"".join(bytes.fromhex(p[2:]) for p in payouts), dtype=np.uint8
        ).view(_KEY)
        found = np.minimum(np.searchsorted(keys, wanted), max(0, n - 1))
        missing = int((keys[found] != wanted).sum()) if n else len(wanted)
        if missing:
            raise PayoutsError(
                Path("payouts"), f"{missing} contributor(s) listed have no rows in the dataset"
            )
        for index, address in zip(found.tolist(), payouts.values(), strict=True):
            payout_words[index, 12:] = np.frombuffer(bytes.fromhex(address[2:]), dtype=np.uint8)
            payout_text[index] = address
    nodes, _ = tree_of_leaves(leaf_hashes([ids, payout_words, int_words(rows)]))
    table = pa.table(
        {
            "contributor_id": hex_strings(ids),
            "kind": pa.array([kind] * n, pa.string()),
            "payout": pa.array(payout_text, pa.string()),
            "rows": pa.array(rows, pa.int64()),
        }
    )
    return table, "0x" + nodes[:32].hex()


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

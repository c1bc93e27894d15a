"""Vault versions written the way the vault writes them (the agreed ``manifest.json`` format),
so the registry's tests do not depend on ingest: de-identified Parquet rows of a real table
(scikit-learn's diabetes table, one hospital's share), a contributor table, and a manifest whose
commitment is a real StandardMerkleTree root over the rows."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import rfc8785
from eth_utils.crypto import keccak

from ledger.merkle import StandardMerkleTree
from ledger.samples import hospital_split

__all__ = ["OWNER_KEY_BYTES", "SCHEMA", "metadata_fields", "write_version"]

OWNER_KEY_BYTES = b"\x07" * 32
NUMERIC = ("age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression")
UNITS = {"age": "years", "bmi": "kg/m2", "bp": "mmHg"}

SCHEMA: dict[str, Any] = {
    "title": None,
    "description": None,
    "columns": [
        {"name": "record_id", "type": "string", "role": "record_id", "unit": None},
        {"name": "patient_id", "type": "string", "role": "patient_id", "unit": None},
        {"name": "sex", "type": "integer", "role": "none", "unit": None},
        *(
            {"name": n, "type": "decimal", "role": "none", "unit": UNITS.get(n), "scale": 6}
            for n in NUMERIC
        ),
        {"name": "department", "type": "string", "role": "none", "unit": None},
    ],
    "contributor": {"column": "department", "kind": "department"},
}


def metadata_fields(**changes: Any) -> dict[str, Any]:
    """A valid ``--metadata`` mapping, with `changes` applied."""
    fields: dict[str, Any] = {
        "title": "Diabetes progression, north hospital",
        "description": "Baseline measurements and one-year disease progression of patients.",
        "keywords": ["diabetes", "Endocrinology", "progression"],
        "license": "cc-by-4.0",
        "publisher": "North Hospital",
        "temporal_coverage": {"start": "2019-01-01", "end": "2021-12-31"},
    }
    fields.update(changes)
    return fields


def _pseudonym(label: str, value: str) -> str:
    return "0x" + hmac.new(OWNER_KEY_BYTES, f"{label}:{value}".encode(), hashlib.sha256).hexdigest()


def write_version(
    vault_root: Path,
    name: str,
    version: int,
    owner: str,
    *,
    previous_commitment: str | None = None,
    rows: int | None = None,
    hospital: int = 0,
    payouts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write ``datasets/<name>/v<version>/`` (data, contributors, tree, manifest); returns the
    manifest. `rows` takes the first rows of the hospital's share (all by default)."""
    frame = hospital_split("diabetes", 3)[hospital]
    if rows is not None:
        frame = frame.iloc[:rows]
    directory = vault_root / "datasets" / name / f"v{version}"
    (directory / "data").mkdir(parents=True)
    n = len(frame)
    contributors = [_pseudonym("department", str(d)) for d in frame["department"]]
    table: dict[str, Any] = {
        "record_id": [_pseudonym("record", str(r)) for r in frame["record_id"]],
        "patient_id": [_pseudonym("patient", str(p)) for p in frame["patient_id"]],
        "sex": [int(v) for v in frame["sex"]],
        **{c: [float(v) for v in frame[c]] for c in NUMERIC},
        "department": [str(d) for d in frame["department"]],
        "_row": list(range(n)),
        "_contributor": contributors,
    }
    pq.write_table(pa.table(table), directory / "data" / "part-00000.parquet")

    encoding = ["uint256", "bytes32", "bytes32", "bytes32", "int256"]
    encoding += ["int256"] * len(NUMERIC) + ["bytes32"]
    values = []
    for i in range(n):
        salt = hmac.new(OWNER_KEY_BYTES, f"salt:{name}:{version}:{i}".encode(), "sha256").digest()
        values.append(
            [
                i,
                salt,
                keccak(text=table["record_id"][i]),
                keccak(text=table["patient_id"][i]),
                table["sex"][i],
                *(round(table[c][i] * 10**6) for c in NUMERIC),
                keccak(text=table["department"][i]),
            ]
        )
    tree = StandardMerkleTree.of(values, encoding)
    commitment = tree.root
    nodes = b"".join(bytes.fromhex(node[2:]) for node in tree.dump()["tree"])
    (directory / "tree.bin").write_bytes(nodes)  # the vault's flat node buffer, root first

    counts: dict[str, int] = {}
    for c in contributors:
        counts[c] = counts.get(c, 0) + 1
    ids = sorted(counts)
    pay = [(payouts or {}).get(c) for c in ids]
    pq.write_table(
        pa.table(
            {
                "contributor_id": ids,
                "kind": ["department"] * len(ids),
                "payout": pay,
                "rows": [counts[c] for c in ids],
            }
        ),
        directory / "contributors.parquet",
    )
    zero = "0x" + "00" * 20
    contributors_root = StandardMerkleTree.of(
        [[c, p or zero, counts[c]] for c, p in zip(ids, pay, strict=True)],
        ["bytes32", "address", "uint256"],
    ).root
    data_file = directory / "data" / "part-00000.parquet"
    manifest = {
        "format": "ledger.vault.manifest/1",
        "name": name,
        "version": version,
        "owner": owner,
        "schema_hash": "0x" + keccak(rfc8785.dumps(SCHEMA)).hex(),
        "schema": SCHEMA,
        "row_count": n,
        "commitment": commitment,
        "leaf_encoding": encoding,
        "contributors_root": contributors_root,
        "contributor_rows": counts,
        "partitions": [
            {
                "path": "data/part-00000.parquet",
                "rows": n,
                "sha256": hashlib.sha256(data_file.read_bytes()).hexdigest(),
            }
        ],
        "previous_commitment": previous_commitment,
        "created_at": "2026-11-30T01:00:00Z",
        "validation": {"rows_read": n, "rows_kept": n},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest

"""Checking a vault version's manifest against its files before registration: every kind of
tampering is refused with the field named; the public schema never lists identifier columns."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledger.registry.errors import DatasetNameError, DatasetNotFoundError, ManifestError
from ledger.registry.manifest import (
    check_name,
    public_columns,
    vault_versions,
    verify_manifest,
    version_dir,
)
from tests.unit.registry.vaultfiles import write_version

OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


@pytest.fixture()
def vault(tmp_path: Path) -> Path:
    write_version(tmp_path, "diabetes", 1, OWNER, rows=40)
    return tmp_path


def _edit_manifest(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_untouched_version_verifies(vault: Path) -> None:
    directory = version_dir(vault, "diabetes", 1)
    manifest = verify_manifest(directory, name="diabetes", version=1, owner=OWNER)
    assert manifest.row_count == 40
    assert vault_versions(vault, "diabetes") == [1]
    assert vault_versions(vault, "other") == []


def test_public_columns_leave_identifiers_out(vault: Path) -> None:
    directory = version_dir(vault, "diabetes", 1)
    manifest = verify_manifest(directory, name="diabetes", version=1, owner=OWNER)
    columns = public_columns(directory, manifest)
    names = [c.name for c in columns]
    assert names == ["sex", "age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression"]
    assert {"record_id", "patient_id", "department", "_row", "_contributor"}.isdisjoint(names)
    age = next(c for c in columns if c.name == "age")
    assert (age.type, age.unit) == ("decimal", "years")


def _rewrite_data(directory: Path) -> None:
    path = directory / "data" / "part-00000.parquet"
    table = pq.read_table(path)
    ages = table.column("age").to_pylist()
    ages[0] += 1.0
    table = table.set_column(table.schema.get_field_index("age"), "age", pa.array(ages))
    pq.write_table(table, path)


def _rewrite_payout(directory: Path) -> None:
    path = directory / "contributors.parquet"
    table = pq.read_table(path)
    payouts = [OTHER] * table.num_rows
    index = table.schema.get_field_index("payout")
    table = table.set_column(index, "payout", pa.array(payouts, pa.string()))
    pq.write_table(table, path)


def _edit(key: str, value: Any) -> Callable[[Path], None]:
    return lambda d: _edit_manifest(d, lambda m: m.__setitem__(key, value))


def _add_column(d: Path) -> None:
    _edit_manifest(d, lambda m: m["schema"]["columns"].append({"name": "x", "type": "integer"}))


def _more_rows(d: Path) -> None:
    def change(m: dict[str, Any]) -> None:
        first = next(iter(m["contributor_rows"]))
        m["contributor_rows"][first] += 1
        m["row_count"] += 1
        m["partitions"][0]["rows"] += 1

    _edit_manifest(d, change)


def _flip_tree_node(d: Path) -> None:
    nodes = bytearray((d / "tree.bin").read_bytes())
    nodes[32 * 5] ^= 1  # an inner node
    (d / "tree.bin").write_bytes(bytes(nodes))


def _escape(d: Path) -> None:
    _edit_manifest(d, lambda m: m["partitions"][0].__setitem__("path", "../manifest.json"))


@pytest.mark.parametrize(
    ("tamper", "field"),
    [
        (_rewrite_data, "partitions[0].sha256"),
        (_rewrite_payout, "contributors_root"),
        (_add_column, "schema_hash"),
        (_edit("row_count", 41), "row_count"),
        (_more_rows, "partitions[0].rows"),
        (_edit("owner", OTHER), "owner"),
        (_edit("name", "diabetes2"), "name"),
        (_edit("version", 2), "version"),
        (_edit("previous_commitment", "0x" + "11" * 32), "previous_commitment"),
        (_edit("commitment", "0x" + "00" * 32), "commitment"),
        (_edit("commitment", "0x" + "5a" * 32), "commitment"),
        (_flip_tree_node, "commitment"),
        (lambda d: (d / "tree.bin").write_bytes(b"\0" * 64), "commitment"),
        (_edit("commitment", "0x1234"), "commitment"),
        (_edit("format", "other/1"), "format"),
        (_escape, "partitions[0].path"),
        (lambda d: (d / "contributors.parquet").unlink(), "contributors_root"),
        (lambda d: (d / "data" / "part-00000.parquet").unlink(), "partitions[0].path"),
        (lambda d: (d / "manifest.json").write_text("{"), "(file)"),
    ],
)
def test_tampered_version_is_refused(
    vault: Path, tamper: Callable[[Path], None], field: str
) -> None:
    directory = version_dir(vault, "diabetes", 1)
    tamper(directory)
    with pytest.raises(ManifestError) as info:
        verify_manifest(directory, name="diabetes", version=1, owner=OWNER)
    assert info.value.field == field
    assert "ingest it again" in str(info.value)


def test_missing_version_is_not_found(vault: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="ledger dataset ingest"):
        verify_manifest(version_dir(vault, "diabetes", 2), name="diabetes", version=2, owner=OWNER)


@pytest.mark.parametrize("name", ["", "Diabetes", "-x", "a/b", "x" * 64, "../etc"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(DatasetNameError, match="must be 1-63 characters"):
        check_name(name)

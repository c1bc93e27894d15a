"""Ingest: what a committed version holds, versions, de-identification rules, and every kind of
bad input failing with a typed error that names the field and rule and leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from ledger.vault.errors import (
    ColumnsMismatchError,
    EmptySourceError,
    EncodingError,
    InvalidNameError,
    SourceError,
    ValidationFailedError,
    VaultBusyError,
)
from ledger.vault.ingest import ingest
from ledger.vault.manifest import Manifest
from ledger.vault.schema import Schema, parse_schema
from ledger.vault.store import Vault

SCHEMA = parse_schema(
    {
        "columns": [
            {"name": "record_id", "type": "integer", "role": "record_id"},
            {"name": "patient_id", "type": "string", "role": "patient_id"},
            {"name": "name", "type": "string", "role": "direct_identifier"},
            {"name": "birth", "type": "date", "generalize": "year"},
            {"name": "visit", "type": "date", "generalize": "shift"},
            {"name": "age", "type": "integer", "role": "age", "min": 0, "max": 130},
            {"name": "weight", "type": "decimal", "scale": 1, "min": 0},
            {"name": "dx", "type": "code", "codes": ["C50", "E11"], "required": True},
            {"name": "smoker", "type": "boolean"},
            {"name": "note", "type": "string"},
        ],
        "contributor": {"column": "patient_id", "kind": "patient"},
    }
)
HEADER = "record_id,patient_id,name,birth,visit,age,weight,dx,smoker,note\n"


def _row(i: int, **changes: str) -> str:
    cells = {
        "record_id": str(i),
        "patient_id": f"MRN{i % 5:04d}",
        "name": f"Person Number{i}",
        "birth": "1950-06-15",
        "visit": "2021-03-01",
        "age": str(40 + i % 60),
        "weight": f"{60 + i % 30}.25",
        "dx": "C50" if i % 2 else "E11",
        "smoker": "true" if i % 3 else "false",
        "note": f"note {i % 4}",
    }
    cells.update(changes)
    return ",".join(cells.values()) + "\n"


def _csv(tmp_path: Path, rows: list[str], name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(rows))
    return path


def _good(tmp_path: Path, n: int = 20) -> Path:
    return _csv(tmp_path, [_row(i) for i in range(n)])


def _nothing_written(vault: Vault, name: str) -> None:
    assert not vault.dataset_dir(name).exists()
    assert vault.versions(name) == []


def test_version_holds_data_manifest_report_contributors(vault: Vault, tmp_path: Path) -> None:
    manifest = ingest(vault, _good(tmp_path), SCHEMA, "visits")
    base = vault.version_dir("visits", 1)
    assert manifest == Manifest.load(base / "manifest.json")
    assert manifest.row_count == 20 and manifest.version == 1 and manifest.owner == vault.owner
    assert manifest.previous_commitment is None
    assert manifest.schema_hash == SCHEMA.schema_hash()
    assert manifest.leaf_encoding == [
        "uint256", "bytes32", "int256", "bytes32", "int256", "int256", "int256", "int256",
        "bytes32", "bool", "bytes32",
    ]  # fmt: skip
    assert sum(manifest.contributor_rows.values()) == 20 and len(manifest.contributor_rows) == 5
    for part in manifest.partitions:
        assert hashlib.sha256((base / part.path).read_bytes()).hexdigest() == part.sha256
    table = ds.dataset(vault.data_dir("visits", 1), format="parquet").to_table()
    assert table.column_names == [
        "record_id", "patient_id", "birth", "visit", "age", "weight", "dx", "smoker", "note",
        "_row", "_contributor",
    ]  # fmt: skip
    assert table.column("_row").to_pylist() == list(range(20))
    assert table.column("birth").to_pylist() == [1950] * 20
    assert table.column("weight").to_pylist()[0] == 60.2  # 60.25 at scale 1, half to even
    assert set(table.column("_contributor").to_pylist()) == set(manifest.contributor_rows)
    assert table.column("_contributor").to_pylist() == table.column("patient_id").to_pylist()
    assert {p.name for p in base.iterdir()} == {
        "data", "manifest.json", "report.json", "contributors.parquet", "tree.bin",
        "tree_index.bin",
    }  # fmt: skip
    assert json.loads((base / "report.json").read_text())["rows_rejected"] == 0


def test_second_ingest_is_v2_linked_to_v1(vault: Vault, tmp_path: Path) -> None:
    v1 = ingest(vault, _good(tmp_path, 20), SCHEMA, "visits")
    v2 = ingest(vault, _csv(tmp_path, [_row(i) for i in range(25)], "more.csv"), SCHEMA, "visits")
    assert v2.version == 2 and v2.previous_commitment == v1.commitment
    assert v2.commitment != v1.commitment
    assert vault.versions("visits") == [1, 2] and vault.latest_version("visits") == 2
    # Same rows, same version number in another vault (another key): another commitment.
    other = Vault(tmp_path / "other", vault.owner)
    assert ingest(other, _good(tmp_path, 20), SCHEMA, "visits").commitment != v1.commitment


def test_deidentification_rules(vault: Vault, tmp_path: Path) -> None:
    rows = [
        _row(0, age="95", visit="2021-03-01", patient_id="MRN-A"),
        _row(1, age="90", visit="2021-03-01", patient_id="MRN-A"),
        _row(2, age="89", visit="2021-03-01", patient_id="MRN-B"),
    ]
    ingest(vault, _csv(tmp_path, rows), SCHEMA, "deid")
    table = pq.read_table(vault.data_dir("deid", 1)).to_pydict()
    assert "name" not in table
    assert table["age"] == [90, 90, 89]
    assert table["patient_id"][0] == table["patient_id"][1] != table["patient_id"][2]
    assert all(p.startswith("0x") and len(p) == 66 for p in table["patient_id"])
    # Shifted per patient: the same patient's dates keep their distance, within a year.
    import datetime

    real = datetime.date(2021, 3, 1)
    shifts = [(d - real).days for d in table["visit"]]
    assert shifts[0] == shifts[1] and all(-365 <= s <= 365 for s in shifts)


def test_parquet_input_commits_like_the_csv(vault: Vault, tmp_path: Path) -> None:
    csv_path = _good(tmp_path)
    frame = pa.csv.read_csv(csv_path) if hasattr(pa, "csv") else None  # noqa: F841
    import pandas as pd

    parquet_path = tmp_path / "in.parquet"
    pd.read_csv(csv_path, dtype=str, keep_default_na=False).to_parquet(parquet_path)
    a = ingest(vault, csv_path, SCHEMA, "from-csv")
    b = ingest(vault, parquet_path, SCHEMA, "from-csv")
    # Same rows, same key; only the version number (in the salts) differs.
    assert a.row_count == b.row_count == 20
    assert (
        pq.read_table(vault.data_dir("from-csv", 1))
        .drop(["_row"])
        .equals(pq.read_table(vault.data_dir("from-csv", 2)).drop(["_row"]))
    )


def test_reject_reports_rules_and_writes_nothing(vault: Vault, tmp_path: Path) -> None:
    rows = [_row(i) for i in range(10)]
    rows[2] = _row(2, age="abc")  # line 4
    rows[3] = _row(3, age="131")  # line 5
    rows[4] = _row(4, dx="X99")  # line 6
    rows[5] = _row(5, dx="")  # line 7
    rows[6] = _row(6, visit="2021-02-30")  # line 8
    rows[7] = _row(7, weight="-1")  # line 9
    rows[8] = _row(8, smoker="maybe")  # line 10
    rows.append(_row(1))  # line 12: duplicate record id 1
    with pytest.raises(ValidationFailedError) as caught:
        ingest(vault, _csv(tmp_path, rows), SCHEMA, "bad")
    error = caught.value
    assert error.counts == {
        "type": 3,
        "max": 1,
        "codes": 1,
        "required": 1,
        "min": 1,
        "duplicate": 1,
    }
    offending = {(o["line"], o["column"], o["rule"]) for o in error.report["offending"]}
    assert offending == {
        (4, "age", "type"), (5, "age", "max"), (6, "dx", "codes"), (7, "dx", "required"),
        (8, "visit", "type"), (9, "weight", "min"), (10, "smoker", "type"),
        (12, "record_id", "duplicate"),
    }  # fmt: skip
    assert "first at line 4 column 'age'" in str(error)
    assert "abc" not in str(error) and "X99" not in json.dumps(error.report)
    _nothing_written(vault, "bad")


def test_quarantine_drops_bad_rows_and_keeps_line_numbers(vault: Vault, tmp_path: Path) -> None:
    rows = [_row(i) for i in range(10)]
    rows[3] = _row(3, age="old")
    rows[6] = "1,2,3\n"  # malformed: too few fields (line 8)
    manifest = ingest(vault, _csv(tmp_path, rows), SCHEMA, "q", on_error="quarantine")
    assert manifest.row_count == 8
    report = json.loads((vault.version_dir("q", 1) / "report.json").read_text())
    assert report["rows_read"] == 10 and report["rows_rejected"] == 2
    assert {(o["line"], o["rule"]) for o in report["offending"]} == {(5, "type"), (8, "malformed")}
    assert manifest.validation["counts"] == {"malformed": 1, "type": 1}
    kept = pq.read_table(vault.data_dir("q", 1)).column("record_id").to_pylist()
    assert kept == [0, 1, 2, 4, 5, 7, 8, 9]


def test_malformed_csv_lines_are_numbered_after_skipped_rows(vault: Vault, tmp_path: Path) -> None:
    rows = [_row(i) for i in range(6)]
    rows[1] = "x,y\n"  # line 3
    rows[2] = "a,b,c,d,e,f,g,h,i,j,k,l\n"  # line 4
    rows[4] = _row(4, age="-5")  # line 6: after the two skipped lines
    with pytest.raises(ValidationFailedError) as caught:
        ingest(vault, _csv(tmp_path, rows), SCHEMA, "lines")
    found = {(o["line"], o["rule"]) for o in caught.value.report["offending"]}
    assert found == {(3, "malformed"), (4, "malformed"), (6, "min")}


def test_duplicates_are_found_across_chunks(vault: Vault, tmp_path: Path) -> None:
    rows = [_row(i) for i in range(3000)] + [_row(17)]
    path = _csv(tmp_path, rows)
    with pytest.raises(ValidationFailedError) as caught:
        ingest(vault, path, SCHEMA, "dups", chunk_bytes=16_384)
    assert caught.value.counts == {"duplicate": 1}
    assert caught.value.report["offending"] == [
        {"line": 3002, "column": "record_id", "rule": "duplicate"}
    ]
    string_ids = parse_schema(
        {
            **SCHEMA.model_dump(mode="json"),
            "columns": [
                {**c, "type": "string"} if c["name"] == "record_id" else c
                for c in SCHEMA.model_dump(mode="json")["columns"]
            ],
        }
    )
    with pytest.raises(ValidationFailedError):
        ingest(vault, path, string_ids, "dups", chunk_bytes=16_384)
    _nothing_written(vault, "dups")


@pytest.mark.parametrize(
    ("content", "error", "text"),
    [
        (b"", EmptySourceError, "empty"),
        (HEADER.encode(), EmptySourceError, "no rows"),
        (b"record_id,pati\xe9nt_id\n1,2\n", EncodingError, "not valid UTF-8"),
        (
            HEADER.replace(",note", "").encode() + b"1\n",
            ColumnsMismatchError,
            "missing columns note",
        ),
        (HEADER.replace("\n", ",ssn\n").encode(), ColumnsMismatchError, "not in the schema ssn"),
        (
            (HEADER + _row(1)[:-1] + ',"open quote\n').encode(),
            ValidationFailedError,
            r"malformed: 1\); first at line 2",
        ),
        (b"PAR1 not really parquet", SourceError, "unreadable Parquet"),
    ],
)
def test_bad_files_raise_typed_errors_and_write_nothing(
    vault: Vault, tmp_path: Path, content: bytes, error: type[Exception], text: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(error, match=text):
        ingest(vault, path, SCHEMA, "broken")
    _nothing_written(vault, "broken")


def test_non_utf8_cells_are_row_errors_with_line_numbers(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + _row(0).encode() + _row(1, note="caf\xe9").encode("latin-1"))
    with pytest.raises(ValidationFailedError) as caught:
        ingest(vault, path, SCHEMA, "enc")
    assert caught.value.report["offending"] == [{"line": 3, "column": "note", "rule": "encoding"}]


@pytest.mark.parametrize("name", ["", "Upper", "-lead", "a b", "x" * 64, "../up", "a/b"])
def test_invalid_names_are_refused(vault: Vault, tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidNameError, match="dataset name"):
        ingest(vault, _good(tmp_path), SCHEMA, name)
    assert not vault.datasets_dir.exists()


def test_a_crash_leaves_only_staging_which_the_next_ingest_removes(
    vault: Vault, tmp_path: Path
) -> None:
    # A child process ingests and is killed in the middle (after the first chunk).
    script = f"""
import os, signal
from pathlib import Path
import importlib
module = importlib.import_module("ledger.vault.ingest")
from ledger.vault.store import Vault
from tests.unit.vault.test_ingest import SCHEMA
calls = []
original = module.leaf_hashes
def dying(words):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(words)
module.leaf_hashes = dying
vault = Vault(Path({str(vault.root)!r}), {vault.owner!r})
module.ingest(vault, Path({str(_good(tmp_path, 3000))!r}), SCHEMA, "crash", chunk_bytes=16384)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[3],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    leftovers = [p.name for p in vault.dataset_dir("crash").iterdir() if p.name != ".lock"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".staging-")
    assert vault.versions("crash") == []
    manifest = ingest(vault, _good(tmp_path, 10), SCHEMA, "crash")
    assert manifest.version == 1
    assert sorted(p.name for p in vault.dataset_dir("crash").iterdir()) == [".lock", "v1"]


def test_an_ingest_in_progress_holds_the_lock(vault: Vault, tmp_path: Path) -> None:
    with vault.ingest_lock("busy"):
        script = f"""
from pathlib import Path
from ledger.vault.store import Vault
Vault(Path({str(vault.root)!r}), {vault.owner!r}).ingest_lock("busy").__enter__()
"""
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=Path(__file__).parents[3],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert "VaultBusyError" in proc.stderr
    with pytest.raises(VaultBusyError):
        with vault.ingest_lock("busy2"), vault.ingest_lock("busy2"):
            pass


def test_key_is_private_and_stable(vault: Vault) -> None:
    key = vault.key()
    assert len(key) == 32 and vault.key() == key
    assert os.stat(vault.root / "key").st_mode & 0o777 == 0o600
    assert key.hex() not in repr(vault)


def test_sample_export_ingests(vault: Vault, gbsg2_csv: Path, gbsg2_schema: Schema) -> None:
    manifest = ingest(vault, gbsg2_csv, gbsg2_schema, "gbsg2-north")
    assert manifest.row_count == 229 and len(manifest.contributor_rows) == 4


def test_numbers_parse_exactly_and_strictly(vault: Vault, tmp_path: Path) -> None:
    schema = parse_schema(
        {
            "columns": [
                {"name": "id", "type": "integer", "role": "record_id"},
                {"name": "big", "type": "integer"},
                {"name": "x", "type": "decimal", "scale": 2},
            ]
        }
    )
    good = tmp_path / "good.csv"
    good.write_text(f"id,big,x\n1,{2**60 + 1},+1.5\n2,,2.125\n3, -7 ,\n4,0,2.375\n")
    ingest(vault, good, schema, "numbers")
    table = pq.read_table(vault.data_dir("numbers", 1)).to_pydict()
    assert table["big"] == [2**60 + 1, None, -7, 0]
    assert table["x"] == [1.5, 2.12, None, 2.38]  # exact halves round to even
    bad = tmp_path / "bad.csv"
    bad.write_text("id,big,x\n1,1,inf\n2,1.0,nan\n3,0x10,1e999\n4,99999999999999999999,1\n")
    with pytest.raises(ValidationFailedError) as caught:
        ingest(vault, bad, schema, "numbers-bad")
    found = {(o["line"], o["column"], o["rule"]) for o in caught.value.report["offending"]}
    assert found == {
        (2, "x", "type"), (3, "big", "type"), (3, "x", "type"), (4, "big", "type"),
        (4, "x", "scale"), (5, "big", "type"),
    }  # fmt: skip

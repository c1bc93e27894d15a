"""No identifier value of the input appears anywhere after an ingest: in any file under the
vault (raw bytes and decoded Parquet values), the manifest, the report, a proof, or the logs —
also when the ingest fails."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ledger.samples import hospital_split
from ledger.samples.synthetic import IDENTIFIER_COLUMNS, add_identifiers, identifier_schema_columns
from ledger.vault.errors import ValidationFailedError
from ledger.vault.ingest import ingest
from ledger.vault.prove import prove
from ledger.vault.schema import Schema, load_schema, parse_schema
from ledger.vault.store import Vault
from tests.unit.vault.conftest import SCHEMAS, files_under


def _schema_with_identifiers() -> Schema:
    base = load_schema(SCHEMAS / "lung.yaml").model_dump(mode="json")
    columns = [c for c in base["columns"] if c["name"] != "patient_id"]
    base["columns"] = columns[:1] + identifier_schema_columns() + columns[1:]
    base["contributor"] = {"column": "patient_id", "kind": "patient"}
    return parse_schema(base)


def _identifier_values(frame: object) -> set[str]:
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    values: set[str] = set()
    for column in (*IDENTIFIER_COLUMNS, "patient_id", "birth_date"):
        values.update(str(v) for v in frame[column])
    return values


def _decoded_strings(path: Path) -> set[str]:
    table = pq.read_table(path)
    found: set[str] = set()
    for column in table.columns:
        found.update(str(v) for v in column.to_pylist())
    found.update(table.column_names)
    return found


def test_no_identifier_value_survives_an_ingest(
    vault: Vault, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frame = add_identifiers(hospital_split("lung")[0], seed=11)
    source = tmp_path / "lung-with-identifiers.csv"
    frame.to_csv(source, index=False)
    secrets = _identifier_values(frame)
    assert len(secrets) > 5 * len(frame)
    caplog.set_level(logging.DEBUG)
    manifest = ingest(vault, source, _schema_with_identifiers(), "lung-id")
    proofs = [json.dumps(prove(vault, "lung-id", None, r).to_json()) for r in range(5)]

    texts: list[str] = [caplog.text, json.dumps(manifest.to_json()), *proofs]
    for path in files_under(vault.root):
        raw = path.read_bytes()
        texts.append(raw.decode("latin-1"))
        if path.suffix == ".parquet":
            texts.extend(_decoded_strings(path))
    leaked = {secret for secret in secrets for text in texts if secret in text}
    assert leaked == set()
    # The de-identified data still carries what research needs.
    table = pq.read_table(vault.data_dir("lung-id", 1))
    assert set(table.column("birth_date").to_pylist()) <= set(range(1925, 2006))
    assert table.num_rows == len(frame)


def test_a_failed_ingest_reports_no_identifier(vault: Vault, tmp_path: Path) -> None:
    frame = add_identifiers(hospital_split("lung")[1], seed=12)
    frame["age"] = frame["age"].astype(object)
    frame.loc[3, "age"] = "not-a-number"
    frame.loc[7, "time"] = -4
    source = tmp_path / "bad.csv"
    frame.to_csv(source, index=False)
    with pytest.raises(ValidationFailedError) as caught:
        ingest(vault, source, _schema_with_identifiers(), "lung-bad")
    rendered = str(caught.value) + json.dumps(caught.value.report) + repr(caught.value)
    assert not {s for s in _identifier_values(frame) if s in rendered}
    assert "not-a-number" not in rendered
    assert {(o["line"], o["column"]) for o in caught.value.report["offending"]} == {
        (5, "age"),
        (9, "time"),
    }
    assert vault.versions("lung-bad") == []

"""Schema YAML: the shipped schemas load, unknown keys and broken rules are named, the hash is
keccak256 of the RFC 8785 JSON of the normalized schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import rfc8785

from ledger.merkle import keccak256
from ledger.vault.errors import SchemaError
from ledger.vault.schema import ColumnType, Role, load_schema, parse_schema
from tests.unit.vault.conftest import SCHEMAS, write_schema

BASE = """
columns:
  - {name: record_id, type: string, role: record_id}
  - {name: patient_id, type: string, role: patient_id}
  - {name: visit, type: date, generalize: shift}
  - {name: weight, type: decimal, unit: kg, min: 0, max: 400}
contributor: {column: patient_id, kind: patient}
"""


@pytest.mark.parametrize("name", ["breast_cancer", "diabetes", "lung", "gbsg2"])
def test_shipped_schemas_load(name: str) -> None:
    schema = load_schema(SCHEMAS / f"{name}.yaml")
    assert schema.record_column is not None and schema.record_column.name == "record_id"
    assert schema.patient_column is not None and schema.patient_column.name == "patient_id"
    assert schema.contributor is not None and schema.contributor.column == "department"
    assert schema.schema_hash().startswith("0x") and len(schema.schema_hash()) == 66


def test_normalized_schema_fills_defaults_and_hash_is_keccak_of_rfc8785(tmp_path: Path) -> None:
    schema = load_schema(write_schema(tmp_path, BASE))
    normalized = schema.normalized()
    weight = normalized["columns"][3]
    assert weight["scale"] == 6 and weight["required"] is False and weight["role"] == "none"
    assert schema.schema_hash() == "0x" + keccak256(rfc8785.dumps(normalized)).hex()
    # Key order and YAML style do not matter; a changed rule does.
    reordered = BASE.replace(
        "{name: weight, type: decimal, unit: kg, min: 0, max: 400}",
        "{max: 400, min: 0, unit: kg, type: decimal, name: weight}",
    )
    assert load_schema(write_schema(tmp_path, reordered)).schema_hash() == schema.schema_hash()
    changed = BASE.replace("max: 400", "max: 401")
    assert load_schema(write_schema(tmp_path, changed)).schema_hash() != schema.schema_hash()


@pytest.mark.parametrize(
    ("text", "field", "rule"),
    [
        (BASE + "owner: someone\n", "owner", "unknown key"),
        (BASE.replace("unit: kg,", "unit: kg, colour: red,"), "columns[3].colour", "unknown key"),
        (BASE.replace("kind: patient", "kind: doctor"), "contributor.kind", "must be one of"),
        (BASE.replace("type: decimal", "type: float"), "columns[3].type", "must be one of"),
        (BASE.replace("min: 0, max: 400", "min: 5, max: 1"), "columns[3]", "min must not exceed"),
        (BASE.replace("generalize: shift", "generalize: month"), "columns[2].generalize", "one of"),
        (BASE.replace("role: patient_id", "role: none"), "(top level)", "needs a column with role"),
        (
            BASE.replace("contributor:", "  - {name: dx, type: code}\ncontributor:"),
            "columns[4]",
            "needs a non-empty list of codes",
        ),
        (BASE.replace("name: visit", "name: record_id"), "(top level)", "declared twice"),
        (BASE.replace("name: visit", "name: _row"), "(top level)", "reserved"),
        ("columns: []\n", "columns", "at least 1"),
        ("- just a list\n", "(top level)", "must be a mapping"),
    ],
)
def test_bad_schemas_name_the_key_and_rule(
    tmp_path: Path, text: str, field: str, rule: str
) -> None:
    with pytest.raises(SchemaError) as caught:
        load_schema(write_schema(tmp_path, text))
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert field in str(caught.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot be read"):
        load_schema(tmp_path / "missing.yaml")
    with pytest.raises(SchemaError, match="not valid YAML") as caught:
        load_schema(write_schema(tmp_path, "columns: [\n  - {name: a\n"))
    assert caught.value.field.startswith("line ")


def test_roles_and_kept_columns() -> None:
    schema = parse_schema(
        {
            "columns": [
                {"name": "id", "type": "integer", "role": "record_id"},
                {"name": "name", "type": "string", "role": "direct_identifier"},
                {"name": "age", "type": "integer", "role": "age"},
                {"name": "smoker", "type": "boolean"},
            ]
        }
    )
    assert [c.name for c in schema.kept_columns] == ["id", "age", "smoker"]
    assert schema.columns[0].is_required and schema.columns[3].is_required
    assert not schema.columns[2].is_required
    assert schema.columns[2].role is Role.AGE and schema.columns[2].type is ColumnType.INTEGER

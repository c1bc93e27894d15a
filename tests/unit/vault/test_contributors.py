"""Contributors: rows per pseudonym, payout addresses from a raw-value CSV, the committed root
equal to a StandardMerkleTree over (id, payout, rows), and bad payout files named."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ledger.merkle import StandardMerkleTree
from ledger.vault.contributors import (
    CONTRIBUTOR_ENCODING,
    contributors_tree,
    load_contributors,
)
from ledger.vault.encoding import contributor_pseudonym, patient_pseudonym
from ledger.vault.errors import PayoutsError
from ledger.vault.ingest import ingest
from ledger.vault.schema import Schema, parse_schema
from ledger.vault.store import Vault

PAYEE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _payouts(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "payouts.csv"
    path.write_text(text)
    return path


def test_department_contributors_with_payouts(
    vault: Vault, tmp_path: Path, gbsg2_csv: Path, gbsg2_schema: Schema
) -> None:
    payouts = _payouts(
        tmp_path, f"contributor,address\noncology,{PAYEE}\nsurgery,{PAYEE.lower()}\n"
    )
    manifest = ingest(vault, gbsg2_csv, gbsg2_schema, "gbsg2", payouts=payouts)
    entries = load_contributors(vault, "gbsg2")
    key = vault.key()
    by_id = {e.contributor_id: e for e in entries}
    oncology = "0x" + contributor_pseudonym(key, "department", "oncology").hex()
    surgery = "0x" + contributor_pseudonym(key, "department", "surgery").hex()
    assert by_id[oncology].payout == PAYEE and by_id[surgery].payout == PAYEE
    assert sum(e.payout is None for e in entries) == 2
    assert all(e.kind == "department" for e in entries)
    assert {e.contributor_id: e.rows for e in entries} == manifest.contributor_rows
    assert sum(manifest.contributor_rows.values()) == manifest.row_count
    tree = contributors_tree(entries)
    assert tree.root == manifest.contributors_root
    reference = StandardMerkleTree.of(
        [[e.contributor_id, e.payout or "0x" + "00" * 20, e.rows] for e in entries],
        CONTRIBUTOR_ENCODING,
    )
    assert reference.root == manifest.contributors_root
    stored = pq.read_table(vault.version_dir("gbsg2", 1) / "contributors.parquet")
    assert stored.column_names == ["contributor_id", "kind", "payout", "rows"]


def test_patient_contributors_are_patient_pseudonyms(vault: Vault, tmp_path: Path) -> None:
    schema = parse_schema(
        {
            "columns": [
                {"name": "id", "type": "integer", "role": "record_id"},
                {"name": "mrn", "type": "string", "role": "patient_id"},
            ],
            "contributor": {"column": "mrn", "kind": "patient"},
        }
    )
    data = tmp_path / "d.csv"
    data.write_text("id,mrn\n1,A1\n2,A1\n3,B2\n")
    payouts = _payouts(tmp_path, f"contributor,address\nB2,{PAYEE}\n")
    manifest = ingest(vault, data, schema, "patients", payouts=payouts)
    key = vault.key()
    a1, b2 = ("0x" + patient_pseudonym(key, v).hex() for v in ("A1", "B2"))
    assert manifest.contributor_rows == {a1: 2, b2: 1}
    entries = {e.contributor_id: e for e in load_contributors(vault, "patients", 1)}
    assert entries[b2].payout == PAYEE and entries[a1].payout is None
    assert entries[a1].kind == "patient"


def test_without_contributor_column_the_owner_is_the_contributor(
    vault: Vault, tmp_path: Path
) -> None:
    schema = parse_schema({"columns": [{"name": "x", "type": "integer"}]})
    data = tmp_path / "d.csv"
    data.write_text("x\n1\n2\n")
    manifest = ingest(vault, data, schema, "plain")
    (entry,) = load_contributors(vault, "plain")
    assert entry.contributor_id == "0x" + "00" * 32 and entry.kind == "owner"
    assert entry.payout == vault.owner and entry.rows == 2 == manifest.row_count


@pytest.mark.parametrize(
    ("text", "line", "rule"),
    [
        ("who,address\n", 1, "header must be exactly"),
        (f"contributor,address\noncology,{PAYEE[:-1]}\n", 2, "column address"),
        (f"contributor,address\noncology,{PAYEE[:-1]}c\n", 2, "EIP-55 checksum"),
        (f"contributor,address\noncology,{PAYEE}\noncology,{PAYEE}\n", 3, "listed twice"),
        (f"contributor,address\n,{PAYEE}\n", 2, "must not be empty"),
        (f"contributor,address\noncology,{PAYEE},x\n", 2, "expected 2 fields"),
        (f"contributor,address\nnobody,{PAYEE}\n", None, "have no rows in the dataset"),
    ],
)
def test_bad_payouts_are_named_and_write_nothing(
    vault: Vault,
    tmp_path: Path,
    gbsg2_csv: Path,
    gbsg2_schema: Schema,
    text: str,
    line: int | None,
    rule: str,
) -> None:
    with pytest.raises(PayoutsError) as caught:
        ingest(vault, gbsg2_csv, gbsg2_schema, "gbsg2", payouts=_payouts(tmp_path, text))
    assert caught.value.line == line and rule in caught.value.rule
    assert "nobody" not in str(caught.value)
    assert vault.versions("gbsg2") == []

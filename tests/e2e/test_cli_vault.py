"""``ledger dataset`` as a user runs it: ingest (JSON and text), list, prove, verify-proof,
contributors, and errors; no identifier value of the input in any output. One test, one data
dir: every ``ledger`` run pays the CLI's start-up."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ledger.samples import hospital_split
from ledger.samples.synthetic import IDENTIFIER_COLUMNS, add_identifiers, identifier_schema_columns
from tests.e2e.cli import ledger

ROOT = Path(__file__).resolve().parents[2]
OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # LEDGER_OWNER_KEY's default on anvil
PAYEE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _inputs(tmp_path: Path) -> tuple[Path, Path, set[str]]:
    frame = add_identifiers(hospital_split("gbsg2")[0], seed=5)
    data = tmp_path / "gbsg2.csv"
    frame.to_csv(data, index=False)
    schema = yaml.safe_load((ROOT / "ledger/samples/schemas/gbsg2.yaml").read_text())
    columns = [c for c in schema["columns"] if c["name"] != "patient_id"]
    schema["columns"] = columns[:1] + identifier_schema_columns() + columns[1:]
    schema_path = tmp_path / "schema.yaml"
    schema_path.write_text(yaml.safe_dump(schema))
    secrets = {str(v) for c in (*IDENTIFIER_COLUMNS, "patient_id", "birth_date") for v in frame[c]}
    return data, schema_path, secrets


def test_dataset_commands_end_to_end(env: dict[str, str], tmp_path: Path) -> None:
    data, schema, secrets = _inputs(tmp_path)
    payouts = tmp_path / "payouts.csv"
    payouts.write_text(f"contributor,address\noncology,{PAYEE}\n")
    outputs: list[str] = []

    def run(*args: str, ok: bool = True) -> str:
        proc = ledger(env, *args, ok=ok)
        outputs.extend([proc.stdout, proc.stderr])
        return proc.stdout

    first = json.loads(
        run(
            "dataset",
            "ingest",
            str(data),
            "--schema",
            str(schema),
            "--name",
            "gbsg2",
            "--payouts",
            str(payouts),
            "--json",
        )
    )
    manifest = first["manifest"]
    assert manifest["version"] == 1 and manifest["row_count"] == 229
    assert manifest["owner"] == OWNER and first["report"]["rows_rejected"] == 0
    version_dir = Path(env["LEDGER_DATA_DIR"]) / "vault" / OWNER / "datasets" / "gbsg2" / "v1"
    assert (version_dir / "manifest.json").is_file()

    text = run("dataset", "ingest", str(data), "--schema", str(schema), "--name", "gbsg2")
    assert "gbsg2 v2: 229 rows committed" in text and manifest["commitment"] in text

    listing = json.loads(run("dataset", "list", "--json"))
    assert [(d["name"], d["version"]) for d in listing["datasets"]] == [("gbsg2", 1), ("gbsg2", 2)]

    proof_path = tmp_path / "proof.json"
    proof = json.loads(
        run("dataset", "prove", "gbsg2", "3", "--version", "1", "--json", "--out", str(proof_path))
    )
    assert proof["root"] == manifest["commitment"] and proof["row"] == 3
    assert json.loads(proof_path.read_text()) == proof
    checked = json.loads(
        run("dataset", "verify-proof", str(proof_path), "--json", "--root", manifest["commitment"])
    )
    assert checked["valid"] is True
    assert "INVALID" in run(
        "dataset", "verify-proof", str(proof_path), "--root", "0x" + "ab" * 32, ok=False
    )

    by_record = json.loads(
        run("dataset", "prove", "gbsg2", "--record", "north-4", "-v", "1", "--json")
    )
    assert by_record["row"] == 3 and by_record["leaf"] == proof["leaf"]

    contributors = json.loads(run("dataset", "contributors", "gbsg2", "--version", "1", "--json"))
    assert contributors["contributors_root"] == manifest["contributors_root"]
    rows = {c["contributor_id"]: c["rows"] for c in contributors["contributors"]}
    assert rows == manifest["contributor_rows"]
    assert [c["payout"] for c in contributors["contributors"]].count(PAYEE) == 1

    # Errors: one line naming the rule, nothing written, no identifier shown.
    frame_text = data.read_text().splitlines()
    # Line 4 gets an age that is not an integer.
    cells = frame_text[3].split(",")
    header = frame_text[0].split(",")
    cells[header.index("age")] = "old"
    frame_text[3] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(frame_text) + "\n")

    failed = json.loads(
        run(
            "dataset",
            "ingest",
            str(bad),
            "--schema",
            str(schema),
            "--name",
            "x",
            "--json",
            ok=False,
        )
    )
    assert failed["report"]["offending"] == [{"line": 4, "column": "age", "rule": "type"}]
    assert "line 4 column 'age' (type)" in failed["error"]
    text = ledger(
        env, "dataset", "ingest", str(bad), "--schema", str(schema), "--name", "x", ok=False
    )
    outputs.extend([text.stdout, text.stderr])
    assert "error:" in text.stderr and "line 4 column 'age' (type)" in text.stderr
    assert not (Path(env["LEDGER_DATA_DIR"]) / "vault" / OWNER / "datasets" / "x" / "v1").exists()

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(schema.read_text() + "retention: forever\n")
    proc = ledger(
        env, "dataset", "ingest", str(data), "--schema", str(unknown), "--name", "x", ok=False
    )
    assert proc.stderr.startswith("error:") and "retention: unknown key" in proc.stderr

    leaked = {s for s in secrets for out in outputs if s in out}
    assert leaked == set()

"""Row proofs: every row proves against the commitment, tampering fails, a proof carries only
its own row, record ids resolve, and OpenZeppelin's JS library computes the same root."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledger.merkle import StandardMerkleTree
from ledger.vault.errors import ProofError, RowNotFoundError
from ledger.vault.ingest import TREE_FILE, ingest
from ledger.vault.manifest import Manifest
from ledger.vault.prove import RowProof, find_record, prove, verify_row_proof
from ledger.vault.schema import Schema
from ledger.vault.store import Vault
from tests.unit.vault.conftest import ROOT

REFERENCE = ROOT / "tests" / "unit" / "js" / "merkle_reference.js"


@pytest.fixture()
def committed(vault: Vault, gbsg2_csv: Path, gbsg2_schema: Schema) -> Manifest:
    return ingest(vault, gbsg2_csv, gbsg2_schema, "gbsg2")


def test_every_row_proves_and_tampering_fails(vault: Vault, committed: Manifest) -> None:
    for row in range(committed.row_count):
        proof = prove(vault, "gbsg2", None, row)
        assert proof.root == committed.commitment and proof.row == row
        assert verify_row_proof(proof)
        assert verify_row_proof(proof, committed.commitment)
    proof = prove(vault, "gbsg2", 1, 7)
    assert not verify_row_proof(proof, "0x" + "11" * 32)
    values = list(proof.values)
    values[-1] = str(int(values[-1]) + 1)  # another "cens"
    tampered = replace(proof, values=values)
    assert not verify_row_proof(tampered)
    other = prove(vault, "gbsg2", 1, 8)
    assert not verify_row_proof(replace(proof, proof=other.proof))


def test_a_proof_holds_only_its_own_row(vault: Vault, committed: Manifest) -> None:
    proof = prove(vault, "gbsg2", None, 3)
    document = json.dumps(proof.to_json())
    assert proof.columns[:2] == ["_row", "_salt"] and len(proof.values) == len(proof.columns)
    # No plain value of the row's strings: they are keccak hashes.
    assert "north-4" not in document and "MRN" not in document
    # Other rows appear at most as salted sibling hashes, never as values.
    siblings = set(proof.proof)
    for row in (0, 1, 2, 4):
        other = prove(vault, "gbsg2", None, row)
        assert other.leaf not in proof.values and not set(other.values[1:2]) & set(proof.values)
    assert len(siblings) == len(proof.proof)


def test_record_ids_resolve_to_rows(vault: Vault, committed: Manifest) -> None:
    assert find_record(vault, "gbsg2", 1, "north-1") == 0
    assert find_record(vault, "gbsg2", 1, "north-229") == 228
    with pytest.raises(RowNotFoundError, match="no such record id"):
        find_record(vault, "gbsg2", 1, "south-1")
    with pytest.raises(RowNotFoundError, match="row 229"):
        prove(vault, "gbsg2", None, 229)


def test_a_vault_altered_after_commit_is_detected(vault: Vault, committed: Manifest) -> None:
    tree = vault.version_dir("gbsg2", 1) / TREE_FILE
    nodes = bytearray(tree.read_bytes())
    last = len(nodes) - 32
    nodes[last : last + 32] = bytes(32)
    tree.write_bytes(bytes(nodes))
    failures = 0
    for row in range(committed.row_count):
        try:
            prove(vault, "gbsg2", None, row)
        except ProofError:
            failures += 1
    assert failures == 1


def test_proof_documents_round_trip_and_bad_ones_are_named(
    vault: Vault, committed: Manifest
) -> None:
    proof = prove(vault, "gbsg2", None, 5)
    assert RowProof.from_json(json.loads(json.dumps(proof.to_json()))) == proof
    broken = proof.to_json()
    broken["proof"] = "nope"
    with pytest.raises(ProofError) as caught:
        RowProof.from_json(broken)
    assert caught.value.field == "proof"
    with pytest.raises(ProofError, match="format"):
        RowProof.from_json({**proof.to_json(), "format": "other"})


def test_commitment_equals_openzeppelin_js_root(vault: Vault, committed: Manifest) -> None:
    node = shutil.which("node")
    assert node, "node is required (the project's toolchain installs it)"
    assert (ROOT / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir(), "run `npm ci`"
    rows = [prove(vault, "gbsg2", None, i) for i in range(committed.row_count)]
    cases: list[dict[str, Any]] = [
        {"values": [p.values for p in rows], "encoding": committed.leaf_encoding}
    ]
    result = subprocess.run(
        [node, str(REFERENCE)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (reference,) = json.loads(result.stdout)
    assert reference["root"] == committed.commitment
    for i, proof in enumerate(rows):
        assert reference["proofs"][i] == proof.proof
    # And Python's own StandardMerkleTree over the same values agrees.
    tree = StandardMerkleTree.of([p.values for p in rows], committed.leaf_encoding)
    assert tree.root == committed.commitment

"""A vault version's commitment registered in DataRegistry on a real anvil: verifyRecord accepts
the proof of a row from `ledger.vault.prove` and refuses a tampered row, a wrong proof and a
proof against another version; publishVersion links v2 whose rows prove against it."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_utils.crypto import keccak
from web3.logs import DISCARD

from ledger.samples import hospital_split
from ledger.vault.ingest import ingest
from ledger.vault.prove import prove
from ledger.vault.schema import load_schema
from ledger.vault.store import Vault
from tests.integration.chain import LedgerContracts, dev_accounts, transact

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _version(
    manifest_commitment: str, contributors_root: str, schema_hash: str
) -> tuple[bytes, bytes, bytes, bytes]:
    return (
        bytes.fromhex(manifest_commitment[2:]),
        bytes.fromhex(contributors_root[2:]),
        bytes.fromhex(schema_hash[2:]),
        keccak(text="metadata"),
    )


def test_registered_commitment_verifies_rows_on_chain(
    ledger: LedgerContracts, tmp_path: Path
) -> None:
    owner = dev_accounts(ledger.w3)[1]
    vault = Vault(tmp_path / "vault", owner)
    schema = load_schema(ROOT / "ledger" / "samples" / "schemas" / "diabetes.yaml")
    north, central = hospital_split("diabetes")[:2]
    first, second = tmp_path / "north.csv", tmp_path / "central.csv"
    north.to_csv(first, index=False)
    central.to_csv(second, index=False)
    v1 = ingest(vault, first, schema, "diabetes")
    receipt = transact(
        ledger.registry.functions.register(
            _version(v1.commitment, v1.contributors_root, v1.schema_hash), 7000, "ipfs://v1"
        ),
        owner,
    )
    (event,) = ledger.registry.events.DatasetRegistered().process_receipt(receipt, DISCARD)
    dataset_id = event["args"]["datasetId"]
    verify = ledger.registry.functions.verifyRecord

    for row in (0, 17, v1.row_count - 1):
        proof = prove(vault, "diabetes", 1, row)
        assert verify(dataset_id, 1, bytes.fromhex(proof.encoded[2:]), proof.proof).call()

    proof = prove(vault, "diabetes", 1, 17)
    encoded = bytearray(bytes.fromhex(proof.encoded[2:]))
    encoded[-1] ^= 1  # the last column's value, one bit off
    assert not verify(dataset_id, 1, bytes(encoded), proof.proof).call()
    other = prove(vault, "diabetes", 1, 18)
    assert not verify(dataset_id, 1, bytes.fromhex(proof.encoded[2:]), other.proof).call()
    assert not verify(dataset_id, 1, bytes.fromhex(proof.encoded[2:]), []).call()

    v2 = ingest(vault, second, schema, "diabetes")
    assert v2.previous_commitment == v1.commitment
    transact(
        ledger.registry.functions.publishVersion(
            dataset_id, _version(v2.commitment, v2.contributors_root, v2.schema_hash), "ipfs://v2"
        ),
        owner,
    )
    proof_v2 = prove(vault, "diabetes", 2, 5)
    assert verify(dataset_id, 2, bytes.fromhex(proof_v2.encoded[2:]), proof_v2.proof).call()
    assert not verify(dataset_id, 1, bytes.fromhex(proof_v2.encoded[2:]), proof_v2.proof).call()
    stored = ledger.registry.functions.versionOf(dataset_id, 2).call()
    assert "0x" + bytes(stored[0]).hex() == v2.commitment

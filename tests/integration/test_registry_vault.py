"""The registry on versions made by the vault's own ingest (real sample tables): the manifest
checks accept them, the public schema leaves identifiers out, and the on-chain commitment is the
one the vault computed; a second ingest is published as version 2 linking version 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.sender import TxSender
from ledger.registry.catalog import dataset_detail
from ledger.registry.errors import ManifestError
from ledger.registry.register import RegistryContext, publish_versions, register
from ledger.samples import hospital_split
from ledger.settings import ANVIL_DEV_KEYS
from ledger.vault.ingest import ingest
from ledger.vault.schema import load_schema
from ledger.vault.store import Vault
from tests.integration.indexing import deploy_for_index, open_index
from tests.unit.registry.vaultfiles import metadata_fields

SCHEMAS = Path(__file__).resolve().parents[2] / "ledger" / "samples" / "schemas"


def test_register_versions_ingested_by_the_vault(anvil: Anvil, tmp_path: Path) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployment, contracts = deploy_for_index(w3, tmp_path / "deployments")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    indexer, engine = open_index(w3, deployment, url)
    sender = TxSender(w3, ANVIL_DEV_KEYS[1])
    ctx = RegistryContext(w3, sender, deployment, contracts.registry, engine, tmp_path / "data")
    try:
        vault = Vault(ctx.vault_root, ctx.owner)
        schema = load_schema(SCHEMAS / "diabetes.yaml")
        export = tmp_path / "north.csv"
        hospital_split("diabetes", 3)[0].to_csv(export, index=False)
        first_manifest = ingest(vault, export, schema, "diabetes")
        meta = tmp_path / "meta.json"
        meta.write_text(json.dumps(metadata_fields()))

        # A commitment swapped in the manifest is not the root of the tree the vault stored.
        manifest_file = vault.version_dir("diabetes", 1) / "manifest.json"
        original = manifest_file.read_text()
        swapped = json.loads(original) | {"commitment": "0x" + "5a" * 32}
        manifest_file.write_text(json.dumps(swapped))
        with pytest.raises(ManifestError, match="root of the stored tree"):
            register(ctx, "diabetes", meta)
        manifest_file.write_text(original)

        first = register(ctx, "diabetes", meta)
        assert first.sent and first.commitment == first_manifest.commitment
        stored = contracts.registry.functions.versionOf(first.dataset_id, 1).call()
        assert "0x" + stored[0].hex() == first_manifest.commitment

        second_manifest = ingest(vault, export, schema, "diabetes")
        assert second_manifest.previous_commitment == first_manifest.commitment
        results = publish_versions(ctx, "diabetes")
        assert [(r.version, r.sent) for r in results] == [(1, False), (2, True)]

        indexer.run_once()
        detail = dataset_detail(engine, first.dataset_id)
        assert detail.version == 2 and detail.metadata is not None
        names = {c.name for c in detail.metadata.columns}
        assert {"age", "bmi", "progression"} <= names
        assert names.isdisjoint({"record_id", "patient_id", "department"})
        assert detail.metadata.record_count == 100  # 148 rows, rounded
        assert detail.versions[1].previous_commitment == first.commitment
    finally:
        engine.dispose()

"""The owner's governed data: schema, validation, de-identification, commitments, contributors.

Public API (see each module)::

    vault = Vault.for_owner(settings)                      # or Vault(root, owner)
    schema = load_schema(Path("schema.yaml"))              # or parse_schema(dict)
    manifest = ingest(vault, Path("export.csv"), schema, "name", on_error="reject")
    vault.latest_version("name"); vault.version_dir("name", 1); vault.data_dir("name", 1)
    Manifest.load(vault.version_dir("name", 1) / "manifest.json")
    proof = prove(vault, "name", None, row)                # RowProof; verify_row_proof(proof)
    load_contributors(vault, "name", version)              # [ContributorEntry]
"""

from ledger.vault.contributors import ContributorEntry, load_contributors
from ledger.vault.ingest import ingest
from ledger.vault.manifest import Manifest
from ledger.vault.prove import RowProof, find_record, prove, verify_row_proof
from ledger.vault.schema import Schema, load_schema, parse_schema
from ledger.vault.store import Vault

__all__ = [
    "ContributorEntry",
    "Manifest",
    "RowProof",
    "Schema",
    "Vault",
    "find_record",
    "ingest",
    "load_contributors",
    "load_schema",
    "parse_schema",
    "prove",
    "verify_row_proof",
]

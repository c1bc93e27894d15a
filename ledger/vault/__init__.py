"""The owner's governed data: schema, validation, de-identification, commitments, contributors.

Public API (see each module)::

    vault = Vault.for_owner(settings)                      # or Vault(root, owner)
    schema = load_schema(Path("schema.yaml"))              # or parse_schema(dict)
    manifest = ingest(vault, Path("export.csv"), schema, "name", on_error="reject")
        # ingest from ledger.vault.ingest, prove from ledger.vault.prove (below)
    vault.latest_version("name"); vault.version_dir("name", 1); vault.data_dir("name", 1)
    Manifest.load(vault.version_dir("name", 1) / "manifest.json")
    proof = prove(vault, "name", None, row)                # RowProof; verify_row_proof(proof)
    load_contributors(vault, "name", version)              # [ContributorEntry]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ledger.vault.contributors import ContributorEntry, load_contributors
    from ledger.vault.manifest import Manifest
    from ledger.vault.prove import RowProof, find_record, verify_row_proof
    from ledger.vault.schema import Schema, load_schema, parse_schema
    from ledger.vault.store import Vault

__all__ = [
    "ContributorEntry",
    "Manifest",
    "RowProof",
    "Schema",
    "Vault",
    "find_record",
    "load_contributors",
    "load_schema",
    "parse_schema",
    "verify_row_proof",
]

# `ingest` and `prove` are not re-exported: they are also the names of their submodules, and a
# lazily loaded package attribute would be the module once the submodule is imported.
# Names load their module on first use, so that importing a submodule (the `ledger`
# command imports this package's `cli`) does not import web3, pandas, SQLAlchemy ...
_MODULES: Final[dict[str, str]] = {
    "ContributorEntry": "ledger.vault.contributors",
    "Manifest": "ledger.vault.manifest",
    "RowProof": "ledger.vault.prove",
    "Schema": "ledger.vault.schema",
    "Vault": "ledger.vault.store",
    "find_record": "ledger.vault.prove",
    "load_contributors": "ledger.vault.contributors",
    "load_schema": "ledger.vault.schema",
    "parse_schema": "ledger.vault.schema",
    "verify_row_proof": "ledger.vault.prove",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

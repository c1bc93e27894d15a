"""Datasets on chain: FAIR metadata, registration and versions in DataRegistry, the catalog.

- `ledger.registry.metadata`: the owner's metadata file, the canonical document and its hash.
- `ledger.registry.manifest`: a vault version's manifest, checked against its files.
- `ledger.registry.register`: `register` (version 1) and `publish_versions` (2, 3, ...).
- `ledger.registry.records`: ``registration.json`` and the documents beside the vault.
- `ledger.registry.documents`: metadata documents in the database.
- `ledger.registry.catalog`: search and detail from the index (never rows).
- `ledger.registry.cli`: ``ledger dataset register|version|search|show``.
"""

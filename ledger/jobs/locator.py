"""Where a registered dataset version's files are on this executor: the owner vaults under the
data dir, found through each dataset's ``registration.json`` (written by ``ledger.registry``)."""

from __future__ import annotations

import json
from pathlib import Path

from ledger.jobs.steps import JobFailure

__all__ = ["VaultLocator"]


class VaultLocator:
    """Finds ``<data dir>/vault/<owner>/datasets/<name>/v<N>/data`` by chain and dataset id."""

    def __init__(self, data_dir: Path, chain_id: int, registry: str) -> None:
        self.root = data_dir / "vault"
        self.chain_id = chain_id
        self.registry = registry.lower()
        self._cache: dict[int, Path] = {}

    def data_dir(self, dataset_id: int, version: int) -> Path:
        """The version's ``data`` directory.

        Raises:
            JobFailure: ``dataset_unavailable`` when this executor holds no such version.
        """
        base = self._cache.get(dataset_id) or self._scan(dataset_id)
        if base is None:
            raise JobFailure("dataset_unavailable", f"this executor holds no dataset {dataset_id}")
        path = base / f"v{version}" / "data"
        if not path.is_dir():
            raise JobFailure(
                "dataset_unavailable", f"this executor holds no version {version} of {dataset_id}"
            )
        return path

    def _scan(self, dataset_id: int) -> Path | None:
        for record in sorted(self.root.glob("*/datasets/*/registration.json")):
            try:
                data = json.loads(record.read_text())
            except (OSError, ValueError):
                continue
            if (
                isinstance(data, dict)
                and data.get("dataset_id") == dataset_id
                and data.get("chain_id") == self.chain_id
                and str(data.get("registry", "")).lower() == self.registry
            ):
                self._cache[dataset_id] = record.parent
                return record.parent
        return None

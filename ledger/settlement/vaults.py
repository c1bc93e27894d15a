"""Where settlement finds each dataset's vault: weights of jobs and contributor payout addresses.

A vault dataset directory is ``<data dir>/vault/<owner>/datasets/<name>/`` (see the vault's
layout); its ``registration.json`` (written when the dataset is registered) names the dataset id.
Settlement reads only two things there: ``usage/<job id>.json`` (weights, `ledger.settlement.
weights`) and ``v<N>/contributors.parquet`` (pseudonym -> payout address). Tests and operators
can also name the directory of each dataset id explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pyarrow.parquet as pq
from eth_utils.address import is_address, to_checksum_address

from ledger.settlement.errors import VaultNotFoundError
from ledger.settlement.weights import JobWeights, load_weights

__all__ = ["VaultIndex", "read_payouts"]

_PAYOUT_COLUMNS = ("contributor_id", "payout")


def read_payouts(path: Path, dataset_id: int) -> dict[str, str]:
    """Pseudonym -> payout address ("" when none) from a version's ``contributors.parquet``.

    Raises:
        VaultNotFoundError: the file is missing, unreadable or lacks the columns.
    """
    try:
        table = pq.read_table(path, columns=list(_PAYOUT_COLUMNS))
    except FileNotFoundError:
        raise VaultNotFoundError(dataset_id, f"no contributor table at {path}") from None
    except (OSError, KeyError, ValueError) as exc:
        raise VaultNotFoundError(
            dataset_id, f"unreadable contributor table {path} ({type(exc).__name__})"
        ) from None
    payouts: dict[str, str] = {}
    for pseudonym, payout in zip(
        table.column("contributor_id").to_pylist(), table.column("payout").to_pylist(), strict=True
    ):
        if not isinstance(pseudonym, str):
            continue
        address = payout if isinstance(payout, str) and is_address(payout) else ""
        payouts[pseudonym.lower()] = to_checksum_address(address) if address else ""
    return payouts


class VaultIndex:
    """Finds vault dataset directories by dataset id.

    Args:
        data_dir: the ledger's data dir (vaults live under ``<data_dir>/vault``).
        dataset_dirs: explicit dataset id -> ``datasets/<name>`` directory; takes precedence.
        chain_id, registry: when given, registrations naming another chain id or registry
            address are skipped (dataset ids are only unique per registry).
    """

    def __init__(
        self,
        data_dir: Path,
        dataset_dirs: Mapping[int, Path] | None = None,
        *,
        chain_id: int | None = None,
        registry: str | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._explicit = dict(dataset_dirs or {})
        self._chain_id = chain_id
        self._registry = registry.lower() if registry else None
        self._found: dict[int, Path] | None = None

    def dataset_dir(self, dataset_id: int) -> Path:
        """The vault directory of `dataset_id`.

        Raises:
            VaultNotFoundError: no vault under the data dir registers this dataset.
        """
        if dataset_id in self._explicit:
            return self._explicit[dataset_id]
        if self._found is None:
            self._found = self._scan()
        try:
            return self._found[dataset_id]
        except KeyError:
            raise VaultNotFoundError(
                dataset_id,
                f"no vault under {self._data_dir / 'vault'} has a registration.json for it",
            ) from None

    def weights(self, job_id: str, dataset_id: int, version: int) -> JobWeights:
        """The weights of a job on one dataset version.

        Raises:
            VaultNotFoundError: the dataset's vault is not here.
            WeightsError: the weights are missing or malformed.
        """
        return load_weights(
            self.dataset_dir(dataset_id), job_id, dataset_id=dataset_id, version=version
        )

    def payouts(self, dataset_id: int, versions: list[int]) -> dict[str, str]:
        """Pseudonym -> payout address over `versions` (oldest first; a later listing wins).

        Versions whose directory is absent here are skipped; none at all is an error.

        Raises:
            VaultNotFoundError: no contributor table of any of the versions is here.
        """
        base = self.dataset_dir(dataset_id)
        merged: dict[str, str] = {}
        found = False
        for version in sorted(versions):
            path = base / f"v{version}" / "contributors.parquet"
            if not path.exists():
                continue
            found = True
            merged.update(read_payouts(path, dataset_id))
        if not found and versions:
            raise VaultNotFoundError(
                dataset_id, f"no contributors.parquet of versions {sorted(versions)} in {base}"
            )
        return merged

    def _scan(self) -> dict[int, Path]:
        found: dict[int, Path] = {}
        for registration in sorted(self._data_dir.glob("vault/*/datasets/*/registration.json")):
            try:
                data = json.loads(registration.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            dataset_id = data.get("dataset_id", data.get("datasetId"))
            chain_id, registry = data.get("chain_id"), data.get("registry")
            if self._chain_id is not None and chain_id is not None and chain_id != self._chain_id:
                continue
            if (
                self._registry is not None
                and isinstance(registry, str)
                and registry.lower() != self._registry
            ):
                continue
            if type(dataset_id) is int:
                found.setdefault(dataset_id, registration.parent)
        return found

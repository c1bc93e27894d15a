"""Fixtures of the vault unit tests: a fresh vault, sample hospital exports and schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.samples import hospital_split
from ledger.vault.schema import Schema, load_schema
from ledger.vault.store import Vault

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "ledger" / "samples" / "schemas"
OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture()
def vault(tmp_path: Path) -> Vault:
    """An empty vault of anvil's account 1 under a temporary data dir."""
    return Vault(tmp_path / "data" / "vault" / OWNER, OWNER)


@pytest.fixture(scope="session")
def gbsg2_schema() -> Schema:
    """The shipped schema of the gbsg2 hospital exports."""
    return load_schema(SCHEMAS / "gbsg2.yaml")


@pytest.fixture(scope="session")
def gbsg2_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hospital "north"'s export of gbsg2 as CSV (229 rows)."""
    path = tmp_path_factory.mktemp("samples") / "gbsg2-north.csv"
    hospital_split("gbsg2")[0].to_csv(path, index=False)
    return path


def write_schema(tmp_path: Path, text: str) -> Path:
    """Write a schema YAML and return its path."""
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    return path


def files_under(root: Path) -> list[Path]:
    """Every file under `root`, recursively."""
    return sorted(p for p in root.rglob("*") if p.is_file())

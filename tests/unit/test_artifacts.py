"""The shipped artifacts exist, load, and were built from the current contracts/src."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.chain.artifacts import CONTRACT_NAMES, load_artifact, source_hash
from ledger.chain.compiler import foundry_settings
from ledger.errors import ArtifactError, LedgerError

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "contracts" / "src"


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_artifact_loads(name: str) -> None:
    artifact = load_artifact(name)
    assert artifact.name == name
    assert any(item.get("type") == "constructor" for item in artifact.abi)
    assert len(artifact.bytecode) > len(artifact.deployed_bytecode) > 2


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_artifact_is_fresh(name: str) -> None:
    assert load_artifact(name).source_hash == source_hash(SRC), (
        f"ledger/artifacts/{name}.json was not built from the current contracts/src: "
        "run `.venv/bin/python scripts/compile` and commit ledger/artifacts"
    )


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_artifact_was_built_with_the_foundry_settings(name: str) -> None:
    raw = json.loads((ROOT / "ledger" / "artifacts" / f"{name}.json").read_text())
    assert raw["settings"] == foundry_settings(ROOT / "foundry.toml"), (
        "foundry.toml changed since the artifacts were built: run scripts/compile"
    )


def test_only_the_deployable_contracts_are_shipped() -> None:
    shipped = {p.stem for p in (ROOT / "ledger" / "artifacts").glob("*.json")}
    assert shipped == set(CONTRACT_NAMES)


@pytest.mark.parametrize("name", ["NoSuchContract", "../pyproject", ""])
def test_unknown_artifact_is_an_artifact_error(name: str) -> None:
    with pytest.raises(ArtifactError, match="scripts/compile") as info:
        load_artifact(name)
    assert info.value.contract == name
    assert isinstance(info.value, LedgerError)


def _copy_sources(tmp_path: Path) -> Path:
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy)
    return copy


def test_source_hash_follows_every_change(tmp_path: Path) -> None:
    src = _copy_sources(tmp_path)
    seen = {source_hash(src)}
    assert seen == {source_hash(SRC)}  # the path of the directory does not matter

    interface = src / "interfaces" / "IAccessGrants.sol"
    interface.write_bytes(interface.read_bytes() + b"\n")
    seen.add(source_hash(src))
    (src / "interfaces" / "IExtra.sol").write_text("interface IExtra {}\n")
    seen.add(source_hash(src))
    (src / "interfaces" / "IExtra.sol").rename(src / "IExtra.sol")
    seen.add(source_hash(src))
    (src / "IExtra.sol").unlink()
    assert len(seen) == 4
    assert source_hash(src) in seen  # back to the edited-interface state


def test_source_hash_of_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no Solidity sources"):
        source_hash(tmp_path)


def _checkout_copy(tmp_path: Path) -> Path:
    """A minimal copy of the checkout that ``scripts/compile --check`` can run in."""
    root = tmp_path / "checkout"
    shutil.copytree(SRC, root / "contracts" / "src")
    shutil.copytree(ROOT / "ledger", root / "ledger", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "compile", root / "scripts" / "compile")
    # Fresh in the copy whatever the state of the real checkout (test_artifact_is_fresh's job).
    current = source_hash(root / "contracts" / "src")
    for path in (root / "ledger" / "artifacts").glob("*.json"):
        artifact = json.loads(path.read_text())
        path.write_text(json.dumps({**artifact, "sourceHash": current}))
    return root


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "scripts" / "compile"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compile_check_names_the_stale_artifacts(tmp_path: Path) -> None:
    root = _checkout_copy(tmp_path)
    fresh = _check(root)
    assert fresh.returncode == 0, fresh.stderr
    assert "fresh" in fresh.stdout

    source = root / "contracts" / "src" / "AccessGrants.sol"
    source.write_text(source.read_text() + "\n// changed\n")
    stale = _check(root)
    assert stale.returncode == 1
    assert "stale" in stale.stderr and "scripts/compile" in stale.stderr
    for name in CONTRACT_NAMES:  # every artifact depends on all of contracts/src
        assert f"- {name} " in stale.stderr

    (root / "ledger" / "artifacts" / "UsageLedger.json").unlink()
    assert "UsageLedger (missing" in _check(root).stderr

"""Compiled contract artifacts shipped in ``ledger/artifacts`` and the hash that dates them.

``scripts/compile`` writes one JSON file per contract; this module reads them back as typed
`ContractArtifact` values. Each artifact records the `source_hash` of ``contracts/src`` it was
built from, so a stale artifact is detectable without a compiler.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, cast

from eth_typing import ABI, HexStr

from ledger.errors import ArtifactError

__all__ = [
    "CONTRACT_NAMES",
    "ContractArtifact",
    "load_artifact",
    "source_files",
    "source_hash",
]

#: The deployable contracts of ``contracts/src``, in deployment order.
CONTRACT_NAMES: Final = ("DataRegistry", "AccessGrants", "RevenueVault", "UsageLedger")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEX = re.compile(r"0x(?:[0-9a-f]{2})*")


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    """A compiled contract: its ABI, creation and runtime bytecode, and the sources' hash."""

    name: str
    abi: ABI
    bytecode: HexStr
    deployed_bytecode: HexStr
    source_hash: str


@functools.cache
def load_artifact(name: str) -> ContractArtifact:
    """Load the artifact of contract `name` (e.g. ``"AccessGrants"``) from ``ledger/artifacts``.

    Raises:
        ArtifactError: the name is not a contract name, or its file is missing, not JSON, or
            lacks a field or has one of the wrong type.
    """
    if not _NAME.fullmatch(name):
        raise ArtifactError("not a contract name", contract=name)
    resource = resources.files("ledger").joinpath("artifacts").joinpath(f"{name}.json")
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError("no artifact file", contract=name) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"unreadable artifact file ({exc})", contract=name) from exc
    if not isinstance(data, dict):
        raise ArtifactError("artifact is not a JSON object", contract=name)
    if data.get("contractName") != name:
        raise ArtifactError(f"contractName is {data.get('contractName')!r}", contract=name)
    abi = data.get("abi")
    if not isinstance(abi, list) or not all(isinstance(item, dict) for item in abi):
        raise ArtifactError("abi is not a list of objects", contract=name)
    return ContractArtifact(
        name=name,
        abi=cast(ABI, abi),
        bytecode=_hex_field(data, "bytecode", name),
        deployed_bytecode=_hex_field(data, "deployedBytecode", name),
        source_hash=_str_field(data, "sourceHash", name),
    )


def source_files(src_dir: Path) -> list[Path]:
    """Every Solidity file under `src_dir` (interfaces included), sorted by relative POSIX path.

    Raises:
        ArtifactError: `src_dir` holds no ``.sol`` file.
    """
    files = sorted(src_dir.rglob("*.sol"), key=lambda p: p.relative_to(src_dir).as_posix())
    if not files:
        raise ArtifactError(f"no Solidity sources under {src_dir}")
    return files


def source_hash(src_dir: Path) -> str:
    """The SHA-256 (hex) that identifies the contents of `src_dir`'s Solidity sources.

    It hashes a manifest with one line per file, in `source_files` order:
    ``<relative POSIX path> NUL <sha256 hex of the file's bytes> LF``. A change to any file's
    bytes, or a file added, removed or renamed, changes the hash.

    Raises:
        ArtifactError: `src_dir` holds no ``.sol`` file.
    """
    manifest = hashlib.sha256()
    for path in source_files(src_dir):
        relative = path.relative_to(src_dir).as_posix()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest.update(f"{relative}\0{digest}\n".encode())
    return manifest.hexdigest()


def _str_field(data: dict[str, Any], key: str, name: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ArtifactError(f"{key} is missing or not a string", contract=name)
    return value


def _hex_field(data: dict[str, Any], key: str, name: str) -> HexStr:
    value = _str_field(data, key, name)
    # Unlinked library placeholders (`__$...$__`) would also fail here: the contracts use none.
    if not _HEX.fullmatch(value) or value == "0x":
        raise ArtifactError(f"{key} is not 0x-prefixed lowercase hex bytecode", contract=name)
    return HexStr(value)

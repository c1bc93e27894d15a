"""Solidity compilation through py-solc-x and the project's ``scripts/solc`` (build time only).

There is no native solc here and none may be downloaded: ``scripts/solc`` is a Node front-end that
makes solcjs (WebAssembly, from ``node_modules``) answer like native solc, so this works only in a
checkout where ``npm ci`` (``make setup``) ran. The settings are read from ``foundry.toml`` so that
Python and forge produce the same bytecode.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import solcx
from solcx.exceptions import SolcError
from solcx.wrapper import get_solc_version

from ledger.errors import CompilationError

__all__ = [
    "CompiledContract",
    "CompileResult",
    "compile_contracts",
    "compiler_version",
    "foundry_settings",
]

_OUTPUTS: Final = (
    "abi",
    "evm.bytecode.object",
    "evm.bytecode.linkReferences",
    "evm.deployedBytecode.object",
    "evm.deployedBytecode.linkReferences",
)
# The foundry.toml keys that decide the bytecode; each one must be set explicitly.
_FOUNDRY_KEYS: Final = (
    "optimizer",
    "optimizer_runs",
    "evm_version",
    "via_ir",
    "bytecode_hash",
    "cbor_metadata",
    "remappings",
)


@dataclass(frozen=True, slots=True)
class CompiledContract:
    """One contract of a compiler run; bytecodes are ``0x``-prefixed hex (``"0x"`` if abstract)."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


@dataclass(frozen=True, slots=True)
class CompileResult:
    """The contracts of the selected sources, by name, and the compiler's warnings."""

    contracts: dict[str, CompiledContract]
    warnings: list[str]


def foundry_settings(foundry_toml: Path, profile: str = "default") -> dict[str, Any]:
    """The standard-JSON ``settings`` (without ``outputSelection``) that forge uses for `profile`.

    Mirrors what forge sends to solc for the keys in ``_FOUNDRY_KEYS``.

    Raises:
        CompilationError: the file is missing or unparsable, or the profile lacks one of the keys.
    """
    try:
        config = tomllib.loads(foundry_toml.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CompilationError(f"cannot read {foundry_toml}: {exc}") from exc
    section = config.get("profile", {}).get(profile, {})
    missing = [key for key in _FOUNDRY_KEYS if key not in section]
    if missing:
        raise CompilationError(
            f"{foundry_toml} [profile.{profile}] must set {', '.join(missing)} explicitly"
        )
    return {
        "evmVersion": section["evm_version"],
        "libraries": {},
        "metadata": {
            "appendCBOR": section["cbor_metadata"],
            "bytecodeHash": section["bytecode_hash"],
            "useLiteralContent": False,
        },
        "optimizer": {"enabled": section["optimizer"], "runs": section["optimizer_runs"]},
        "remappings": list(section["remappings"]),
        "viaIR": section["via_ir"],
    }


def compiler_version(solc: Path) -> str:
    """The compiler's version with its commit, e.g. ``"0.8.30+commit.73712a01"``.

    Raises:
        CompilationError: the compiler cannot be run or does not report a version.
    """
    try:
        return str(get_solc_version(solc, with_commit_hash=True))
    except (OSError, SolcError, ValueError) as exc:
        raise CompilationError(f"cannot get the version of {solc}: {exc}") from exc


def compile_contracts(
    sources: Sequence[Path], *, root: Path, settings: dict[str, Any], solc: Path
) -> CompileResult:
    """Compile `sources` (files under `root`) with standard JSON and return their contracts.

    Source unit names are paths relative to `root`, as forge names them; imports resolve against
    `root` (and the remappings in `settings`).

    Raises:
        CompilationError: the compiler is missing or fails, reports errors, two selected contracts
            share a name, or a contract needs library linking.
    """
    if not solc.is_file():
        raise CompilationError(f"no compiler front-end at {solc}; run `make setup`")
    root = root.resolve()
    units = {path.resolve().relative_to(root).as_posix(): path for path in sources}
    standard_input = {
        "language": "Solidity",
        "sources": {
            unit: {"content": path.read_text(encoding="utf-8")} for unit, path in units.items()
        },
        "settings": {
            **settings,
            "outputSelection": {unit: {"*": list(_OUTPUTS)} for unit in units},
        },
    }
    try:
        output = cast(
            dict[str, Any],
            solcx.compile_standard(
                standard_input, base_path=root, allow_paths=[root], solc_binary=solc
            ),
        )
    except SolcError as exc:
        raise CompilationError("solc reported errors", details=str(exc.message)) from exc
    except (OSError, ValueError) as exc:
        raise CompilationError(f"cannot run {solc}: {exc}") from exc

    warnings = [
        str(entry.get("formattedMessage", entry.get("message", "")))
        for entry in output.get("errors", [])
        if entry.get("severity") != "error"
    ]
    contracts: dict[str, CompiledContract] = {}
    for unit in units:
        for name, data in sorted(output.get("contracts", {}).get(unit, {}).items()):
            if name in contracts:
                raise CompilationError(
                    f"contract name {name} is defined in {contracts[name].source} and {unit}"
                )
            evm = data["evm"]
            if evm["bytecode"]["linkReferences"] or evm["deployedBytecode"]["linkReferences"]:
                raise CompilationError(f"{unit}:{name} needs library linking, which is unsupported")
            contracts[name] = CompiledContract(
                name=name,
                source=unit,
                abi=data["abi"],
                bytecode="0x" + evm["bytecode"]["object"],
                deployed_bytecode="0x" + evm["deployedBytecode"]["object"],
            )
    return CompileResult(contracts=contracts, warnings=warnings)

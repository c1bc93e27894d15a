"""Custom errors of the project's contracts, decoded into typed Python exceptions.

Every custom error in the shipped ABIs (the project's own and the OpenZeppelin ones they inherit)
gets a subclass of `ContractRevert` named after it, reachable as an attribute of this module:

    try:
        sender.send(grants.functions.revoke(terms))
    except reverts.AccessGrantsRevoked as exc:
        exc.arguments["grantId"]

`decode_revert` turns raw revert data into the matching exception, with its arguments decoded
and named as in the Solidity source; ``Error(string)`` and ``Panic(uint256)`` are decoded too.
"""

from __future__ import annotations

import functools
from typing import Any, Final, cast

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError

from ledger.chain.artifacts import CONTRACT_NAMES, load_artifact
from ledger.errors import ContractRevert

__all__ = ["ContractRevert", "decode_revert", "error_class", "known_errors", "revert_from"]

_BUILTIN: Final = {
    bytes.fromhex("08c379a0"): ("Error", [{"name": "message", "type": "string"}]),
    bytes.fromhex("4e487b71"): ("Panic", [{"name": "code", "type": "uint256"}]),
}


def _type_string(param: dict[str, Any]) -> str:
    """The canonical ABI type of a parameter, tuples expanded."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_type_string(c) for c in param.get("components", []))
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@functools.cache
def _registry() -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
    found: dict[bytes, tuple[str, list[dict[str, Any]]]] = dict(_BUILTIN)
    for contract in CONTRACT_NAMES:
        for raw in load_artifact(contract).abi:
            item = cast(dict[str, Any], raw)
            if item.get("type") != "error":
                continue
            inputs = [dict(i) for i in item.get("inputs", [])]
            signature = f"{item['name']}({','.join(_type_string(i) for i in inputs)})"
            found[keccak(text=signature)[:4]] = (str(item["name"]), inputs)
    return found


@functools.cache
def error_class(name: str) -> type[ContractRevert]:
    """The `ContractRevert` subclass for custom error `name`.

    Raises:
        AttributeError: no shipped contract declares an error of that name.
    """
    if name not in known_errors():
        raise AttributeError(f"no contract error named {name!r}")
    return type(name, (ContractRevert,), {"__doc__": f"The contract reverted with {name}."})


@functools.cache
def known_errors() -> frozenset[str]:
    """Names of every error this module can decode."""
    return frozenset(name for name, _ in _registry().values())


def decode_revert(data: bytes | str | None) -> ContractRevert | None:
    """The typed exception for raw revert `data`, or None if the selector is unknown or empty."""
    if data is None:
        return None
    try:
        raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
    except ValueError:
        return None
    entry = _registry().get(raw[:4]) if len(raw) >= 4 else None
    if entry is None:
        return None
    name, inputs = entry
    try:
        values = decode([_type_string(i) for i in inputs], raw[4:])
    except (DecodingError, ValueError):  # also malformed UTF-8 in an Error(string)
        return None
    arguments = {
        (param.get("name") or f"arg{index}"): _plain(value)
        for index, (param, value) in enumerate(zip(inputs, values, strict=True))
    }
    return error_class(name)(name, arguments)


def revert_from(exc: ContractLogicError) -> ContractRevert:
    """The typed exception for a web3 revert; an unknown error keeps its raw data."""
    data = exc.data if isinstance(exc.data, str) else None
    decoded = decode_revert(data)
    if decoded is not None:
        return decoded
    return ContractRevert("unknown", {"data": data, "message": str(exc)})


def _plain(value: Any) -> Any:
    # bytes32 values read best as 0x-hex; tuples as lists.
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def __getattr__(name: str) -> type[ContractRevert]:
    if name.startswith("__"):
        raise AttributeError(name)
    return error_class(name)

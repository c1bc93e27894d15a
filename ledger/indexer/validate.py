"""Checking the event mapping against the contracts' ABIs, so that a changed event fails at
start-up with the entry to edit, not in the middle of a backfill."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Set
from datetime import datetime
from typing import Any, Final

from eth_typing import ABI, ABIComponent

from ledger.errors import EventMappingError
from ledger.indexer.decode import event_abis
from ledger.indexer.mapping import EVENT_MAP, RAW_ONLY
from ledger.indexer.spec import POSITION_COLUMNS, Const, EventMap, RowMap, python_type

__all__ = ["unclassified_events", "validate_mapping"]

# Which ABI types may feed a column of each Python type.
_COMPATIBLE: Final[Mapping[type, tuple[str, ...]]] = {
    int: ("uint", "int"),
    str: ("address", "bytes", "string"),
    bool: ("bool",),
    datetime: ("uint",),
}


def validate_mapping(
    abis: Mapping[str, ABI], mapping: Mapping[tuple[str, str], EventMap] = EVENT_MAP
) -> None:
    """Check every entry of `mapping` against the contracts' `abis` (by contract name).

    Entries of contracts missing from `abis` are not checked.

    Raises:
        EventMappingError: an entry names an event or parameter the ABI lacks (with the closest
            name it has), reads a parameter of an incompatible type, or leaves a column unset.
    """
    for (contract, event), spec in mapping.items():
        if contract not in abis:
            continue
        events = event_abis(abis[contract])
        if event not in events:
            raise EventMappingError(
                contract, event, "the ABI has no such event", suggestion=_closest(event, events)
            )
        inputs: list[ABIComponent] = list(events[event].get("inputs", []))
        for row in spec.rows:
            _check_row(contract, event, inputs, row)
        for item in spec.touches:
            for path in item.columns.values():
                _resolve(contract, event, inputs, path)


def unclassified_events(abis: Mapping[str, ABI]) -> list[tuple[str, str]]:
    """ABI events neither mapped to tables nor listed in `RAW_ONLY`, sorted."""
    return sorted(
        (contract, event)
        for contract, abi in abis.items()
        for event in event_abis(abi)
        if (contract, event) not in EVENT_MAP and (contract, event) not in RAW_ONLY
    )


def _check_row(contract: str, event: str, inputs: list[ABIComponent], row: RowMap) -> None:
    fields = row.table.model_fields
    table = row.table.__name__
    for column, source in row.columns.items():
        if column not in fields:
            raise EventMappingError(
                contract,
                event,
                f"{table} has no column {column!r}",
                suggestion=_closest(column, fields),
            )
        if isinstance(source, Const):
            continue
        used = {str(s).split(".")[0] for s in row.columns.values() if not isinstance(s, Const)}
        abi_type = _resolve(contract, event, inputs, source, used=used)
        allowed = _COMPATIBLE.get(python_type(fields[column].annotation), ())
        if allowed and not abi_type.startswith(allowed):
            raise EventMappingError(
                contract, event, f"{table}.{column} cannot hold parameter {source!r} ({abi_type})"
            )
    missing = [
        name
        for name, info in fields.items()
        if name not in row.columns and name not in POSITION_COLUMNS and info.is_required()
    ]
    if missing:
        raise EventMappingError(
            contract, event, f"{table} columns left unset: {', '.join(missing)}"
        )


def _resolve(
    contract: str,
    event: str,
    inputs: list[ABIComponent],
    path: str,
    *,
    used: Set[str] = frozenset(),
) -> str:
    """The ABI type at `path` (``"grant.nonce"``), or EventMappingError naming the missing part.

    The suggestion is the closest name, or else the one top-level parameter no column reads
    (what a rename leaves behind: ``amount`` gone, ``price`` unread).
    """
    level: list[ABIComponent] = inputs
    abi_type = ""
    for depth, part in enumerate(path.split(".")):
        names = {str(item.get("name", "")): item for item in level}
        if part not in names:
            where = f" (in {path!r})" if part != path else ""
            unread = sorted(set(names) - used) if depth == 0 else []
            raise EventMappingError(
                contract,
                event,
                f"no parameter {part!r}{where}; it has {', '.join(sorted(names))}",
                suggestion=_closest(part, names) or (unread[0] if len(unread) == 1 else None),
            )
        item = names[part]
        abi_type = item["type"]
        level = list(item.get("components", []))
    return abi_type


def _closest(name: str, choices: Mapping[str, Any] | set[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None

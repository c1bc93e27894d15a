"""From decoded events to table rows: the mapping of `ledger.indexer.mapping`, compiled once.

`Projector.project` turns a chunk of events into the raw ``events`` rows, the rows of every
derived table, and the state entities to recompute (`Touched`). `Projector.touched` gives the
entities a set of stored events changed, which is what a rollback recomputes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlmodel import SQLModel

from ledger.indexer.decode import DecodedEvent
from ledger.indexer.mapping import EVENT_MAP
from ledger.indexer.spec import Const, EventMap, RowMap, python_type
from ledger.store.models import CreatedRow
from ledger.store.types import utc_from_timestamp

__all__ = ["Projection", "Projector", "Touched", "event_row"]

#: State name -> key columns -> the key values of the entities to recompute.
Touched = dict[str, dict[tuple[str, ...], set[tuple[Any, ...]]]]

Getter = Callable[[Mapping[str, Any]], Any]


@dataclass
class Projection:
    """Rows to insert for a chunk of events, and the state entities they change."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[type[SQLModel], list[dict[str, Any]]] = field(default_factory=dict)
    touched: Touched = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        """Rows of derived tables (the raw events not counted)."""
        return sum(len(rows) for rows in self.rows.values())


class Projector:
    """Applies an event mapping (default `EVENT_MAP`, already validated) to decoded events."""

    def __init__(self, mapping: Mapping[tuple[str, str], EventMap] = EVENT_MAP) -> None:
        self._rows: dict[tuple[str, str], list[tuple[type[SQLModel], _RowBuilder]]] = {}
        self._touches: dict[tuple[str, str], list[tuple[str, tuple[str, ...], list[Getter]]]] = {}
        for key, spec in mapping.items():
            self._rows[key] = [(row.table, _RowBuilder(row)) for row in spec.rows]
            self._touches[key] = [
                (t.state, tuple(t.columns), [_getter(path) for path in t.columns.values()])
                for t in spec.touches
            ]

    def project(self, events: Iterable[DecodedEvent]) -> Projection:
        """The rows of `events` (block times filled in) and the entities they touch.

        Raises:
            KeyError, TypeError: an event's arguments do not fit its (validated) mapping, which
                means the ABI changed after validation.
        """
        projection = Projection()
        rows: dict[type[SQLModel], list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            projection.events.append(event_row(event))
            key = (event.contract, event.event)
            for table, build in self._rows.get(key, ()):
                rows[table].append(build(event))
            self._touch(projection.touched, key, event.args)
        projection.rows = dict(rows)
        return projection

    def touched(self, events: Iterable[tuple[str, str, Mapping[str, Any]]]) -> Touched:
        """The state entities changed by stored events, given as ``(contract, event, args)``."""
        result: Touched = {}
        for contract, event, args in events:
            self._touch(result, (contract, event), args)
        return result

    def _touch(self, into: Touched, key: tuple[str, str], args: Mapping[str, Any]) -> None:
        for state, columns, getters in self._touches.get(key, ()):
            values = tuple(get(args) for get in getters)
            into.setdefault(state, {}).setdefault(columns, set()).add(values)


def event_row(event: DecodedEvent) -> dict[str, Any]:
    """The raw ``events`` row of a decoded event (its block time must be known)."""
    return {
        "block_number": event.block_number,
        "log_index": event.log_index,
        "tx_hash": event.tx_hash,
        "block_time": event.block_time,
        "block_hash": event.block_hash,
        "tx_index": event.tx_index,
        "address": event.address,
        "contract": event.contract,
        "event": event.event,
        "args": event.args if event.args_json is None else event.args_json,
    }


class _RowBuilder:
    """Builds the row of one table from one event."""

    def __init__(self, spec: RowMap) -> None:
        fields = spec.table.model_fields
        self._state = issubclass(spec.table, CreatedRow)
        self._defaults = {
            name: info.default.value if isinstance(info.default, Enum) else info.default
            for name, info in fields.items()
            if name not in spec.columns and not info.is_required()
        }
        self._columns: list[tuple[str, Getter]] = []
        for column, source in spec.columns.items():
            get = _const(source.value) if isinstance(source, Const) else _getter(source)
            if python_type(fields[column].annotation) is datetime:
                get = _as_time(get)
            self._columns.append((column, get))

    def __call__(self, event: DecodedEvent) -> dict[str, Any]:
        args = event.args
        row = dict(self._defaults)
        row["block_number"] = event.block_number
        row["log_index"] = event.log_index
        row["tx_hash"] = event.tx_hash
        row["block_time"] = event.block_time
        if self._state:
            row["updated_block"] = event.block_number
            row["updated_at"] = event.block_time
        for column, get in self._columns:
            row[column] = get(args)
        return row


def _getter(path: str) -> Getter:
    parts = path.split(".")
    if len(parts) == 1:
        name = parts[0]
        return lambda args: args[name]

    def get(args: Mapping[str, Any]) -> Any:
        value: Any = args
        for part in parts:
            value = value[part]
        return value

    return get


def _const(value: object) -> Getter:
    return lambda _args: value


def _as_time(get: Getter) -> Getter:
    return lambda args: utc_from_timestamp(get(args))

"""The vocabulary of the event mapping: rows (`to`), fixed values (`Const`), state to
recompute (`touch`), and one `EventMap` per event. The mapping itself is in
`ledger.indexer.mapping`."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from sqlmodel import SQLModel

from ledger.store.models import CreatedRow, LoggedRow

__all__ = [
    "POSITION_COLUMNS",
    "Const",
    "EventMap",
    "RowMap",
    "Touch",
    "python_type",
    "to",
    "touch",
]

#: Columns the indexer fills from the log's position, for every row.
POSITION_COLUMNS: Final = frozenset(set(LoggedRow.model_fields) | set(CreatedRow.model_fields))


@dataclass(frozen=True, slots=True)
class Const:
    """A fixed column value (e.g. version 1 of a dataset at registration)."""

    value: object


@dataclass(frozen=True, slots=True)
class RowMap:
    """One row of `table` per event: column name to parameter path or `Const`."""

    table: type[SQLModel]
    columns: Mapping[str, str | Const]


@dataclass(frozen=True, slots=True)
class Touch:
    """State rows of `state` to recompute: those whose `columns` equal these parameters."""

    state: str
    columns: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class EventMap:
    """What one event writes (`rows`) and which state it changes (`touches`)."""

    rows: tuple[RowMap, ...] = ()
    touches: tuple[Touch, ...] = field(default=())


def to(table: type[SQLModel], **columns: str | Const) -> RowMap:
    """A row of `table`: ``to(Claim, account="account", amount="amount")``."""
    return RowMap(table, MappingProxyType(columns))


def touch(state: str, **columns: str) -> Touch:
    """Entities of `state` to recompute: ``touch("grants", grant_id="grantId")``."""
    return Touch(state, MappingProxyType(columns))


def python_type(annotation: Any) -> Any:
    """The type a column holds: `int` for ``int | None``, the annotation itself otherwise."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation

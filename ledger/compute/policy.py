"""The release policy: what may leave the compute service, checked outside the sandbox.

A template's result is released only if it fits the template's declared shape exactly:
objects with the declared keys, lists of bounded length, finite numbers, counts, and strings only
from the labels the request itself declared (category names, feature names). Counts from 1 to
``k - 1`` must be suppressed (null; an empty cell reveals no one and may show 0), and so must
every statistic in the same object as a suppressed count (a mean over three patients is as
revealing as the count three). Custom code's output passes
`release_custom`, which accepts one declared aggregate shape and refuses everything else.

Shapes are small trees of `Shape` nodes; `check_release` raises `ReleaseRefusedError` naming the
path of the first violation and never echoes the offending value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ledger.compute.errors import InvalidRequestError, ReleaseRefusedError

__all__ = [
    "MAX_CUSTOM_AGGREGATES",
    "Count",
    "Flag",
    "Integer",
    "Label",
    "ListOf",
    "Number",
    "Obj",
    "Shape",
    "Stat",
    "check_k",
    "check_release",
    "custom_shape",
    "release_custom",
    "suppress_below",
]

#: Most aggregates one custom result may hold.
MAX_CUSTOM_AGGREGATES: Final = 64
#: Smallest and largest suppression threshold a request may ask for.
K_MIN: Final = 2
K_MAX: Final = 1_000_000
_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


class Shape:
    """A node of a result shape."""

    def describe(self) -> object:
        """A JSON description of the node (for ``ledger algorithm show``)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Shape):
    """A finite number (not a boolean)."""

    def describe(self) -> object:
        return "number"


@dataclass(frozen=True)
class Integer(Shape):
    """A non-negative integer that is not a count of rows (e.g. a number of suppressed steps)."""

    def describe(self) -> object:
        return "integer"


@dataclass(frozen=True)
class Flag(Shape):
    """A boolean (e.g. whether an aggregate was suppressed)."""

    def describe(self) -> object:
        return "boolean"


@dataclass(frozen=True)
class Count(Shape):
    """A count of rows: 0 or an integer >= k, or null when suppressed (an empty cell reveals
    no one, so it may be shown)."""

    def describe(self) -> object:
        return "count (0 or >= k, null if suppressed)"


@dataclass(frozen=True)
class Stat(Shape):
    """A statistic over the rows counted by the sibling `Count`: a finite number, or null (and
    null whenever that count is suppressed)."""

    def describe(self) -> object:
        return "number (null if suppressed)"


@dataclass(frozen=True)
class Label(Shape):
    """A label the request declared (a category, a feature name): one of `allowed`."""

    allowed: frozenset[str | int | float] = frozenset()

    def describe(self) -> object:
        return "declared label"


@dataclass(frozen=True)
class Obj(Shape):
    """An object with exactly these keys."""

    fields: Mapping[str, Shape] = field(default_factory=dict)

    def describe(self) -> object:
        return {key: node.describe() for key, node in self.fields.items()}


@dataclass(frozen=True)
class ListOf(Shape):
    """A list of at most `max_length` items of one shape."""

    item: Shape
    max_length: int

    def describe(self) -> object:
        return [self.item.describe(), f"at most {self.max_length} items"]


def check_k(k: object) -> int:
    """`k` checked as a suppression threshold.

    Raises:
        InvalidRequestError: `k` is not an integer in [2, 1,000,000].
    """
    if isinstance(k, bool) or not isinstance(k, int) or not K_MIN <= k <= K_MAX:
        raise InvalidRequestError("k", f"must be an integer from {K_MIN} to {K_MAX}")
    return k


def suppress_below(count: int, k: int) -> int | None:
    """`count` if it is at least `k`, else None (suppressed)."""
    return count if count >= k else None


def check_release(result: object, shape: Shape, k: int) -> dict[str, Any]:
    """`result` if it fits `shape` and the suppression rules for `k`.

    Raises:
        ReleaseRefusedError: the first violation, by path (the value is never shown).
    """
    if not isinstance(result, dict):
        raise ReleaseRefusedError("", "a result must be a JSON object")
    _check(result, shape, k, "")
    return result


def _check(value: object, shape: Shape, k: int, path: str) -> None:
    if isinstance(shape, Obj):
        _check_obj(value, shape, k, path)
    elif isinstance(shape, ListOf):
        if not isinstance(value, list):
            raise ReleaseRefusedError(path, "must be a list")
        if len(value) > shape.max_length:
            raise ReleaseRefusedError(path, f"may hold at most {shape.max_length} items")
        for i, item in enumerate(value):
            _check(item, shape.item, k, f"{path}[{i}]")
    elif isinstance(shape, Count):
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise ReleaseRefusedError(path, "a count must be an integer or null")
        if 0 < value < k:
            raise ReleaseRefusedError(path, f"a count of 1 to k-1={k - 1} must be suppressed")
        if value < 0:
            raise ReleaseRefusedError(path, "a count cannot be negative")
    elif isinstance(shape, Integer):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ReleaseRefusedError(path, "must be a non-negative integer")
    elif isinstance(shape, Number | Stat):
        if value is None and isinstance(shape, Stat):
            return
        if not _is_number(value):
            raise ReleaseRefusedError(path, "must be a finite number")
    elif isinstance(shape, Flag):
        if not isinstance(value, bool):
            raise ReleaseRefusedError(path, "must be true or false")
    elif isinstance(shape, Label):
        if isinstance(value, bool) or value not in shape.allowed:
            raise ReleaseRefusedError(path, "must be one of the labels the request declared")
    else:  # pragma: no cover - every node kind is handled above
        raise ReleaseRefusedError(path, f"unknown shape {type(shape).__name__}")


def _check_obj(value: object, shape: Obj, k: int, path: str) -> None:
    if not isinstance(value, dict):
        raise ReleaseRefusedError(path, "must be an object")
    if set(value) != set(shape.fields):
        extra = sorted(str(key) for key in set(value) - set(shape.fields))
        missing = sorted(set(shape.fields) - set(value))
        rule = f"unexpected keys {extra}" if extra else f"missing keys {missing}"
        raise ReleaseRefusedError(path, f"keys must be exactly {sorted(shape.fields)} ({rule})")
    suppressed = any(
        isinstance(node, Count) and value[key] is None for key, node in shape.fields.items()
    )
    for key, node in shape.fields.items():
        sub = f"{path}.{key}" if path else key
        if suppressed and isinstance(node, Stat) and value[key] is not None:
            raise ReleaseRefusedError(sub, "a statistic over a suppressed count must be null")
        _check(value[key], node, k, sub)


def release_custom(
    payload: object,
    k: int,
    *,
    declared: Collection[str] | None = None,
    rows_total: int | None = None,
    max_aggregates: int = MAX_CUSTOM_AGGREGATES,
) -> dict[str, Any]:
    """The releasable form of custom code's output, or a refusal.

    The only accepted shape is ``{"aggregates": {name: {"value": number, "n": int}}}``: at most
    `max_aggregates` names matching ``[a-z][a-z0-9_]{0,63}`` (and among `declared`, if given),
    each a finite number over `n` rows. An aggregate over fewer than `k` rows is suppressed
    (``value`` and ``n`` null, ``suppressed`` true); `n` above `rows_total` is refused as
    implausible. Strings, lists, nesting and extra keys are refused.

    Raises:
        ReleaseRefusedError: the payload is not that shape (the path names the offending part).
    """
    k = check_k(k)
    if not isinstance(payload, dict) or set(payload) != {"aggregates"}:
        raise ReleaseRefusedError(
            "", 'custom output must be {"aggregates": {...}} and nothing else'
        )
    aggregates = payload["aggregates"]
    if not isinstance(aggregates, dict):
        raise ReleaseRefusedError("aggregates", "must be an object of named aggregates")
    if not 1 <= len(aggregates) <= max_aggregates:
        raise ReleaseRefusedError("aggregates", f"must hold 1 to {max_aggregates} aggregates")
    allowed = None if declared is None else frozenset(declared)
    released: dict[str, Any] = {}
    for position, (name, entry) in enumerate(aggregates.items()):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ReleaseRefusedError(
                f"aggregates[{position}]", "names must match [a-z][a-z0-9_]{0,63}"
            )
        if allowed is not None and name not in allowed:
            raise ReleaseRefusedError(f"aggregates.{name}", "is not a declared aggregate name")
        path = f"aggregates.{name}"
        if not isinstance(entry, dict) or set(entry) != {"value", "n"}:
            raise ReleaseRefusedError(path, 'must be {"value": number, "n": integer}')
        value, n = entry["value"], entry["n"]
        if not _is_number(value):
            raise ReleaseRefusedError(f"{path}.value", "must be a finite number")
        if not _is_int(n) or n < 0:
            raise ReleaseRefusedError(f"{path}.n", "must be a non-negative integer")
        if rows_total is not None and n > rows_total:
            raise ReleaseRefusedError(f"{path}.n", "exceeds the rows of the input datasets")
        if n < k:
            released[name] = {"value": None, "n": None, "suppressed": True}
        else:
            released[name] = {"value": value, "n": n, "suppressed": False}
    return {"aggregates": released}


def custom_shape(names: Sequence[str]) -> Obj:
    """The shape `release_custom` produces for aggregates `names` (for re-checking)."""
    entry = Obj({"value": Stat(), "n": Count(), "suppressed": Flag()})
    return Obj({"aggregates": Obj(dict.fromkeys(names, entry))})


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)

"""The public parameters of a secure computation, as sent to every party.

A task is what every party may know: the kind of computation, the column names, the filters, the
model's hyper-parameters and the minimum rows per party. It never holds a path or a row. Tasks
travel to the party processes as JSON (`task_to_json` / `task_from_json`).

Filters are a conjunction of ``(column, op, value)`` triples (``op`` one of `FILTER_OPS`; ``in``
and ``not in`` take a list), the same shape as pyarrow's ``filters=`` argument. Objects with
``column``, ``op`` and ``value`` attributes are accepted too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ledger.compute.mpc.errors import MpcParameterError

__all__ = [
    "DEFAULT_MIN_ROWS",
    "FILTER_OPS",
    "MAX_FEATURES",
    "MAX_ITERATIONS",
    "AggregateTask",
    "Filter",
    "LogisticTask",
    "Scalar",
    "Task",
    "normalize_filters",
    "task_from_json",
    "task_to_json",
]

#: Fewest usable rows a party must hold, unless the caller asks for more.
DEFAULT_MIN_ROWS = 10
#: Most features of a secure logistic regression (the Hessian has (d+1)(d+2)/2 entries).
MAX_FEATURES = 200
#: Most Newton iterations of a secure logistic regression.
MAX_ITERATIONS = 1_000_000
#: Filter operators.
FILTER_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")

Scalar = str | int | float | bool
#: One filter: (column, op, value); value is a list for ``in`` / ``not in``.
Filter = tuple[str, str, Scalar | tuple[Scalar, ...]]

_COLUMN = re.compile(r"^[^\x00-\x1f]{1,128}$")


@dataclass(frozen=True)
class AggregateTask:
    """Secure sum or mean of one numeric column (nulls and NaN skipped)."""

    kind: Literal["sum", "mean"]
    column: str
    filters: tuple[Filter, ...] = ()
    min_rows: int = DEFAULT_MIN_ROWS

    def columns(self) -> tuple[str, ...]:
        """Every column the task reads (the column, then filter columns)."""
        return _unique((self.column, *(f[0] for f in self.filters)))


@dataclass(frozen=True)
class LogisticTask:
    """Secure L2-regularised logistic regression by Newton iterations on summed statistics."""

    features: tuple[str, ...]
    label: str
    positive_label: Scalar | None
    l2: float
    max_iter: int
    tol: float
    standardize: bool = True
    filters: tuple[Filter, ...] = ()
    min_rows: int = DEFAULT_MIN_ROWS
    kind: Literal["logistic"] = "logistic"

    def columns(self) -> tuple[str, ...]:
        """Every column the task reads (features, label, then filter columns)."""
        return _unique((*self.features, self.label, *(f[0] for f in self.filters)))


Task = AggregateTask | LogisticTask


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def check_column(field: str, name: object) -> str:
    """`name` if it is a usable data column name; system columns (``_row``...) are refused."""
    if not isinstance(name, str) or not _COLUMN.match(name):
        raise MpcParameterError(field, "a column name of 1 to 128 printable characters", name)
    if name.startswith("_"):
        raise MpcParameterError(field, "a data column, not a system column (leading '_')", name)
    return name


def _check_scalar(field: str, value: object) -> Scalar:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise MpcParameterError(field, "a string, integer, finite float or boolean", value)


def normalize_filters(filters: object) -> tuple[Filter, ...]:
    """Filters as a tuple of ``(column, op, value)``; raises `MpcParameterError` naming the rule."""
    if filters is None:
        return ()
    if isinstance(filters, str | bytes) or not isinstance(filters, Sequence):
        raise MpcParameterError("filters", "a sequence of (column, op, value)", type(filters))
    normalized: list[Filter] = []
    for i, item in enumerate(filters):
        field = f"filters[{i}]"
        if all(hasattr(item, a) for a in ("column", "op", "value")):
            parts: Sequence[Any] = (item.column, item.op, item.value)
        elif isinstance(item, Sequence) and not isinstance(item, str | bytes) and len(item) == 3:
            parts = item
        else:
            raise MpcParameterError(field, "a (column, op, value) triple", item)
        column, op, value = parts
        check_column(f"{field}.column", column)
        if op == "=":
            op = "=="
        if op not in FILTER_OPS:
            raise MpcParameterError(f"{field}.op", f"one of {', '.join(FILTER_OPS)}", op)
        if op in ("in", "not in"):
            if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
                raise MpcParameterError(f"{field}.value", "a non-empty list for 'in'", value)
            values = tuple(_check_scalar(f"{field}.value", v) for v in value)
            normalized.append((column, op, values))
        else:
            normalized.append((column, op, _check_scalar(f"{field}.value", value)))
    return tuple(normalized)


def task_to_json(task: Task) -> dict[str, Any]:
    """The task as a JSON-ready dict (filters as lists)."""
    filters = [[c, o, list(v) if isinstance(v, tuple) else v] for c, o, v in task.filters]
    if isinstance(task, AggregateTask):
        return {
            "kind": task.kind,
            "column": task.column,
            "filters": filters,
            "min_rows": task.min_rows,
        }
    return {
        "kind": task.kind,
        "features": list(task.features),
        "label": task.label,
        "positive_label": task.positive_label,
        "l2": task.l2,
        "max_iter": task.max_iter,
        "tol": task.tol,
        "standardize": task.standardize,
        "filters": filters,
        "min_rows": task.min_rows,
    }


def task_from_json(data: dict[str, Any]) -> Task:
    """Rebuild a task sent by `task_to_json` (inside a party process, which checks the column
    names again rather than trusting the coordinator)."""
    filters = normalize_filters(data["filters"])
    if data["kind"] in ("sum", "mean"):
        column = check_column("column", data["column"])
        return AggregateTask(data["kind"], column, filters, int(data["min_rows"]))
    if data["kind"] == "logistic":
        return LogisticTask(
            features=tuple(check_column("features", f) for f in data["features"]),
            label=check_column("label", data["label"]),
            positive_label=data["positive_label"],
            l2=float(data["l2"]),
            max_iter=int(data["max_iter"]),
            tol=float(data["tol"]),
            standardize=bool(data["standardize"]),
            filters=filters,
            min_rows=int(data["min_rows"]),
        )
    raise MpcParameterError("kind", "one of sum, mean, logistic", data["kind"])

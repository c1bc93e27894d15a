"""What a party computes on its own rows, before anything is secret-shared.

Runs inside a party process, which sees only its own ``data/`` directory. Everything here returns
local aggregates (sums, counts, gradients, Hessians) that the protocols secret-share; rows never
leave these functions. Errors name the party, the column and the rule, never a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ledger.compute.mpc.errors import MpcColumnError, MpcDataError, MpcTooFewRowsError
from ledger.compute.mpc.spec import AggregateTask, Filter, LogisticTask, Scalar

__all__ = [
    "LocalRows",
    "load_aggregate",
    "load_logistic",
    "local_gradient_hessian",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LocalRows:
    """A party's usable rows for one task: feature matrix `x` (n x d) and labels `y` (or None)."""

    x: FloatArray
    y: FloatArray | None

    @property
    def n(self) -> int:
        """Number of usable rows."""
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        # Never show values: only the shape.
        return f"LocalRows(n={self.n}, d={self.x.shape[1]})"


def _files(data_dir: Path, party: int) -> list[Path]:
    """The Parquet files of a data directory, as pyarrow's dataset discovery finds them: every
    file below it, skipping names that start with "." or "_"."""
    try:
        files = sorted(
            path
            for path in data_dir.rglob("*")
            if path.is_file()
            and not any(part.startswith((".", "_")) for part in path.relative_to(data_dir).parts)
        )
    except OSError as exc:
        raise MpcDataError(party, "data", "is not a readable directory") from exc
    if not files:
        raise MpcDataError(party, "data", "holds no Parquet files")
    return files


def _open(data_dir: Path, party: int, columns: Sequence[str], filters: Sequence[Filter]) -> Any:
    """The `columns` of the rows the `filters` keep (pyarrow.parquet and compute only: they
    import in half the time of pyarrow.dataset, which matters for a cold party)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = []
    for path in _files(data_dir, party):
        try:
            parquet = pq.ParquetFile(path)
            names = set(parquet.schema_arrow.names)
            for column in columns:
                if column not in names:
                    raise MpcColumnError(party, column)
            tables.append(parquet.read(columns=list(columns)))
        except (OSError, pa.ArrowException) as exc:
            raise MpcDataError(party, "data", "holds a file that is not readable Parquet") from exc
    try:
        table = pa.concat_tables(tables)
    except pa.ArrowException as exc:
        raise MpcDataError(party, "data", "has Parquet files of different schemas") from exc
    if not filters:
        return table
    mask = None
    for column, op, value in filters:
        array = table.column(column)
        try:
            values: list[Any] = list(value) if isinstance(value, tuple) else [value]
            value_set = pa.array(values)
            if pa.types.is_temporal(array.type) and pa.types.is_string(value_set.type):
                # Dates and times are compared with ISO 8601 strings, cast to the column's type.
                value_set = value_set.cast(array.type)
                value = value_set[0]
            if op in ("in", "not in"):
                term = pc.is_in(array, value_set=value_set)
                if op == "not in":
                    term = pc.invert(term)
            else:
                function = {
                    "==": pc.equal,
                    "!=": pc.not_equal,
                    "<": pc.less,
                    "<=": pc.less_equal,
                    ">": pc.greater,
                    ">=": pc.greater_equal,
                }[op]
                term = function(array, value)
        except (pa.ArrowException, TypeError) as exc:
            raise MpcDataError(party, column, "cannot be compared with the filter's value") from exc
        term = pc.fill_null(term, False)  # a null never matches, as in SQL
        mask = term if mask is None else pc.and_(mask, term)
    return table.filter(mask)


def _numeric(table: Any, column: str, party: int) -> FloatArray:
    import pyarrow as pa

    array = table.column(column)
    kind = array.type
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
    ):
        raise MpcColumnError(party, column, "is not numeric (integer, float, decimal or bool)")
    values = np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    if np.isinf(values).any():
        raise MpcDataError(party, column, "has infinite values")
    return values


def _label(table: Any, column: str, positive: Scalar | None, party: int) -> FloatArray:
    import pyarrow as pa
    import pyarrow.compute as pc

    array = table.column(column)
    if positive is None:
        values = _numeric(table, column, party)
        present = values[~np.isnan(values)]
        if not np.isin(present, (0.0, 1.0)).all():
            raise MpcColumnError(
                party, column, "must hold 0/1 or true/false unless positive_label is given"
            )
        return values
    try:
        equal = pc.equal(array, pa.scalar(positive))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise MpcColumnError(
            party, column, "cannot be compared with positive_label (type differs)"
        ) from exc
    out = np.asarray(equal.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return out  # nulls became NaN, dropped with the incomplete rows


def _require_rows(n: int, minimum: int, party: int) -> None:
    if n < minimum:
        raise MpcTooFewRowsError(party, minimum)


def load_aggregate(data_dir: Path, task: AggregateTask, party: int) -> LocalRows:
    """The non-null, non-NaN values of `task.column` among the rows the filters keep."""
    table = _open(data_dir, party, task.columns(), task.filters)
    values = _numeric(table, task.column, party)
    values = values[~np.isnan(values)]
    _require_rows(values.shape[0], task.min_rows, party)
    return LocalRows(values.reshape(-1, 1), None)


def load_logistic(data_dir: Path, task: LogisticTask, party: int) -> LocalRows:
    """Complete cases (no null or NaN in any feature or the label) among the filtered rows."""
    table = _open(data_dir, party, task.columns(), task.filters)
    x = np.column_stack([_numeric(table, f, party) for f in task.features])
    y = _label(table, task.label, task.positive_label, party)
    keep = ~(np.isnan(x).any(axis=1) | np.isnan(y))
    x, y = x[keep], y[keep]
    _require_rows(x.shape[0], task.min_rows, party)
    return LocalRows(np.ascontiguousarray(x), y)


def local_gradient_hessian(
    z: FloatArray, y: FloatArray, theta: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Gradient and Hessian of this party's summed log-loss at `theta` (intercept last).

    ``z`` holds the standardized features with a trailing column of ones. Returns the gradient
    (d+1) and the Hessian's upper triangle, row by row ((d+1)(d+2)/2 values).
    """
    margin = z @ theta
    p = 0.5 * (1.0 + np.tanh(0.5 * margin))  # the logistic function, without overflow
    gradient = z.T @ (p - y)
    hessian = (z * (p * (1.0 - p))[:, None]).T @ z
    upper = hessian[np.triu_indices(z.shape[1])]
    return gradient, upper

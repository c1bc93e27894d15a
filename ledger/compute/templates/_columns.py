"""Reading columns of a batch as numpy arrays, and the clamped fixed-point sum shared by the
DP sum and mean templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ledger.compute.params import Bounds, DPParams
from ledger.compute.templates._noise import (
    fixed_exponent,
    fixed_sensitivity,
    laplace_int,
    to_fixed,
)

__all__ = [
    "clamped_sum_partial",
    "combine_sums",
    "finite_pairs",
    "label_indices",
    "noisy_sum_and_count",
    "numbers",
]


def numbers(table: pa.Table, column: str) -> npt.NDArray[np.float64]:
    """The non-null, non-NaN values of `column` as float64 (booleans as 0/1; infinities are
    kept and clamped by the caller)."""
    values = _floats(table, column)
    return values[~np.isnan(values)]


def finite_pairs(
    table: pa.Table, first: str, second: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The values of two columns on the rows where both are finite (not null, NaN or infinite)."""
    a, b = _floats(table, first), _floats(table, second)
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def _floats(table: pa.Table, column: str) -> npt.NDArray[np.float64]:
    # Nulls become NaN, so row positions are kept.
    values = table.column(column)
    if values.type != pa.float64():
        values = pc.cast(values, pa.float64())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def label_indices(table: pa.Table, column: str, labels: list[Any]) -> npt.NDArray[np.int64]:
    """Per row of `table`, the index of its value in `labels`, or ``len(labels)`` for any other
    value (and for null)."""
    array = table.column(column)
    if pa.types.is_dictionary(array.type):
        array = pc.cast(array, array.type.value_type)
    index = pc.index_in(array, value_set=pa.array(labels, type=array.type))
    filled = pc.fill_null(index, len(labels))
    return np.asarray(filled.to_numpy(), dtype=np.int64)


def clamped_sum_partial(
    table: pa.Table, column: str, bounds: Bounds, rows_total: int
) -> dict[str, int]:
    """Rows and the exact fixed-point sum of the clamped non-null values of `column`."""
    values = numbers(table, column)
    s = fixed_exponent(max(abs(bounds.lo), abs(bounds.hi)), rows_total)
    return {"n": int(values.size), "sum": int(to_fixed(values, bounds.lo, bounds.hi, s).sum())}


def combine_sums(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """The merged aggregate of two clamped sums."""
    return {"n": a["n"] + b["n"], "sum": a["sum"] + b["sum"]}


def noisy_sum_and_count(
    params: DPParams, bounds: Bounds, aggregate: Mapping[str, int], rows_total: int
) -> tuple[float, int]:
    """The sum and the count with noise, each spending half of the epsilon (basic composition);
    the sum is returned in the column's units."""
    s = fixed_exponent(max(abs(bounds.lo), abs(bounds.hi)), rows_total)
    half = params.epsilon / 2
    noisy_n = laplace_int(aggregate["n"], 1, half)
    noisy_sum = laplace_int(aggregate["sum"], fixed_sensitivity(bounds.lo, bounds.hi, s), half)
    return float(np.ldexp(float(noisy_sum), -s)), noisy_n

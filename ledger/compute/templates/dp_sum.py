"""DP sum: the sum of a numeric column clamped to declared bounds, with noise.

Half of epsilon goes to the sum (discrete Laplace on an exact fixed-point sum, sensitivity
max(|lo|, |hi|)), half to the count of the values summed (sensitivity 1). Both are released
unless the noisy count is below k; then both are suppressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel

from ledger.compute.params import (
    Bounds,
    ColumnKind,
    ColumnName,
    DPParams,
    check_column,
    check_filters,
)
from ledger.compute.policy import Count, Obj, Shape, Stat
from ledger.compute.templates._base import Partial, PartialContext, Template
from ledger.compute.templates._columns import clamped_sum_partial, combine_sums, noisy_sum_and_count

__all__ = ["TEMPLATE", "DPSum", "DPSumParams"]


class DPSumParams(DPParams):
    """The column to sum, its declared bounds, filters and epsilon."""

    column: ColumnName
    bounds: Bounds


class DPSum(Template):
    """Noisy sum of a clamped numeric column, with its noisy count."""

    name: ClassVar[str] = "dp_sum"
    description: ClassVar[str] = (
        "Sum of a numeric column clamped to [lo, hi] and the count of values, each with discrete "
        "Laplace noise (epsilon split evenly); suppressed when the noisy count is below k."
    )
    params_model: ClassVar[type[BaseModel]] = DPSumParams
    dp: ClassVar[bool] = True

    def check(self, params: DPSumParams, kinds: Mapping[str, ColumnKind], dataset_id: int) -> None:
        check_column(kinds, "column", params.column, ("number", "bool"), dataset_id)
        check_filters(params.filters, kinds, dataset_id)

    def columns(self, params: DPSumParams) -> list[str]:
        return [params.column]

    def empty(self, params: DPSumParams, ctx: PartialContext) -> Partial:
        return {"n": 0, "sum": 0}

    def partial(self, params: DPSumParams, table: pa.Table, ctx: PartialContext) -> Partial:
        return clamped_sum_partial(table, params.column, params.bounds, ctx.rows_total)

    def combine(self, a: Partial, b: Partial) -> Partial:
        return combine_sums(a, b)

    def finalize(
        self, params: DPSumParams, aggregate: Partial, k: int, ctx: PartialContext
    ) -> dict[str, Any]:
        total, n = noisy_sum_and_count(params, params.bounds, aggregate, ctx.rows_total)
        if n < k:
            return {"sum": None, "n": None}
        return {"sum": total, "n": n}

    def shape(self, params: DPSumParams) -> Shape:
        return Obj({"sum": Stat(), "n": Count()})

    def shape_example(self) -> Shape:
        return Obj({"sum": Stat(), "n": Count()})


TEMPLATE = DPSum()

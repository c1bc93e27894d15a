"""DP mean: the mean of a numeric column clamped to declared bounds.

The noisy fixed-point sum (epsilon/2, sensitivity max(|lo|, |hi|)) divided by the noisy count
(epsilon/2, sensitivity 1), clamped back into [lo, hi] (post-processing). Released with the
noisy count, unless that count is below k; then both are suppressed.
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

__all__ = ["TEMPLATE", "DPMean", "DPMeanParams"]


class DPMeanParams(DPParams):
    """The column to average, its declared bounds, filters and epsilon."""

    column: ColumnName
    bounds: Bounds


class DPMean(Template):
    """Noisy mean of a clamped numeric column, with its noisy count."""

    name: ClassVar[str] = "dp_mean"
    description: ClassVar[str] = (
        "Mean of a numeric column clamped to [lo, hi]: noisy sum over noisy count (epsilon split "
        "evenly, discrete Laplace); suppressed when the noisy count is below k."
    )
    params_model: ClassVar[type[BaseModel]] = DPMeanParams
    dp: ClassVar[bool] = True

    def check(self, params: DPMeanParams, kinds: Mapping[str, ColumnKind], dataset_id: int) -> None:
        check_column(kinds, "column", params.column, ("number", "bool"), dataset_id)
        check_filters(params.filters, kinds, dataset_id)

    def columns(self, params: DPMeanParams) -> list[str]:
        return [params.column]

    def empty(self, params: DPMeanParams, ctx: PartialContext) -> Partial:
        return {"n": 0, "sum": 0}

    def partial(self, params: DPMeanParams, table: pa.Table, ctx: PartialContext) -> Partial:
        return clamped_sum_partial(table, params.column, params.bounds, ctx.rows_total)

    def combine(self, a: Partial, b: Partial) -> Partial:
        return combine_sums(a, b)

    def finalize(
        self, params: DPMeanParams, aggregate: Partial, k: int, ctx: PartialContext
    ) -> dict[str, Any]:
        total, n = noisy_sum_and_count(params, params.bounds, aggregate, ctx.rows_total)
        if n < k:
            return {"mean": None, "n": None}
        mean = min(max(total / n, params.bounds.lo), params.bounds.hi)
        return {"mean": mean, "n": n}

    def shape(self, params: DPMeanParams) -> Shape:
        return Obj({"mean": Stat(), "n": Count()})

    def shape_example(self) -> Shape:
        return Obj({"mean": Stat(), "n": Count()})


TEMPLATE = DPMean()

"""DP histogram: counts per bin of a numeric column (declared bounds and bin count) or per
declared category, each with discrete Laplace noise of scale 1/epsilon.

One row falls into exactly one bin (values outside the bounds are clamped into the edge bins;
values outside the declared categories and nulls go to ``(other)``), so the L1 sensitivity is 1
and the whole histogram costs epsilon. Noisy counts below k are suppressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field, model_validator

from ledger.compute.errors import InvalidParameterError
from ledger.compute.params import (
    MAX_BINS,
    MAX_CATEGORIES,
    Bounds,
    ColumnKind,
    ColumnName,
    DPParams,
    check_column,
    check_filters,
)
from ledger.compute.policy import Count, Label, ListOf, Number, Obj, Shape, suppress_below
from ledger.compute.templates._base import Partial, PartialContext, Template
from ledger.compute.templates._columns import label_indices, numbers
from ledger.compute.templates._noise import laplace_ints

__all__ = ["OTHER", "TEMPLATE", "DPHistogram", "DPHistogramParams"]

OTHER = "(other)"


class DPHistogramParams(DPParams):
    """A numeric column with `bounds` and `bins`, or a column with declared `categories`."""

    column: ColumnName
    bounds: Bounds | None = None
    bins: int | None = Field(default=None, ge=1, le=MAX_BINS)
    categories: list[str | int] | None = Field(
        default=None, min_length=1, max_length=MAX_CATEGORIES
    )

    @model_validator(mode="after")
    def _one_kind(self) -> DPHistogramParams:
        numeric = self.bounds is not None or self.bins is not None
        if numeric and self.categories is not None:
            raise ValueError("give either bounds and bins, or categories, not both")
        if numeric and (self.bounds is None or self.bins is None):
            raise ValueError("a numeric histogram needs both bounds and bins")
        if not numeric and self.categories is None:
            raise ValueError("give bounds and bins, or categories")
        if self.categories is not None:
            if len(set(map(repr, self.categories))) != len(self.categories):
                raise ValueError("categories must be distinct")
            if OTHER in self.categories:
                raise ValueError(f"{OTHER!r} is reserved")
            if len({type(c) for c in self.categories}) != 1:
                raise ValueError("categories must be all strings or all integers")
        return self


class DPHistogram(Template):
    """Noisy counts per bin or category."""

    name: ClassVar[str] = "dp_histogram"
    description: ClassVar[str] = (
        "Counts per bin (numeric column, declared bounds and bins) or per declared category, "
        "each with discrete Laplace noise (scale 1/epsilon); noisy counts below k suppressed."
    )
    params_model: ClassVar[type[BaseModel]] = DPHistogramParams
    dp: ClassVar[bool] = True

    def check(
        self, params: DPHistogramParams, kinds: Mapping[str, ColumnKind], dataset_id: int
    ) -> None:
        if params.categories is None:
            check_column(kinds, "column", params.column, ("number", "bool"), dataset_id)
        else:
            kind = check_column(kinds, "column", params.column, ("string", "number"), dataset_id)
            want = str if kind == "string" else int
            if not isinstance(params.categories[0], want):
                what = "strings" if kind == "string" else "integers"
                raise InvalidParameterError(
                    "categories", f"must be {what} to match {kind} column {params.column!r}"
                )
        check_filters(params.filters, kinds, dataset_id)

    def columns(self, params: DPHistogramParams) -> list[str]:
        return [params.column]

    def _cells(self, params: DPHistogramParams) -> int:
        if params.categories is not None:
            return len(params.categories) + 1
        assert params.bins is not None
        return params.bins

    def empty(self, params: DPHistogramParams, ctx: PartialContext) -> Partial:
        return {"counts": [0] * self._cells(params)}

    def partial(self, params: DPHistogramParams, table: pa.Table, ctx: PartialContext) -> Partial:
        cells = self._cells(params)
        if params.categories is not None:
            index = label_indices(table, params.column, list(params.categories))
        else:
            assert params.bounds is not None and params.bins is not None
            lo, hi = params.bounds.lo, params.bounds.hi
            values = np.clip(numbers(table, params.column), lo, hi)
            index = np.minimum(((values - lo) / (hi - lo) * cells).astype(np.int64), cells - 1)
        counts = np.bincount(index, minlength=cells)
        return {"counts": [int(c) for c in counts]}

    def combine(self, a: Partial, b: Partial) -> Partial:
        return {"counts": [x + y for x, y in zip(a["counts"], b["counts"], strict=True)]}

    def finalize(
        self, params: DPHistogramParams, aggregate: Partial, k: int, ctx: PartialContext
    ) -> dict[str, Any]:
        noisy = [suppress_below(c, k) for c in laplace_ints(aggregate["counts"], 1, params.epsilon)]
        if params.categories is not None:
            labels: list[str | int] = [*params.categories, OTHER]
            return {
                "bins": [{"label": lb, "count": c} for lb, c in zip(labels, noisy, strict=True)]
            }
        assert params.bounds is not None and params.bins is not None
        lo, hi, bins = params.bounds.lo, params.bounds.hi, params.bins
        edges = [lo + (hi - lo) * i / bins for i in range(bins)] + [hi]
        return {
            "bins": [{"lo": edges[i], "hi": edges[i + 1], "count": c} for i, c in enumerate(noisy)]
        }

    def shape(self, params: DPHistogramParams) -> Shape:
        if params.categories is not None:
            cell: Shape = Obj(
                {"label": Label(frozenset([*params.categories, OTHER])), "count": Count()}
            )
        else:
            cell = Obj({"lo": Number(), "hi": Number(), "count": Count()})
        return Obj({"bins": ListOf(cell, MAX_BINS + 1)})

    def shape_example(self) -> Shape:
        return Obj(
            {"bins": ListOf(Obj({"lo": Number(), "hi": Number(), "count": Count()}), MAX_BINS)}
        )


TEMPLATE = DPHistogram()

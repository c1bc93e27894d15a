"""DP count: rows matching the filters plus discrete Laplace noise of scale 1/epsilon.

One row changes the count by at most 1 (add/remove-one-row neighbours), so the noise gives
epsilon-differential privacy. A noisy count below k is suppressed (post-processing: it keeps
the guarantee, unlike a threshold on the true count).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel

from ledger.compute.params import ColumnKind, DPParams, check_filters
from ledger.compute.policy import Count, Obj, Shape, suppress_below
from ledger.compute.templates._base import Partial, PartialContext, Template
from ledger.compute.templates._noise import laplace_int

__all__ = ["TEMPLATE", "DPCount", "DPCountParams"]


class DPCountParams(DPParams):
    """Filters and the epsilon to spend."""


class DPCount(Template):
    """Noisy count of the rows matching the filters."""

    name: ClassVar[str] = "dp_count"
    description: ClassVar[str] = (
        "Rows matching the filters with discrete Laplace noise (scale 1/epsilon); "
        "a noisy count below k is suppressed."
    )
    params_model: ClassVar[type[BaseModel]] = DPCountParams
    dp: ClassVar[bool] = True

    def check(
        self, params: DPCountParams, kinds: Mapping[str, ColumnKind], dataset_id: int
    ) -> None:
        check_filters(params.filters, kinds, dataset_id)

    def columns(self, params: DPCountParams) -> list[str]:
        return []

    def empty(self, params: DPCountParams, ctx: PartialContext) -> Partial:
        return {"n": 0}

    def partial(self, params: DPCountParams, table: pa.Table, ctx: PartialContext) -> Partial:
        return {"n": table.num_rows}

    def combine(self, a: Partial, b: Partial) -> Partial:
        return {"n": a["n"] + b["n"]}

    def finalize(
        self, params: DPCountParams, aggregate: Partial, k: int, ctx: PartialContext
    ) -> dict[str, Any]:
        return {"count": suppress_below(laplace_int(aggregate["n"], 1, params.epsilon), k)}

    def shape(self, params: DPCountParams) -> Shape:
        return Obj({"count": Count()})

    def shape_example(self) -> Shape:
        return Obj({"count": Count()})


TEMPLATE = DPCount()

"""Kaplan-Meier survival curve with coarsened times and small-cell suppression (no noise).

Times are coarsened up to multiples of `time_unit` (``ceil(t / unit) * unit``; negative times
count as 0). The curve is the product-limit estimate over the coarsened times, with the usual
convention that rows censored at a time are still at risk at that time. A step is released only
if both its events and its number at risk are at least k; other steps are left out (counted in
``suppressed_steps``) though they still enter the product, so the released survival values are
the true estimate at the released times. Once fewer than k are at risk, nothing later is
released. Rows with a missing (null, NaN or infinite) time or event are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, Field

from ledger.compute.errors import InvalidParameterError
from ledger.compute.params import BaseParams, ColumnKind, ColumnName, check_column, check_filters
from ledger.compute.policy import Count, Integer, ListOf, Number, Obj, Shape, Stat
from ledger.compute.templates._base import Partial, PartialContext, Template
from ledger.compute.templates._columns import finite_pairs

__all__ = ["MAX_STEPS", "TEMPLATE", "KaplanMeier", "KaplanMeierParams"]

#: Most steps one curve may release.
MAX_STEPS: Final = 10_000


class KaplanMeierParams(BaseParams):
    """The time and event columns, the event value, and the time unit times are coarsened to."""

    time: ColumnName
    event: ColumnName
    event_value: int = 1
    time_unit: float = Field(default=1.0, gt=0, le=1e9, allow_inf_nan=False)


class KaplanMeier(Template):
    """Survival curve of the rows matching the filters."""

    name: ClassVar[str] = "kaplan_meier"
    description: ClassVar[str] = (
        "Kaplan-Meier survival curve over times coarsened to a time unit; steps with fewer "
        "than k events or k at risk are suppressed."
    )
    params_model: ClassVar[type[BaseModel]] = KaplanMeierParams

    def check(
        self, params: KaplanMeierParams, kinds: Mapping[str, ColumnKind], dataset_id: int
    ) -> None:
        check_column(kinds, "time", params.time, ("number",), dataset_id)
        check_column(kinds, "event", params.event, ("number", "bool"), dataset_id)
        if params.time == params.event:
            raise InvalidParameterError("event", "must be another column than time")
        check_filters(params.filters, kinds, dataset_id)

    def columns(self, params: KaplanMeierParams) -> list[str]:
        return [params.time, params.event]

    def empty(self, params: KaplanMeierParams, ctx: PartialContext) -> Partial:
        return {"n": 0, "events": {}, "removed": {}}

    def partial(self, params: KaplanMeierParams, table: pa.Table, ctx: PartialContext) -> Partial:
        times, event_values = finite_pairs(table, params.time, params.event)
        events = event_values == float(params.event_value)
        buckets = np.ceil(np.maximum(times, 0.0) / params.time_unit).astype(np.int64)
        removed_keys, removed_counts = np.unique(buckets, return_counts=True)
        event_keys, event_counts = np.unique(buckets[events], return_counts=True)
        return {
            "n": int(buckets.size),
            "events": {int(b): int(c) for b, c in zip(event_keys, event_counts, strict=True)},
            "removed": {int(b): int(c) for b, c in zip(removed_keys, removed_counts, strict=True)},
        }

    def combine(self, a: Partial, b: Partial) -> Partial:
        return {
            "n": a["n"] + b["n"],
            "events": _add(a["events"], b["events"]),
            "removed": _add(a["removed"], b["removed"]),
        }

    def finalize(
        self, params: KaplanMeierParams, aggregate: Partial, k: int, ctx: PartialContext
    ) -> dict[str, Any]:
        n: int = aggregate["n"]
        events: dict[int, int] = aggregate["events"]
        removed: dict[int, int] = aggregate["removed"]
        if n < k:
            return {"n": None, "time_unit": params.time_unit, "steps": [], "suppressed_steps": 0}
        at_risk, survival, suppressed = n, 1.0, 0
        steps: list[dict[str, Any]] = []
        for bucket in sorted(removed):
            d = events.get(bucket, 0)
            if d:
                survival *= 1.0 - d / at_risk
                if d >= k and at_risk >= k:
                    steps.append(
                        {
                            "time": _time(bucket, params.time_unit),
                            "at_risk": at_risk,
                            "events": d,
                            "survival": survival,
                        }
                    )
                else:
                    suppressed += 1
            at_risk -= removed[bucket]
        if len(steps) > MAX_STEPS:
            raise InvalidParameterError(
                "time_unit", f"is too fine: the curve has more than {MAX_STEPS} steps"
            )
        return {
            "n": n,
            "time_unit": params.time_unit,
            "steps": steps,
            "suppressed_steps": suppressed,
        }

    def shape(self, params: KaplanMeierParams) -> Shape:
        return self.shape_example()

    def shape_example(self) -> Shape:
        step = Obj({"time": Number(), "at_risk": Count(), "events": Count(), "survival": Stat()})
        return Obj(
            {
                "n": Count(),
                "time_unit": Number(),
                "steps": ListOf(step, MAX_STEPS),
                "suppressed_steps": Integer(),
            }
        )


def _add(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    merged = dict(a)
    for key, value in b.items():
        merged[key] = merged.get(key, 0) + value
    return merged


def _time(bucket: int, unit: float) -> float | int:
    value = bucket * unit
    return int(value) if float(value).is_integer() and math.isfinite(value) else value


TEMPLATE = KaplanMeier()

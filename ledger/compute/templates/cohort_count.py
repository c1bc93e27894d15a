"""Cohort count: how many rows match the filters, optionally per declared category, with
small-cell suppression (no noise, no epsilon).

Cells of 1 to k-1 rows are suppressed (empty cells show 0: they reveal no one); then, while the
suppressed cells together hold 1 to k-1 rows (so the total minus the released cells would
reveal a small group), the smallest non-empty released cell is suppressed too (complementary
suppression). The total is released only if it is 0 or at least k.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ledger.compute.errors import InvalidParameterError
from ledger.compute.params import (
    MAX_CATEGORIES,
    BaseParams,
    ColumnKind,
    ColumnName,
    check_column,
    check_filters,
)
from ledger.compute.policy import Count, Label, ListOf, Obj, Shape
from ledger.compute.templates._base import Partial, PartialContext, Template
from ledger.compute.templates._columns import label_indices

__all__ = ["OTHER", "TEMPLATE", "CohortCount", "CohortCountParams", "GroupBy"]

#: Label of the cell of values outside the declared categories (and nulls).
OTHER = "(other)"


class GroupBy(BaseModel):
    """Count per declared category of `column`; other values and nulls fall into ``(other)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: ColumnName
    categories: list[str | int] = Field(min_length=1, max_length=MAX_CATEGORIES)

    @model_validator(mode="after")
    def _distinct(self) -> GroupBy:
        if len(set(map(repr, self.categories))) != len(self.categories):
            raise ValueError("categories must be distinct")
        if OTHER in self.categories:
            raise ValueError(f"{OTHER!r} is reserved")
        if len({type(c) for c in self.categories}) != 1:
            raise ValueError("categories must be all strings or all integers")
        return self


class CohortCountParams(BaseParams):
    """Filters and an optional grouping."""

    group_by: GroupBy | None = None


class CohortCount(Template):
    """Rows matching the filters, per declared category, small cells suppressed."""

    name: ClassVar[str] = "cohort_count"
    description: ClassVar[str] = (
        "Rows matching the filters, optionally per declared category; cells below k suppressed "
        "(with complementary suppression)."
    )
    params_model: ClassVar[type[BaseModel]] = CohortCountParams

    def check(
        self, params: CohortCountParams, kinds: Mapping[str, ColumnKind], dataset_id: int
    ) -> None:
        check_filters(params.filters, kinds, dataset_id)
        if params.group_by is not None:
            kind = check_column(
                kinds, "group_by.column", params.group_by.column, ("string", "number"), dataset_id
            )
            want = str if kind == "string" else int
            if not isinstance(params.group_by.categories[0], want):
                what = "strings" if kind == "string" else "integers"
                raise InvalidParameterError(
                    "group_by.categories",
                    f"must be {what} to match {kind} column {params.group_by.column!r}",
                )

    def columns(self, params: CohortCountParams) -> list[str]:
        return [] if params.group_by is None else [params.group_by.column]

    def empty(self, params: CohortCountParams, ctx: PartialContext) -> Partial:
        cells = 0 if params.group_by is None else len(params.group_by.categories) + 1
        return {"n": 0, "cells": [0] * cells}

    def partial(self, params: CohortCountParams, table: pa.Table, ctx: PartialContext) -> Partial:
        if params.group_by is None:
            return {"n": table.num_rows, "cells": []}
        labels = list(params.group_by.categories)
        index = label_indices(table, params.group_by.column, labels)
        cells = np.bincount(index, minlength=len(labels) + 1)
        return {"n": table.num_rows, "cells": [int(c) for c in cells]}

    def combine(self, a: Partial, b: Partial) -> Partial:
        return {
            "n": a["n"] + b["n"],
            "cells": [x + y for x, y in zip(a["cells"], b["cells"], strict=True)],
        }

    def finalize(
        self, params: CohortCountParams, aggregate: Partial, k: int, ctx: PartialContext
    ) -> dict[str, Any]:
        total = aggregate["n"]
        shown_total = total if total == 0 or total >= k else None
        if params.group_by is None:
            return {"count": shown_total}
        counts: list[int] = aggregate["cells"]
        released = [c == 0 or c >= k for c in counts]
        # Complementary suppression: total minus the released cells must not reveal a group of
        # 1 to k-1 rows, so hide the smallest non-empty released cell until it does not.
        while True:
            hidden = sum(c for c, r in zip(counts, released, strict=True) if not r)
            candidates = [
                (c, i) for i, (c, r) in enumerate(zip(counts, released, strict=True)) if r and c > 0
            ]
            if not 0 < hidden < k or not candidates:
                break
            released[min(candidates)[1]] = False
        labels: list[str | int] = [*params.group_by.categories, OTHER]
        return {
            "count": shown_total,
            "cells": [
                {"label": label, "count": c if r else None}
                for label, c, r in zip(labels, counts, released, strict=True)
            ],
        }

    def shape(self, params: CohortCountParams) -> Shape:
        if params.group_by is None:
            return Obj({"count": Count()})
        labels = frozenset([*params.group_by.categories, OTHER])
        cell = Obj({"label": Label(labels), "count": Count()})
        return Obj({"count": Count(), "cells": ListOf(cell, MAX_CATEGORIES + 1)})

    def shape_example(self) -> Shape:
        return self.shape(CohortCountParams(group_by=GroupBy(column="c", categories=["a"])))


TEMPLATE = CohortCount()

"""What a catalog template is: parameters, columns, partial aggregates, and the final release.

A single-dataset template computes in three steps so that any backend can run it: `partial`
turns one batch of rows (a pyarrow table, already filtered) into a small mergeable aggregate,
`combine` merges two aggregates (associative and commutative: integer counts and fixed-point
sums, so the result never depends on how the data was partitioned), and `finalize` turns the
combined aggregate into the result, adding differential-privacy noise exactly once and
suppressing small cells. A multi-owner template instead runs a secure protocol over several
owners' data (`run_multi`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from ledger.compute.params import ColumnKind, DPParams, filter_expression
from ledger.compute.policy import Shape

__all__ = ["MultiOwnerTemplate", "PartialContext", "Template", "TemplateBase"]

#: A partial aggregate: plain ints, floats, lists and dicts (picklable, cheap to ship).
Partial = dict[str, Any]


@dataclass(frozen=True)
class PartialContext:
    """What a partial aggregate may depend on besides its rows: public facts of the dataset.

    `rows_total` is the dataset's row count (public: it is in the registered manifest); sums use
    it to pick a fixed-point scale that cannot overflow 63 bits.
    """

    rows_total: int
    kinds: Mapping[str, ColumnKind]


class TemplateBase(ABC):
    """What every template declares."""

    name: ClassVar[str]
    description: ClassVar[str]
    params_model: ClassVar[type[BaseModel]]
    dp: ClassVar[bool] = False
    multi_owner: ClassVar[bool] = False

    def epsilon_micro(self, params: BaseModel) -> int:
        """Micro-epsilon one run spends on each dataset (0 for templates without noise)."""
        return params.epsilon_micro if isinstance(params, DPParams) else 0

    @abstractmethod
    def check(self, params: Any, kinds: Mapping[str, ColumnKind], dataset_id: int) -> None:
        """Check `params` against a dataset's columns (ColumnNotFoundError, ColumnTypeError)."""

    @abstractmethod
    def shape(self, params: Any) -> Shape:
        """The shape of the released result for `params`."""

    def describe_shape(self) -> object:
        """A JSON description of the result shape (for the catalog listing)."""
        return self.shape_example().describe()

    @abstractmethod
    def shape_example(self) -> Shape:
        """The result shape for illustrative parameters."""


class Template(TemplateBase):
    """A template over one dataset, computed from partial aggregates."""

    @abstractmethod
    def columns(self, params: Any) -> list[str]:
        """The data columns `partial` reads (besides those of the filters)."""

    def row_filter(self, params: Any, kinds: Mapping[str, ColumnKind]) -> pc.Expression | None:
        """The pyarrow expression selecting the rows to aggregate."""
        return filter_expression(params.filters, kinds)

    @abstractmethod
    def empty(self, params: Any, ctx: PartialContext) -> Partial:
        """The aggregate of no rows."""

    @abstractmethod
    def partial(self, params: Any, table: pa.Table, ctx: PartialContext) -> Partial:
        """The aggregate of the (filtered) rows of `table`."""

    @abstractmethod
    def combine(self, a: Partial, b: Partial) -> Partial:
        """The aggregate of the rows of `a` and `b`."""

    @abstractmethod
    def finalize(
        self, params: Any, aggregate: Partial, k: int, ctx: PartialContext
    ) -> dict[str, Any]:
        """The result to release: noise added once (DP templates), cells below `k` suppressed."""


class MultiOwnerTemplate(TemplateBase):
    """A template over several owners' datasets, run as a secure multi-party computation."""

    multi_owner: ClassVar[bool] = True

    @abstractmethod
    def run_multi(
        self, params: Any, data_dirs: Sequence[Path], k: int, timeout: float
    ) -> dict[str, Any]:
        """The result over all `data_dirs` (one party each, each with at least `k` rows), rows
        never pooled, within `timeout` seconds."""

"""Secure mean across owners: the secret-shared sum over the secret-shared count, one MPyC party
per owner; only the mean and the count are opened. Suppressed when fewer than k rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from ledger.compute.params import BaseParams, ColumnKind, ColumnName, check_column, check_filters
from ledger.compute.policy import Count, Obj, Shape, Stat
from ledger.compute.templates._base import MultiOwnerTemplate
from ledger.compute.templates._secure import mpc_filters, mpc_function

__all__ = ["TEMPLATE", "SecureMean", "SecureMeanParams"]


class SecureMeanParams(BaseParams):
    """The numeric column to average and filters every owner applies."""

    column: ColumnName


class SecureMean(MultiOwnerTemplate):
    """Mean and count of a column over several owners' datasets."""

    name: ClassVar[str] = "secure_mean"
    description: ClassVar[str] = (
        "Mean of a numeric column across several owners by secure multi-party computation "
        "(MPyC, one party per owner); suppressed below k rows."
    )
    params_model: ClassVar[type[BaseModel]] = SecureMeanParams

    def check(
        self, params: SecureMeanParams, kinds: Mapping[str, ColumnKind], dataset_id: int
    ) -> None:
        check_column(kinds, "column", params.column, ("number", "bool"), dataset_id)
        check_filters(params.filters, kinds, dataset_id)
        mpc_filters(params.filters)

    def run_multi(
        self, params: SecureMeanParams, data_dirs: Sequence[Path], k: int, timeout: float
    ) -> dict[str, Any]:
        # Every party needs at least k rows: with fewer, the others could learn its values by
        # subtraction from a later query.
        out = mpc_function("secure_mean")(
            list(data_dirs),
            params.column,
            filters=mpc_filters(params.filters),
            timeout=timeout,
            min_rows=k,
        )
        n = int(out.n)
        if n < k:
            return {"mean": None, "n": None}
        return {"mean": float(out.value), "n": n}

    def shape(self, params: SecureMeanParams) -> Shape:
        return self.shape_example()

    def shape_example(self) -> Shape:
        return Obj({"mean": Stat(), "n": Count()})


TEMPLATE = SecureMean()

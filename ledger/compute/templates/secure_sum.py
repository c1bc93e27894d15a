"""Secure sum across owners: each owner's vault is one MPyC party that secret-shares its local
sum and count; only the totals are opened. No noise; suppressed when fewer than k rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from ledger.compute.params import BaseParams, ColumnKind, ColumnName, check_column, check_filters
from ledger.compute.policy import Count, Obj, Shape, Stat
from ledger.compute.templates._base import MultiOwnerTemplate
from ledger.compute.templates._secure import mpc_filters, mpc_function

__all__ = ["TEMPLATE", "SecureSum", "SecureSumParams"]


class SecureSumParams(BaseParams):
    """The numeric column to sum and filters every owner applies."""

    column: ColumnName


class SecureSum(MultiOwnerTemplate):
    """Sum and count of a column over several owners' datasets."""

    name: ClassVar[str] = "secure_sum"
    description: ClassVar[str] = (
        "Sum of a numeric column across several owners by secure multi-party computation "
        "(MPyC, one party per owner); suppressed below k rows."
    )
    params_model: ClassVar[type[BaseModel]] = SecureSumParams

    def check(
        self, params: SecureSumParams, kinds: Mapping[str, ColumnKind], dataset_id: int
    ) -> None:
        check_column(kinds, "column", params.column, ("number", "bool"), dataset_id)
        check_filters(params.filters, kinds, dataset_id)
        mpc_filters(params.filters)

    def run_multi(
        self, params: SecureSumParams, data_dirs: Sequence[Path], k: int, timeout: float
    ) -> dict[str, Any]:
        # Every party needs at least k rows: with fewer, the others could learn its values by
        # subtraction from a later query.
        out = mpc_function("secure_sum")(
            list(data_dirs),
            params.column,
            filters=mpc_filters(params.filters),
            timeout=timeout,
            min_rows=k,
        )
        n = int(out.n)
        if n < k:
            return {"sum": None, "n": None}
        return {"sum": float(out.value), "n": n}

    def shape(self, params: SecureSumParams) -> Shape:
        return self.shape_example()

    def shape_example(self) -> Shape:
        return Obj({"sum": Stat(), "n": Count()})


TEMPLATE = SecureSum()

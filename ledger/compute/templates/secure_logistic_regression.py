"""Secure logistic regression across owners: L2-regularised Newton iterations on gradients and
Hessians that each owner computes on its own rows and secret-shares (MPyC, one party per owner);
only the model is opened. The coefficients apply to features standardized with the released
global means and scales. Every party needs at least k rows; the model is suppressed when fewer
than k rows take part in all."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field, model_validator

from ledger.compute.params import BaseParams, ColumnKind, ColumnName, check_column, check_filters
from ledger.compute.policy import Count, Flag, Integer, Label, ListOf, Obj, Shape, Stat
from ledger.compute.templates._base import MultiOwnerTemplate
from ledger.compute.templates._secure import mpc_filters, mpc_function

__all__ = [
    "MAX_FEATURES",
    "TEMPLATE",
    "SecureLogisticRegression",
    "SecureLogisticRegressionParams",
]

MAX_FEATURES = 200


class SecureLogisticRegressionParams(BaseParams):
    """Feature columns, the label column and its positive value, and the fit's settings
    (``l2`` is scikit-learn's ``1/C``)."""

    features: list[ColumnName] = Field(min_length=1, max_length=MAX_FEATURES)
    label: ColumnName
    positive_label: str | int | bool | None = None
    l2: float = Field(default=1.0, gt=0, le=1e12, allow_inf_nan=False)
    max_iter: int = Field(default=100, ge=1, le=1000)
    tol: float = Field(default=1e-8, ge=0, le=1, allow_inf_nan=False)
    standardize: bool = True

    @model_validator(mode="after")
    def _distinct(self) -> SecureLogisticRegressionParams:
        if len(set(self.features)) != len(self.features):
            raise ValueError("features must be distinct")
        if self.label in self.features:
            raise ValueError("the label cannot also be a feature")
        return self


class SecureLogisticRegression(MultiOwnerTemplate):
    """Logistic regression coefficients trained across several owners' datasets."""

    name: ClassVar[str] = "secure_logistic_regression"
    description: ClassVar[str] = (
        "L2-regularised logistic regression across several owners by secure multi-party "
        "computation (MPyC Newton iterations on secret-shared gradients and Hessians); rows are "
        "never pooled; suppressed below k rows."
    )
    params_model: ClassVar[type[BaseModel]] = SecureLogisticRegressionParams

    def check(
        self,
        params: SecureLogisticRegressionParams,
        kinds: Mapping[str, ColumnKind],
        dataset_id: int,
    ) -> None:
        for i, feature in enumerate(params.features):
            check_column(kinds, f"features.{i}", feature, ("number", "bool"), dataset_id)
        check_column(kinds, "label", params.label, ("number", "bool", "string"), dataset_id)
        check_filters(params.filters, kinds, dataset_id)
        mpc_filters(params.filters)

    def run_multi(
        self,
        params: SecureLogisticRegressionParams,
        data_dirs: Sequence[Path],
        k: int,
        timeout: float,
    ) -> dict[str, Any]:
        model = mpc_function("secure_logistic_regression")(
            list(data_dirs),
            list(params.features),
            params.label,
            positive_label=params.positive_label,
            l2=params.l2,
            max_iter=params.max_iter,
            tol=params.tol,
            standardize=params.standardize,
            filters=mpc_filters(params.filters),
            timeout=timeout,
            min_rows=k,
        )
        n = int(model.n)
        if n < k:
            return {
                "n": None,
                "intercept": None,
                "coefficients": [],
                "iterations": 0,
                "converged": False,
            }
        return {
            "n": n,
            "intercept": float(model.intercept),
            "coefficients": [
                {"feature": f, "coefficient": float(c), "mean": float(m), "scale": float(s)}
                for f, c, m, s in zip(
                    params.features, model.coefficients, model.means, model.scales, strict=True
                )
            ],
            "iterations": int(model.iterations),
            "converged": bool(model.converged),
        }

    def shape(self, params: SecureLogisticRegressionParams) -> Shape:
        item = Obj(
            {
                "feature": Label(frozenset(params.features)),
                "coefficient": Stat(),
                "mean": Stat(),
                "scale": Stat(),
            }
        )
        return Obj(
            {
                "n": Count(),
                "intercept": Stat(),
                "coefficients": ListOf(item, MAX_FEATURES),
                "iterations": Integer(),
                "converged": Flag(),
            }
        )

    def shape_example(self) -> Shape:
        return self.shape(SecureLogisticRegressionParams(features=["x"], label="y"))


TEMPLATE = SecureLogisticRegression()

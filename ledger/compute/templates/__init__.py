"""The catalog's templates, one module each; a template's identity is the keccak256 of its
module's source (see `ledger.compute.catalog`)."""

from __future__ import annotations

__all__ = ["TEMPLATE_MODULES"]

#: The modules of the catalog's templates, in listing order.
TEMPLATE_MODULES = (
    "cohort_count",
    "dp_count",
    "dp_sum",
    "dp_mean",
    "dp_histogram",
    "kaplan_meier",
    "secure_sum",
    "secure_mean",
    "secure_logistic_regression",
)

"""The secure protocols, written against one primitive: the secure sum of a vector.

Every party runs the same protocol on its own `LocalRows`. The only values that leave a party are
its inputs to `VectorSum`, which secret-shares them (Shamir, MPyC secure fixed point) and opens
only their sum over all parties. So the parties (and the coordinator) learn exactly the opened
sums listed per protocol below, and nothing about any one party's rows or statistics beyond what
those sums imply.

- sum:  opens [sum of the column, number of values].
- mean: opens the same two sums; the result keeps only the mean and n (which imply the sum).
- logistic: opens [n, per-feature sums] (global means), per-feature sums of squared deviations
  from the global means (global standard deviations), then per Newton iteration the summed
  gradient and Hessian of the log-loss at the current public model. The Newton step is solved in
  the clear from the sums; every party computes the same model.

Fixed point: `BIT_LENGTH` bits of which `FRACTIONAL_BITS` fractional, so each input is rounded to
2**-40 (about 9e-13) and sums must stay below 2**86 in magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from ledger.compute.mpc.errors import MpcDataError
from ledger.compute.mpc.local import FloatArray, LocalRows, local_gradient_hessian
from ledger.compute.mpc.spec import AggregateTask, LogisticTask

__all__ = [
    "BIT_LENGTH",
    "FRACTIONAL_BITS",
    "MAX_MAGNITUDE",
    "VectorSum",
    "run_aggregate",
    "run_logistic",
]

#: Bit length of the secure fixed-point numbers (MPyC ``SecFxp(l, f)``).
BIT_LENGTH = 128
#: Fractional bits of the secure fixed-point numbers: resolution 2**-40.
FRACTIONAL_BITS = 40
#: Largest magnitude an opened sum may reach (headroom of two bits below 2**(l-f-1)).
MAX_MAGNITUDE = float(2 ** (BIT_LENGTH - FRACTIONAL_BITS - 3))

#: Securely sums a vector over all parties: each party passes its own, all get the total.
VectorSum = Callable[[FloatArray], Awaitable[FloatArray]]


def _checked(vector: FloatArray, parties: int, party: int, field: str) -> FloatArray:
    """`vector` if its entries fit the fixed-point range even when summed over all parties."""
    if not np.isfinite(vector).all() or np.abs(vector).max(initial=0.0) * parties > MAX_MAGNITUDE:
        raise MpcDataError(party, field, "exceeds the secure fixed-point range")
    return np.ascontiguousarray(vector, dtype=np.float64)


async def run_aggregate(
    rows: LocalRows, task: AggregateTask, vector_sum: VectorSum, *, parties: int, party: int
) -> dict[str, Any]:
    """Secure sum or mean of the party's values; returns ``{"kind", "value", "n"}``."""
    values = rows.x[:, 0]
    local = np.array([values.sum(), float(values.shape[0])])
    total, count = (await vector_sum(_checked(local, parties, party, task.column))).tolist()
    n = round(count)
    value = total if task.kind == "sum" else total / n
    return {"kind": task.kind, "value": value, "n": n}


def _standardization(
    sums: FloatArray, deviations: FloatArray | None
) -> tuple[FloatArray, FloatArray]:
    """Global means and scales (population standard deviation; 1 for a constant feature)."""
    n = sums[0]
    means = sums[1:] / n
    if deviations is None:
        return np.zeros_like(means), np.ones_like(means)
    # A sum of squares below the fixed-point resolution of the inputs is a constant feature;
    # scikit-learn's StandardScaler likewise leaves such a feature unscaled.
    noise = 2.0**-FRACTIONAL_BITS * 16
    scales = np.where(deviations > noise, np.sqrt(np.maximum(deviations, 0.0) / n), 1.0)
    return means, scales


async def run_logistic(
    rows: LocalRows, task: LogisticTask, vector_sum: VectorSum, *, parties: int, party: int
) -> dict[str, Any]:
    """Secure Newton iterations for the L2-regularised logistic regression.

    Minimizes ``sum(logloss) + l2/2 * ||w||^2`` (intercept not penalized) on the standardized
    features: scikit-learn's ``LogisticRegression(C=1/l2)`` objective. Returns the model as
    ``{"coefficients", "intercept", "means", "scales", "n", "iterations", "converged"}``.
    """
    assert rows.y is not None
    x, y = rows.x, rows.y
    d = x.shape[1]
    first = np.concatenate(([float(rows.n)], x.sum(axis=0)))
    sums = await vector_sum(_checked(first, parties, party, "features"))
    n = round(sums[0])
    sums[0] = float(n)
    deviations = None
    if task.standardize:
        centered = x - sums[1:] / n
        squares = np.einsum("ij,ij->j", centered, centered)
        deviations = await vector_sum(_checked(squares, parties, party, "features"))
    means, scales = _standardization(sums, deviations)
    z = np.empty((rows.n, d + 1))
    z[:, :d] = (x - means) / scales
    z[:, d] = 1.0
    theta = np.zeros(d + 1)
    penalty = np.full(d + 1, task.l2)
    penalty[d] = 0.0  # the intercept is not penalized
    upper = np.triu_indices(d + 1)
    iterations, converged = 0, False
    while iterations < task.max_iter:
        gradient, hessian_upper = local_gradient_hessian(z, y, theta)
        local = np.concatenate((gradient, hessian_upper))
        total = await vector_sum(_checked(local, parties, party, "gradient"))
        gradient = total[: d + 1] + penalty * theta
        hessian = np.zeros((d + 1, d + 1))
        hessian[upper] = total[d + 1 :]
        hessian = hessian + np.triu(hessian, 1).T + np.diag(penalty)
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError as exc:
            raise MpcDataError(party, "features", "give a singular Hessian") from exc
        theta = theta - step
        iterations += 1
        if not np.isfinite(theta).all():
            raise MpcDataError(party, "features", "make the Newton iterations diverge")
        if float(np.abs(step).max()) < task.tol:
            converged = True
            break
    return {
        "coefficients": theta[:d].tolist(),
        "intercept": float(theta[d]),
        "means": means.tolist(),
        "scales": scales.tolist(),
        "n": n,
        "iterations": iterations,
        "converged": converged,
    }


def fixed_point_resolution() -> float:
    """The rounding step of one secret-shared input."""
    return math.ldexp(1.0, -FRACTIONAL_BITS)

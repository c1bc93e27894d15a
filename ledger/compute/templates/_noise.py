"""Differential-privacy noise through OpenDP, and the exact fixed-point sums it is added to.

Noise is added once, to the combined aggregate, with OpenDP measurements:
discrete Laplace (``make_laplace`` over ``i64``) for counts, histograms and fixed-point sums.
Each measurement is checked with OpenDP's own privacy map (``map(sensitivity) <= epsilon``) when
it is built, and kept for reuse per (sensitivity, epsilon).
OpenDP samples from the operating system's CSPRNG; it cannot be seeded.

Sums are exact integers: each clamped value is rounded to a multiple of ``2**-s`` and summed in
int64 (no floating-point rounding, so the sensitivity is exactly the rounded bound and the sum
does not depend on partitioning). `fixed_exponent` picks ``s`` from the public row count so that
``rows * bound * 2**s <= 2**62``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import opendp.prelude as dp

__all__ = ["fixed_exponent", "fixed_sensitivity", "laplace_int", "laplace_ints", "to_fixed"]

dp.enable_features("contrib")

_I64_MAX: Final = 2**63 - 1
_MAX_EXPONENT: Final = 32
_HEADROOM_BITS: Final = 62


def fixed_exponent(bound_abs: float, rows_total: int) -> int:
    """The fixed-point exponent ``s`` for values of magnitude <= `bound_abs` over `rows_total`
    rows: the largest ``s <= 32`` with ``rows * bound * 2**s <= 2**62``."""
    rows = max(rows_total, 1)
    magnitude = max(bound_abs, 2.0**-_MAX_EXPONENT)
    return min(_MAX_EXPONENT, math.floor(_HEADROOM_BITS - math.log2(rows) - math.log2(magnitude)))


def to_fixed(
    values: npt.NDArray[np.float64], lo: float, hi: float, s: int
) -> npt.NDArray[np.int64]:
    """`values` clamped to ``[lo, hi]`` and rounded to integers in units of ``2**-s``."""
    clamped = np.clip(values, lo, hi)
    return np.rint(np.ldexp(clamped, s)).astype(np.int64)


def fixed_sensitivity(lo: float, hi: float, s: int) -> int:
    """How much one row can change a fixed-point sum of values clamped to ``[lo, hi]``."""
    return max(abs(int(np.rint(math.ldexp(lo, s)))), abs(int(np.rint(math.ldexp(hi, s)))), 1)


def laplace_int(value: int, sensitivity: int, epsilon: float) -> int:
    """`value` plus discrete Laplace noise of scale ``sensitivity / epsilon`` (epsilon-DP for a
    query whose value one row changes by at most `sensitivity`)."""
    measurement = _scalar_measurement(sensitivity, epsilon)
    return int(measurement(_saturate(value)))


@functools.lru_cache(maxsize=256)
def _scalar_measurement(sensitivity: int, epsilon: float) -> Any:
    measurement = dp.m.make_laplace(
        dp.atom_domain(T="i64"), dp.absolute_distance(T="i64"), scale=sensitivity / epsilon
    )
    _check_privacy(measurement.map(sensitivity), epsilon)  # type: ignore[no-untyped-call]
    return measurement


def laplace_ints(values: Sequence[int], sensitivity: int, epsilon: float) -> list[int]:
    """`values` plus independent discrete Laplace noise of scale ``sensitivity / epsilon``, for a
    vector query whose L1 sensitivity is `sensitivity` (one row moves one histogram bin)."""
    measurement = _vector_measurement(sensitivity, epsilon)
    return [int(v) for v in measurement([_saturate(v) for v in values])]


@functools.lru_cache(maxsize=256)
def _vector_measurement(sensitivity: int, epsilon: float) -> Any:
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T="i64")),
        dp.l1_distance(T="i64"),
        scale=sensitivity / epsilon,
    )
    _check_privacy(measurement.map(sensitivity), epsilon)  # type: ignore[no-untyped-call]
    return measurement


def _check_privacy(spent: float, epsilon: float) -> None:
    # OpenDP's map rounds conservatively; allow only float noise in the last digits.
    if spent > epsilon * (1 + 1e-9):
        raise AssertionError(f"OpenDP reports {spent} > epsilon {epsilon}")


def _saturate(value: int) -> int:
    return max(-_I64_MAX, min(_I64_MAX, int(value)))

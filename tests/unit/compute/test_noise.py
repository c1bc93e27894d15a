"""Noise of the advertised scale: the empirical distribution of many noisy releases against the
exact discrete Laplace CDF.

OpenDP draws from the OS CSPRNG and cannot be seeded, so each test bounds its false-failure
rate instead: by the Dvoretzky-Kiefer-Wolfowitz inequality (Massart's constant, valid for any
distribution, discrete ones included), P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2). With
ALPHA = 1e-7 and n = 4000 (eps = 0.046) a correct implementation fails less than once in ten
million runs. The tests also check that the samples are *not* within the band of half or twice
the scale: those CDFs differ from the true one by at least 0.125 > 2 eps, so that check too
fails by chance with probability below ALPHA.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from ledger.compute.params import Bounds
from ledger.compute.templates._base import PartialContext
from ledger.compute.templates._noise import (
    fixed_exponent,
    fixed_sensitivity,
    laplace_int,
    laplace_ints,
)
from ledger.compute.templates.dp_count import TEMPLATE as DP_COUNT
from ledger.compute.templates.dp_count import DPCountParams
from ledger.compute.templates.dp_histogram import TEMPLATE as DP_HISTOGRAM
from ledger.compute.templates.dp_histogram import DPHistogramParams
from ledger.compute.templates.dp_sum import TEMPLATE as DP_SUM
from ledger.compute.templates.dp_sum import DPSumParams

ALPHA = 1e-7
N = 4000


def dkw_epsilon(n: int) -> float:
    """The DKW band half-width for false-failure rate ALPHA."""
    return math.sqrt(math.log(2 / ALPHA) / (2 * n))


def discrete_laplace_cdf(
    scale: float,
) -> Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]]:
    """CDF of P(Z = z) ∝ exp(-|z| / scale) on the integers."""
    alpha = math.exp(-1 / scale)

    def cdf(z: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        z = np.asarray(z, dtype=np.float64)
        below = alpha ** (-z) / (1 + alpha)
        above = 1 - alpha ** (z + 1) / (1 + alpha)
        return np.where(z < 0, below, above)

    return cdf


def sup_distance(
    samples: npt.NDArray[np.int64], cdf: Callable[..., npt.NDArray[np.float64]]
) -> float:
    """sup_x |F_n(x) - F(x)|; both are step functions jumping at integers only."""
    values, counts = np.unique(samples, return_counts=True)
    empirical = np.cumsum(counts) / samples.size
    # Between jumps of F_n, F rises; check F_n's left limit against F just below each value.
    left = np.concatenate([[0.0], empirical[:-1]])
    return float(
        max(
            np.max(np.abs(empirical - cdf(values))),
            np.max(np.abs(left - cdf(values - 1))),
        )
    )


def assert_scale(samples: npt.NDArray[np.int64], scale: float) -> None:
    """The samples follow discrete Laplace(scale), and not twice or half of it."""
    band = dkw_epsilon(samples.size)
    assert sup_distance(samples, discrete_laplace_cdf(scale)) < band
    assert sup_distance(samples, discrete_laplace_cdf(scale * 2)) > band
    assert sup_distance(samples, discrete_laplace_cdf(scale / 2)) > band


@pytest.mark.parametrize(("sensitivity", "epsilon"), [(1, 1.0), (1, 0.25), (7, 0.5)])
def test_laplace_int_has_scale_sensitivity_over_epsilon(sensitivity: int, epsilon: float) -> None:
    noise = np.array([laplace_int(1000, sensitivity, epsilon) - 1000 for _ in range(N)])
    assert_scale(noise, sensitivity / epsilon)


def test_dp_count_release_has_scale_one_over_epsilon() -> None:
    params = DPCountParams(epsilon=0.5)
    ctx = PartialContext(rows_total=10_000, kinds={})
    noise = np.array(
        [DP_COUNT.finalize(params, {"n": 10_000}, 5, ctx)["count"] - 10_000 for _ in range(N)]
    )
    assert_scale(noise, 2.0)


def test_dp_sum_release_spends_half_epsilon_on_sum_and_half_on_count() -> None:
    params = DPSumParams(epsilon=1.0, column="v", bounds=Bounds(lo=-2.0, hi=5.0))
    rows = 20_000
    values = np.linspace(-3, 6, rows)
    ctx = PartialContext(rows_total=rows, kinds={"v": "number"})
    aggregate = DP_SUM.partial(params, pa.table({"v": values}), ctx)
    s = fixed_exponent(5.0, rows)
    assert aggregate["sum"] / 2**s == pytest.approx(np.clip(values, -2, 5).sum(), abs=1e-3)
    sums, counts = [], []
    for _ in range(N):
        released = DP_SUM.finalize(params, aggregate, 5, ctx)
        sums.append(round(released["sum"] * 2**s) - aggregate["sum"])
        counts.append(released["n"] - rows)
    # Sensitivity max(|lo|, |hi|) = 5 in fixed-point units, epsilon 1/2 each.
    assert fixed_sensitivity(-2.0, 5.0, s) == 5 * 2**s
    assert_scale(np.array(counts), 1 / 0.5)
    assert_scale(np.array(sums), 5 * 2**s / 0.5)


def test_dp_histogram_bins_each_get_scale_one_over_epsilon() -> None:
    params = DPHistogramParams(epsilon=1.0, column="v", bounds=Bounds(lo=0, hi=10), bins=10)
    ctx = PartialContext(rows_total=10_000, kinds={"v": "number"})
    aggregate = {"counts": [1000] * 10}
    noise: list[int] = []
    for _ in range(N // 10):
        released = DP_HISTOGRAM.finalize(params, aggregate, 5, ctx)
        noise.extend(b["count"] - 1000 for b in released["bins"])
    assert_scale(np.array(noise), 1.0)


def test_vector_noise_is_independent_per_entry() -> None:
    draws = np.array([laplace_ints([0, 0], 1, 1.0) for _ in range(N)])
    # Independent draws: the correlation of two entries is small (|r| < 0.1 has a false
    # failure rate far below 1e-7 at n = 4000: r * sqrt(n) is about normal).
    r = np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]
    assert abs(r) < 0.1
    assert_scale(draws[:, 1], 1.0)

"""The protocols run by simulated parties in one event loop, with the secure sum replaced at its
seam by a plain sum that records what is opened (the MPyC sum is tested in tests/integration)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ledger.compute.mpc.errors import MpcDataError
from ledger.compute.mpc.local import FloatArray, LocalRows, load_logistic
from ledger.compute.mpc.protocols import MAX_MAGNITUDE, VectorSum, run_aggregate, run_logistic
from ledger.compute.mpc.spec import AggregateTask, LogisticTask
from tests.unit.mpc.vaults import hospital_dirs, pooled

FEATURES = tuple(c for c in pooled().columns if c not in ("diagnosis", "_row", "_contributor"))


class OpenSums:
    """Stands in for the secure sum: waits for every party's vector, gives each the total and
    records what was opened."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.inputs: list[FloatArray] = []
        self.opened: list[FloatArray] = []
        self.waiter: asyncio.Future[FloatArray] | None = None

    def for_party(self) -> VectorSum:
        async def vector_sum(vector: FloatArray) -> FloatArray:
            if self.waiter is None:
                self.waiter = asyncio.get_running_loop().create_future()
            waiter = self.waiter
            self.inputs.append(vector.copy())
            if len(self.inputs) == self.parties:
                total = np.sum(self.inputs, axis=0)
                self.opened.append(total)
                self.inputs, self.waiter = [], None
                waiter.set_result(total)
            return (await waiter).copy()

        return vector_sum


def simulate(rows: list[LocalRows], task: Any, run: Any) -> tuple[list[dict[str, Any]], OpenSums]:
    sums = OpenSums(len(rows))

    async def main() -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(
                    run(r, task, sums.for_party(), parties=len(rows), party=i)
                    for i, r in enumerate(rows)
                )
            )
        )

    return asyncio.run(main()), sums


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return hospital_dirs(tmp_path_factory.mktemp("vaults"))


def _logistic(dirs: list[Path], **options: Any) -> tuple[list[dict[str, Any]], OpenSums]:
    task = LogisticTask(
        FEATURES,
        "diagnosis",
        "malignant",
        options.pop("l2", 1.0),
        options.pop("max_iter", 100),
        options.pop("tol", 1e-10),
        **options,
    )
    rows = [load_logistic(d, task, i) for i, d in enumerate(dirs)]
    return simulate(rows, task, run_logistic)


@pytest.mark.parametrize("l2", [1.0, 0.1])
def test_newton_on_summed_statistics_matches_scikit_learn_on_pooled_rows(
    hospitals: list[Path], l2: float
) -> None:
    results, sums = _logistic(hospitals, l2=l2)
    assert all(r == results[0] for r in results)  # every party holds the same model
    model = results[0]
    table = pooled()
    x = StandardScaler().fit_transform(table[list(FEATURES)].to_numpy(float))
    y = (table["diagnosis"] == "malignant").to_numpy(int)
    reference = LogisticRegression(C=1 / l2, tol=1e-10, max_iter=10_000, solver="newton-cholesky")
    reference.fit(x, y)
    assert model["converged"] and model["n"] == 569
    np.testing.assert_allclose(model["coefficients"], reference.coef_[0], atol=1e-8)
    assert model["intercept"] == pytest.approx(reference.intercept_[0], abs=1e-8)
    # Opened: [n, sums], squared deviations, then one gradient+Hessian per iteration.
    d = len(FEATURES)
    assert [len(v) for v in sums.opened] == [d + 1, d] + [(d + 1) + (d + 1) * (d + 2) // 2] * model[
        "iterations"
    ]


def test_only_sums_over_all_parties_are_opened(hospitals: list[Path]) -> None:
    _, sums = _logistic(hospitals, max_iter=3, tol=0.0)
    table = pooled()
    x = table[list(FEATURES)].to_numpy(float)
    np.testing.assert_allclose(sums.opened[0], [569, *x.sum(axis=0)], rtol=1e-12)
    np.testing.assert_allclose(sums.opened[1], ((x - x.mean(axis=0)) ** 2).sum(axis=0), rtol=1e-9)
    assert len(sums.opened) == 2 + 3  # tol=0 runs exactly max_iter iterations


def test_without_standardization_the_model_is_on_the_raw_scale(hospitals: list[Path]) -> None:
    features = ("mean_radius", "mean_texture")
    task = LogisticTask(features, "diagnosis", "malignant", 1.0, 100, 1e-10, standardize=False)
    rows = [load_logistic(d, task, i) for i, d in enumerate(hospitals)]
    results, sums = simulate(rows, task, run_logistic)
    table = pooled()
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000, solver="newton-cholesky")
    reference.fit(table[list(features)].to_numpy(float), table["diagnosis"] == "malignant")
    np.testing.assert_allclose(results[0]["coefficients"], reference.coef_[0], atol=1e-7)
    assert results[0]["scales"] == [1.0, 1.0] and results[0]["means"] == [0.0, 0.0]
    assert len(sums.opened[0]) == 3 and len(sums.opened[1]) == 3 + 6  # no deviations round


def test_a_constant_feature_is_left_unscaled(hospitals: list[Path]) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(3):
        x = np.column_stack([rng.normal(size=50), np.full(50, 7.0)])
        rows.append(LocalRows(x, (x[:, 0] + rng.normal(size=50) > 0).astype(float)))
    task = LogisticTask(("a", "c"), "y", None, 1.0, 50, 1e-10)
    results, _ = simulate(rows, task, run_logistic)
    assert results[0]["scales"][1] == 1.0 and results[0]["means"][1] == pytest.approx(7.0)
    assert results[0]["coefficients"][1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kind", ["sum", "mean"])
def test_aggregates_open_sum_and_count(kind: str) -> None:
    rng = np.random.default_rng(1)
    parts = [rng.normal(5, 2, n) for n in (30, 45, 12)]
    rows = [LocalRows(p.reshape(-1, 1), None) for p in parts]
    results, sums = simulate(rows, AggregateTask(kind, "v"), run_aggregate)  # type: ignore[arg-type]
    pooled_values = np.concatenate(parts)
    expected = pooled_values.sum() if kind == "sum" else pooled_values.mean()
    assert results[0] == {"kind": kind, "value": pytest.approx(expected), "n": 87}
    assert len(sums.opened) == 1 and sums.opened[0][1] == 87


def test_values_beyond_the_fixed_point_range_are_refused() -> None:
    rows = [LocalRows(np.array([[1.0], [2.0]]), None) for _ in range(2)]
    rows.append(LocalRows(np.array([[MAX_MAGNITUDE / 2]]), None))

    async def main() -> None:
        sums = OpenSums(1)
        await run_aggregate(
            rows[2], AggregateTask("sum", "v"), sums.for_party(), parties=3, party=2
        )

    with pytest.raises(MpcDataError, match="fixed-point range") as caught:
        asyncio.run(main())
    assert caught.value.party == 2

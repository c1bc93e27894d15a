"""Secure sum, mean and logistic regression across three real party processes (bubblewrap,
MPyC over TCP on 127.0.0.1) equal the pooled results on the three-hospital breast cancer split."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ledger.compute.mpc import (
    PartyPool,
    bwrap_path,
    secure_logistic_regression,
    secure_mean,
    secure_sum,
)
from tests.unit.mpc.vaults import hospital_dirs, pooled

FEATURES = [c for c in pooled().columns if c not in ("diagnosis", "_row", "_contributor")]
FIXED_POINT = 1e-9  # three inputs rounded to 2**-40 each, with room


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return hospital_dirs(tmp_path_factory.mktemp("vaults"))


@pytest.fixture(scope="module")
def pool() -> Iterator[PartyPool]:
    with PartyPool(sandbox=True) as parties:
        yield parties


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_bubblewrap_is_installed_here() -> None:
    assert bwrap_path() is not None


def test_cold_secure_sum_equals_the_pooled_sum_and_leaves_no_process(
    hospitals: list[Path],
) -> None:
    before = _descendants()
    result = secure_sum(hospitals, "mean_radius", timeout=60)
    assert result.value == pytest.approx(pooled()["mean_radius"].sum(), abs=FIXED_POINT)
    assert (result.n, result.parties, result.kind) == (569, 3, "sum")
    assert result.timing.start > 0 and result.timing.total >= result.timing.protocol
    assert _descendants() <= before


@pytest.mark.parametrize(
    ("column", "filters", "query"),
    [
        ("mean_area", None, None),
        ("worst_texture", [("mean_radius", ">", 14.0)], "mean_radius > 14.0"),
        ("mean_smoothness", [("diagnosis", "==", "benign")], "diagnosis == 'benign'"),
    ],
)
def test_secure_sum_and_mean_equal_pooled(
    hospitals: list[Path],
    pool: PartyPool,
    column: str,
    filters: list[tuple[str, str, object]] | None,
    query: str | None,
) -> None:
    table = pooled() if query is None else pooled().query(query)
    total = secure_sum(hospitals, column, filters=filters, timeout=60, pool=pool)
    mean = secure_mean(hospitals, column, filters=filters, timeout=60, pool=pool)
    assert total.value == pytest.approx(table[column].sum(), abs=FIXED_POINT)
    assert mean.value == pytest.approx(table[column].mean(), abs=FIXED_POINT)
    assert total.n == mean.n == len(table)
    assert mean.kind == "mean" and not hasattr(mean, "sum")


def test_secure_logistic_regression_matches_scikit_learn_on_pooled_rows(
    hospitals: list[Path], pool: PartyPool
) -> None:
    model = secure_logistic_regression(
        hospitals,
        FEATURES,
        "diagnosis",
        positive_label="malignant",
        l2=1.0,
        max_iter=100,
        tol=1e-10,
        timeout=60,
        pool=pool,
    )
    table = pooled()
    x = table[FEATURES].to_numpy(float)
    y = (table["diagnosis"] == "malignant").to_numpy(int)
    scaler = StandardScaler().fit(x)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(scaler.transform(x), y)
    difference = max(
        float(np.abs(np.asarray(model.coefficients) - reference.coef_[0]).max()),
        abs(model.intercept - float(reference.intercept_[0])),
    )
    assert difference < 1e-4, f"max abs difference to scikit-learn: {difference:.3e}"
    exact = LogisticRegression(C=1.0, tol=1e-12, max_iter=100, solver="newton-cholesky")
    exact.fit(scaler.transform(x), y)
    np.testing.assert_allclose(model.coefficients, exact.coef_[0], atol=1e-8)
    np.testing.assert_allclose(model.means, scaler.mean_, rtol=1e-10)
    np.testing.assert_allclose(model.scales, scaler.scale_, rtol=1e-8)
    assert model.n == 569 and model.converged and 5 <= model.iterations <= 20
    np.testing.assert_allclose(
        model.predict_proba(x), reference.predict_proba(scaler.transform(x))[:, 1], atol=1e-5
    )


def test_a_warm_pool_reuses_its_parties(hospitals: list[Path], pool: PartyPool) -> None:
    secure_sum(hospitals, "mean_radius", timeout=60, pool=pool)
    pids = pool.pids()
    assert len(pids) == 3
    result = secure_sum(hospitals, "mean_radius", timeout=60, pool=pool)
    assert pool.pids() == pids
    assert result.timing.start < 0.05
    assert result.value == pytest.approx(pooled()["mean_radius"].sum(), abs=FIXED_POINT)


def test_logistic_regression_with_filters_and_boolean_label(
    hospitals: list[Path], pool: PartyPool
) -> None:
    features = ["mean_radius", "mean_texture", "mean_concavity"]
    model = secure_logistic_regression(
        hospitals,
        features,
        "diagnosis",
        positive_label="benign",
        l2=0.5,
        max_iter=50,
        tol=1e-10,
        filters=[("mean_area", "<", 1000.0)],
        timeout=60,
        pool=pool,
    )
    table = pooled().query("mean_area < 1000.0")
    x = StandardScaler().fit_transform(table[features].to_numpy(float))
    reference = LogisticRegression(C=2.0, tol=1e-12, max_iter=100, solver="newton-cholesky")
    reference.fit(x, table["diagnosis"] == "benign")
    np.testing.assert_allclose(model.coefficients, reference.coef_[0], atol=1e-8)
    assert model.intercept == pytest.approx(reference.intercept_[0], abs=1e-8)
    assert model.n == len(table)


def test_a_pool_outlives_the_thread_that_first_used_it(hospitals: list[Path]) -> None:
    # bwrap's --die-with-parent fires when the spawning *thread* ends: the pool spawns from a
    # thread of its own, so parties started during a short-lived worker's job stay usable.
    with PartyPool(sandbox=True) as pool:
        worker = threading.Thread(
            target=lambda: secure_sum(hospitals, "mean_radius", timeout=60, pool=pool)
        )
        worker.start()
        worker.join()
        pids = pool.pids()
        time.sleep(0.3)
        assert pool.pids() == pids and len(pids) == 3
        again = secure_sum(hospitals, "mean_radius", timeout=60, pool=pool)
        assert pool.pids() == pids and again.timing.start < 0.05


def test_five_parties_compute_the_pooled_mean(tmp_path: Path) -> None:
    dirs = hospital_dirs(tmp_path, "diabetes", parts=5)
    result = secure_mean(dirs, "bmi", filters=[("age", ">=", 50)], timeout=60)
    table = pooled("diabetes", parts=5).query("age >= 50")
    assert result.parties == 5 and result.n == len(table)
    assert result.value == pytest.approx(table["bmi"].mean(), abs=FIXED_POINT)

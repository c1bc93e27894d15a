"""Multi-owner templates through the engine: one MPyC party per hospital's dataset, results
equal to the pooled computation, released under the policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ledger.compute.engine import ComputeEngine, ComputeRequest, GrantBudget
from ledger.compute.errors import InvalidParameterError
from ledger.compute.mpc import MpcTooFewRowsError
from ledger.samples import hospital_split
from tests.unit.compute.data import write_dataset

FEATURES = ["mean_radius", "mean_texture", "mean_smoothness"]


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], pd.DataFrame]:
    root = tmp_path_factory.mktemp("hospitals")
    frames = [
        f.drop(columns=["record_id", "patient_id", "department"])
        for f in hospital_split("breast_cancer", 3)
    ]
    refs = [write_dataset(root, frame, dataset_id=i + 1) for i, frame in enumerate(frames)]
    return refs, pd.concat(frames, ignore_index=True)


def request(refs: list[Any], algorithm: str, params: dict[str, Any], k: int = 10) -> ComputeRequest:
    grants = [GrantBudget("0x" + f"{r.dataset_id:064x}", r.dataset_id, 0) for r in refs]
    return ComputeRequest(algorithm, params, refs, grants, k, timeout=120)


def test_secure_sum_and_mean_equal_the_pooled_values(hospitals: Any) -> None:
    refs, pooled = hospitals
    engine = ComputeEngine()
    total = engine.run(request(refs, "secure_sum", {"column": "mean_area"}))
    assert total.result["n"] == len(pooled)
    assert total.result["sum"] == pytest.approx(pooled["mean_area"].sum(), rel=1e-6)
    assert total.epsilon_spent == ()
    params = {
        "column": "mean_radius",
        "filters": [{"column": "diagnosis", "op": "==", "value": "benign"}],
    }
    mean = engine.run(request(refs, "secure_mean", params))
    benign = pooled[pooled["diagnosis"] == "benign"]["mean_radius"]
    assert mean.result["n"] == len(benign)
    assert mean.result["mean"] == pytest.approx(benign.mean(), rel=1e-6)


def test_secure_logistic_regression_matches_scikit_learn(hospitals: Any) -> None:
    refs, pooled = hospitals
    params = {"features": FEATURES, "label": "diagnosis", "positive_label": "malignant", "l2": 1.0}
    result = ComputeEngine().run(request(refs, "secure_logistic_regression", params)).result
    x = StandardScaler().fit_transform(pooled[FEATURES].to_numpy())
    y = (pooled["diagnosis"] == "malignant").to_numpy()
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x, y)
    assert [c["feature"] for c in result["coefficients"]] == FEATURES
    coefficients = np.array([c["coefficient"] for c in result["coefficients"]])
    np.testing.assert_allclose(coefficients, model.coef_[0], atol=1e-4)
    assert result["intercept"] == pytest.approx(model.intercept_[0], abs=1e-4)
    assert result["n"] == len(pooled) and result["converged"] is True


def test_every_party_needs_k_rows(hospitals: Any) -> None:
    refs, _ = hospitals
    # 190 rows per hospital: k = 191 refuses before anything is revealed.
    with pytest.raises(MpcTooFewRowsError) as caught:
        ComputeEngine().run(request(refs, "secure_sum", {"column": "mean_area"}, k=191))
    assert "191" in str(caught.value)


def test_null_filters_are_refused_for_secure_templates(hospitals: Any, tmp_path: Path) -> None:
    refs, _ = hospitals
    params = {"column": "mean_area", "filters": [{"column": "mean_area", "op": "is_null"}]}
    with pytest.raises(InvalidParameterError) as caught:
        ComputeEngine().run(request(refs, "secure_sum", params))
    assert caught.value.field == "params.filters.0.op"

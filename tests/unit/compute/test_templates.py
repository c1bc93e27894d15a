"""Templates through the engine on Parquet datasets: suppression at the k boundary,
Kaplan-Meier against lifelines, partition invariance, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter

from ledger.compute.backend import LocalBackend, open_dataset
from ledger.compute.catalog import entry
from ledger.compute.engine import ComputeEngine, ComputeRequest, GrantBudget, result_hash
from ledger.compute.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    ComputeUnavailableError,
    InvalidParameterError,
    InvalidRequestError,
    UnknownAlgorithmError,
)
from ledger.compute.templates._base import Template
from tests.unit.compute.data import lung, synthetic, write_dataset

GRANT = "0x" + "ab" * 32


def run(ref: Any, algorithm: str, params: dict[str, Any], k: int) -> dict[str, Any]:
    request = ComputeRequest(algorithm, params, [ref], [GrantBudget(GRANT, ref.dataset_id, 0)], k)
    return ComputeEngine().run(request).result


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Rows per site: a=5, b=4, c=20; ages 30 + i."""
    frame = pd.DataFrame({"site": ["a"] * 5 + ["b"] * 4 + ["c"] * 20, "age": np.arange(29) + 30.0})
    return write_dataset(tmp_path_factory.mktemp("sites"), frame, parts=2)


@pytest.mark.parametrize(("rows", "shown"), [(4, None), (5, 5), (0, 0)])
def test_cohort_count_at_the_k_boundary(sites: Any, rows: int, shown: int | None) -> None:
    # ages 30..58: age < 30 + rows selects exactly `rows` rows.
    params = {"filters": [{"column": "age", "op": "<", "value": 30 + rows}]}
    assert run(sites, "cohort_count", params, k=5) == {"count": shown}


def test_cohort_cells_with_complementary_suppression(sites: Any) -> None:
    params = {"group_by": {"column": "site", "categories": ["a", "b", "c"]}}
    result = run(sites, "cohort_count", params, k=5)
    # b (4) is below k; a (5) is hidden too, or total - a - c would reveal b.
    assert result == {
        "count": 29,
        "cells": [
            {"label": "a", "count": None},
            {"label": "b", "count": None},
            {"label": "c", "count": 20},
            {"label": "(other)", "count": 0},
        ],
    }
    released = run(sites, "cohort_count", params, k=4)
    assert [c["count"] for c in released["cells"]] == [5, 4, 20, 0]


def test_cohort_other_cell_collects_undeclared_values(sites: Any) -> None:
    params = {"group_by": {"column": "site", "categories": ["c"]}}
    result = run(sites, "cohort_count", params, k=5)
    assert [c["count"] for c in result["cells"]] == [20, 9]


@pytest.fixture(scope="module")
def lung_ref(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return write_dataset(tmp_path_factory.mktemp("lung"), lung(), parts=3)


@pytest.mark.parametrize(("unit", "k"), [(90, 2), (180, 5)])
def test_kaplan_meier_matches_lifelines_when_nothing_is_suppressed(
    lung_ref: Any, unit: int, k: int
) -> None:
    result = run(
        lung_ref, "kaplan_meier", {"time": "time", "event": "status", "time_unit": unit}, k
    )
    assert result["suppressed_steps"] == 0
    frame = lung()
    coarse = np.ceil(frame["time"] / unit) * unit
    fitter = KaplanMeierFitter().fit(coarse, event_observed=frame["status"] == 1)
    table = fitter.event_table
    expected_times = table.index[table["observed"] > 0]
    assert [s["time"] for s in result["steps"]] == [int(t) for t in expected_times]
    for step in result["steps"]:
        t = step["time"]
        assert step["survival"] == pytest.approx(
            fitter.survival_function_.loc[t].iloc[0], abs=1e-12
        )
        assert step["at_risk"] == table.loc[t, "at_risk"]
        assert step["events"] == table.loc[t, "observed"]
    assert result["n"] == len(frame)


def test_kaplan_meier_step_suppression_at_the_k_boundary(tmp_path: Path) -> None:
    # 3 events at t=1, 2 events at t=2, 10 censored at t=5: with k=3 the step at t=2 is hidden.
    frame = pd.DataFrame({"t": [1.0] * 3 + [2.0] * 2 + [5.0] * 10, "e": [1] * 5 + [0] * 10})
    ref = write_dataset(tmp_path, frame)
    result = run(ref, "kaplan_meier", {"time": "t", "event": "e"}, k=3)
    assert result["steps"] == [{"time": 1, "at_risk": 15, "events": 3, "survival": 0.8}]
    assert result["suppressed_steps"] == 1
    released = run(ref, "kaplan_meier", {"time": "t", "event": "e"}, k=2)
    assert [s["events"] for s in released["steps"]] == [3, 2]
    assert released["steps"][1]["survival"] == pytest.approx(0.8 * (1 - 2 / 12))


def test_kaplan_meier_too_few_rows_is_suppressed(tmp_path: Path) -> None:
    ref = write_dataset(tmp_path, pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 1, 1]}))
    result = run(ref, "kaplan_meier", {"time": "t", "event": "e"}, k=4)
    assert result == {"n": None, "time_unit": 1.0, "steps": [], "suppressed_steps": 0}


PARAMS: list[tuple[str, dict[str, Any]]] = [
    ("cohort_count", {"group_by": {"column": "site", "categories": ["north", "south"]}}),
    ("dp_count", {"epsilon": 1.0, "filters": [{"column": "smoker", "op": "==", "value": True}]}),
    ("dp_sum", {"epsilon": 1.0, "column": "value", "bounds": {"lo": 0, "hi": 100}}),
    ("dp_mean", {"epsilon": 1.0, "column": "value", "bounds": {"lo": 20, "hi": 80}}),
    ("dp_histogram", {"epsilon": 1.0, "column": "age", "bounds": {"lo": 18, "hi": 90}, "bins": 8}),
    ("dp_histogram", {"epsilon": 1.0, "column": "site", "categories": ["north", "central"]}),
    ("kaplan_meier", {"time": "value", "event": "smoker", "time_unit": 5, "filters": []}),
]


@pytest.mark.parametrize(("name", "params"), PARAMS)
def test_aggregates_do_not_depend_on_partitioning(
    tmp_path: Path, name: str, params: dict[str, Any]
) -> None:
    frame = synthetic(5000)
    one = open_dataset(write_dataset(tmp_path / "one", frame, parts=1))
    many = open_dataset(write_dataset(tmp_path / "many", frame, parts=7))
    assert len(many.files) == 7
    template = entry(name).template
    assert isinstance(template, Template)
    parsed = template.params_model.model_validate(params)
    backend = LocalBackend()
    assert backend.aggregate(template, parsed, one, None) == backend.aggregate(
        template, parsed, many, None
    )


def test_fixed_point_sum_is_the_clamped_sum(tmp_path: Path) -> None:
    frame = synthetic(1000)
    ref = open_dataset(write_dataset(tmp_path, frame, parts=3))
    template = entry("dp_sum").template
    assert isinstance(template, Template)
    params = template.params_model.model_validate(
        {"epsilon": 1.0, "column": "value", "bounds": {"lo": 40, "hi": 60}}
    )
    aggregate = LocalBackend().aggregate(template, params, ref, None)
    from ledger.compute.templates._noise import fixed_exponent

    s = fixed_exponent(60, ref.rows_total)
    assert aggregate["n"] == 1000
    assert aggregate["sum"] / 2**s == pytest.approx(frame["value"].clip(40, 60).sum(), abs=1e-3)


def test_result_hash_is_keccak_of_canonical_json() -> None:
    assert result_hash({"n": 5, "mean": 1.5}) == result_hash({"mean": 1.5, "n": 5})
    assert result_hash({"n": 5}) != result_hash({"n": 6})


# --- bad input through the engine -------------------------------------------------------------


def test_unknown_algorithm(sites: Any) -> None:
    with pytest.raises(UnknownAlgorithmError) as caught:
        run(sites, "dp_median", {}, k=5)
    assert "dp_mean" in caught.value.known
    with pytest.raises(UnknownAlgorithmError):
        run(sites, "0x" + "00" * 32, {}, k=5)


def test_filter_on_a_missing_column_through_the_engine(sites: Any) -> None:
    with pytest.raises(ColumnNotFoundError) as caught:
        run(sites, "cohort_count", {"filters": [{"column": "bmi", "op": ">", "value": 30}]}, 5)
    assert caught.value.field == "params.filters.0.column"


def test_mean_of_a_string_column(sites: Any) -> None:
    params = {"epsilon": 1, "column": "site", "bounds": {"lo": 0, "hi": 1}}
    with pytest.raises(ColumnTypeError) as caught:
        ComputeEngine().run(
            ComputeRequest("dp_mean", params, [sites], [GrantBudget(GRANT, 1, 10**6)], 5)
        )
    assert caught.value.field == "params.column" and caught.value.actual == "string"


def test_group_categories_must_match_the_column(sites: Any) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        run(sites, "cohort_count", {"group_by": {"column": "site", "categories": [1, 2]}}, 5)
    assert caught.value.field == "params.group_by.categories"


def test_dp_without_a_budget_ledger_is_refused(sites: Any) -> None:
    params = {"epsilon": 1, "column": "age", "bounds": {"lo": 0, "hi": 100}}
    with pytest.raises(ComputeUnavailableError, match="budget"):
        ComputeEngine().run(
            ComputeRequest("dp_mean", params, [sites], [GrantBudget(GRANT, 1, 10**6)], 5)
        )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"grants": []}, "grants"),
        ({"grants": [GrantBudget(GRANT, 1, 0), GrantBudget(GRANT, 1, 0)]}, "grants"),
        ({"grants": [GrantBudget(GRANT, 1, 0), GrantBudget(GRANT, 2, 0)]}, "grants"),
        ({"datasets": []}, "datasets"),
        ({"k": 1}, "k"),
        ({"algorithm": ""}, "algorithm"),
    ],
)
def test_malformed_requests(sites: Any, change: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {
        "algorithm": "cohort_count",
        "params": {},
        "datasets": [sites],
        "grants": [GrantBudget(GRANT, 1, 0)],
        "k": 5,
    }
    with pytest.raises(InvalidRequestError) as caught:
        ComputeEngine().run(ComputeRequest(**{**base, **change}))
    assert caught.value.field == field


def test_single_dataset_template_refuses_two(sites: Any, tmp_path: Path) -> None:
    other = write_dataset(tmp_path, synthetic(20), dataset_id=2)
    request = ComputeRequest(
        "cohort_count", {}, [sites, other], [GrantBudget(GRANT, 1, 0), GrantBudget(GRANT, 2, 0)], 5
    )
    with pytest.raises(InvalidRequestError, match="exactly one dataset"):
        ComputeEngine().run(request)


def test_secure_template_needs_two_datasets(sites: Any) -> None:
    with pytest.raises(InvalidRequestError, match="at least two"):
        run(sites, "secure_sum", {"column": "age"}, 5)


def test_custom_code_must_hash_to_the_algorithm(sites: Any) -> None:
    request = ComputeRequest(
        "0x" + "12" * 32,
        {},
        [sites],
        [GrantBudget(GRANT, 1, 0)],
        5,
        custom_code=b"def run(): ...\n",
    )
    with pytest.raises(InvalidRequestError) as caught:
        ComputeEngine().run(request)
    assert caught.value.field == "custom_code"


def test_missing_data_directory(tmp_path: Path) -> None:
    from ledger.compute.backend import DatasetRef
    from ledger.compute.errors import DatasetUnreadableError

    with pytest.raises(DatasetUnreadableError, match="dataset 9"):
        run(DatasetRef(9, 1, tmp_path / "nowhere"), "cohort_count", {}, 5)


def test_nan_and_infinite_values_cannot_break_the_sensitivity(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "v1" / "data"
    data.mkdir(parents=True)
    values = [1.0, float("nan"), float("inf"), -float("inf"), None, 3.0]
    times = [5.0, float("nan"), 7.0, float("inf"), 2.0, 9.0]
    table = pa.table(
        {
            "v": pa.array(values, type=pa.float64(), from_pandas=False),
            "t": pa.array(times, type=pa.float64()),
            "e": pa.array([1, 1, 1, 1, None, 0], type=pa.int64()),
            "_row": pa.array(range(6), type=pa.int64()),
            "_contributor": pa.array(["0x" + "0" * 64] * 6),
        }
    )
    pq.write_table(table, data / "part-00000.parquet")
    from ledger.compute.backend import DatasetRef

    dataset = open_dataset(DatasetRef(1, 1, data.parent))
    template = entry("dp_sum").template
    assert isinstance(template, Template)
    params = template.params_model.model_validate(
        {"epsilon": 1, "column": "v", "bounds": {"lo": -10, "hi": 10}}
    )
    aggregate = LocalBackend().aggregate(template, params, dataset, None)
    from ledger.compute.templates._noise import fixed_exponent

    # NaN and null dropped; +inf and -inf clamped to the bounds: 1 + 10 - 10 + 3.
    assert aggregate["n"] == 4
    assert aggregate["sum"] == 4 * 2 ** fixed_exponent(10, 6)
    km = entry("kaplan_meier").template
    assert isinstance(km, Template)
    km_params = km.params_model.model_validate({"time": "t", "event": "e"})
    km_aggregate = LocalBackend().aggregate(km, km_params, dataset, None)
    # Only rows 0, 2 and 5 have a finite time and event.
    assert km_aggregate["n"] == 3
    assert km_aggregate["events"] == {5: 1, 7: 1}


def test_result_binds_algorithm_parameters_runtime_and_result(sites: Any) -> None:
    from ledger.compute.catalog import runtime_hash
    from ledger.compute.params import canonical_json, keccak_hex

    grants = [GrantBudget(GRANT, 1, 0)]
    plain = ComputeEngine().run(ComputeRequest("cohort_count", {}, [sites], grants, 5))
    spelled = ComputeEngine().run(
        ComputeRequest(
            entry("cohort_count").hash, {"filters": [], "group_by": None}, [sites], grants, 5
        )
    )
    assert plain.algorithm_hash == spelled.algorithm_hash == entry("cohort_count").hash
    assert plain.parameters_hash == spelled.parameters_hash
    assert plain.parameters_hash == keccak_hex(canonical_json({"filters": [], "group_by": None}))
    assert plain.runtime_hash == runtime_hash()
    assert plain.result_hash == result_hash(plain.result) == spelled.result_hash
    assert plain.suppression_k == 5 and plain.datasets == ((1, 1),)
    assert plain.epsilon_spent == () and plain.reservation_id is None
    other = ComputeEngine().run(
        ComputeRequest(
            "cohort_count",
            {"filters": [{"column": "age", "op": ">", "value": 40}]},
            [sites],
            grants,
            5,
        )
    )
    assert other.parameters_hash != plain.parameters_hash

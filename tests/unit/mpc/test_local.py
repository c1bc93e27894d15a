"""A party's local step: reading its own data directory, filters, checks, local statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ledger.compute.mpc.errors import MpcColumnError, MpcDataError, MpcTooFewRowsError
from ledger.compute.mpc.local import load_aggregate, load_logistic, local_gradient_hessian
from ledger.compute.mpc.spec import AggregateTask, LogisticTask, normalize_filters
from tests.unit.mpc.vaults import hospital_dirs, write_data_dir


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 60
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "bmi": rng.normal(27, 4, n),
            "site": rng.choice(["a", "b", "c"], n),
            "smoker": rng.choice([True, False], n),
            "outcome": rng.choice(["dead", "alive"], n),
        }
    )


def _sum(directory: Path, column: str, filters: object = None, min_rows: int = 1) -> float:
    rows = load_aggregate(
        directory, AggregateTask("sum", column, normalize_filters(filters), min_rows), 0
    )
    return float(rows.x.sum())


@pytest.mark.parametrize(
    ("filters", "query"),
    [
        ([("age", ">=", 40)], "age >= 40"),
        ([("age", ">", 40), ("site", "==", "b")], "age > 40 and site == 'b'"),
        ([("site", "in", ["a", "c"])], "site in ['a', 'c']"),
        ([("site", "not in", ["a"])], "site not in ['a']"),
        ([("bmi", "<", 25.5)], "bmi < 25.5"),
        ([("age", "<=", 30)], "age <= 30"),
        ([("site", "!=", "a")], "site != 'a'"),
        ([("smoker", "==", True)], "smoker == True"),
    ],
)
def test_filters_keep_the_rows_pandas_keeps(
    tmp_path: Path, frame: pd.DataFrame, filters: object, query: str
) -> None:
    directory = write_data_dir(tmp_path / "v1", frame, parts=3)
    expected = frame.query(query)["bmi"].sum()
    assert _sum(directory, "bmi", filters) == pytest.approx(expected, rel=1e-12)


def test_nulls_and_nan_are_skipped_and_counted_out(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame["bmi"] = frame["bmi"].astype(object)
    frame.loc[[1, 5], "bmi"] = None
    frame["bmi"] = frame["bmi"].astype(float)
    frame.loc[9, "bmi"] = np.nan
    directory = write_data_dir(tmp_path / "v1", frame)
    rows = load_aggregate(directory, AggregateTask("sum", "bmi", (), 1), 0)
    assert rows.n == len(frame) - 3
    assert rows.x.sum() == pytest.approx(frame["bmi"].sum(skipna=True))


def test_infinite_values_are_refused(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame.loc[3, "bmi"] = np.inf
    directory = write_data_dir(tmp_path / "v1", frame)
    with pytest.raises(MpcDataError, match="infinite") as caught:
        _sum(directory, "bmi")
    assert caught.value.party == 0 and caught.value.field == "bmi"


def test_missing_and_non_numeric_columns_are_refused(tmp_path: Path, frame: pd.DataFrame) -> None:
    directory = write_data_dir(tmp_path / "v1", frame)
    with pytest.raises(MpcColumnError) as caught:
        _sum(directory, "weight")
    assert caught.value.column == "weight"
    with pytest.raises(MpcColumnError, match="not numeric"):
        _sum(directory, "site")
    with pytest.raises(MpcColumnError) as caught:
        _sum(directory, "bmi", [("ward", "==", "x")])
    assert caught.value.column == "ward"


def test_a_filter_of_the_wrong_type_is_a_data_error(tmp_path: Path, frame: pd.DataFrame) -> None:
    directory = write_data_dir(tmp_path / "v1", frame)
    with pytest.raises(MpcDataError, match="compared") as caught:
        _sum(directory, "bmi", [("age", "==", "old")])
    assert caught.value.field == "age"


def test_too_few_rows_refuses_without_showing_the_count(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    directory = write_data_dir(tmp_path / "v1", frame)
    assert _sum(directory, "bmi", [("site", "==", "a")], min_rows=5) > 0
    with pytest.raises(MpcTooFewRowsError) as caught:
        _sum(directory, "bmi", [("age", ">", 1000)], min_rows=1)
    assert caught.value.minimum == 1
    with pytest.raises(MpcTooFewRowsError) as caught:
        _sum(directory, "bmi", min_rows=61)
    assert "60" not in str(caught.value)


def test_empty_or_unreadable_directories_are_data_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MpcDataError, match="no Parquet files"):
        _sum(empty, "bmi")
    (empty / "part-0.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(MpcDataError, match="not readable Parquet"):
        _sum(empty, "bmi")


def test_logistic_rows_are_complete_cases_with_the_label(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    frame.loc[[2, 4], "bmi"] = np.nan
    directory = write_data_dir(tmp_path / "v1", frame)
    task = LogisticTask(("age", "bmi", "smoker"), "outcome", "dead", 1.0, 10, 1e-8)
    rows = load_logistic(directory, task, 0)
    complete = frame.dropna(subset=["bmi"])
    assert rows.n == len(complete)
    assert rows.y is not None
    np.testing.assert_array_equal(rows.y, (complete["outcome"] == "dead").to_numpy(float))
    np.testing.assert_array_equal(rows.x[:, 2], complete["smoker"].to_numpy(float))
    assert "n=58" in repr(rows) and "dead" not in repr(rows)


def test_labels_must_be_binary_without_positive_label(tmp_path: Path, frame: pd.DataFrame) -> None:
    frame["flag"] = frame["smoker"].astype(int)
    directory = write_data_dir(tmp_path / "v1", frame)
    rows = load_logistic(directory, LogisticTask(("bmi",), "flag", None, 1.0, 10, 1e-8), 0)
    assert rows.y is not None and set(np.unique(rows.y)) == {0.0, 1.0}
    with pytest.raises(MpcColumnError, match="0/1"):
        load_logistic(directory, LogisticTask(("bmi",), "age", None, 1.0, 10, 1e-8), 0)
    with pytest.raises(MpcColumnError, match="positive_label"):
        load_logistic(directory, LogisticTask(("bmi",), "outcome", 3, 1.0, 10, 1e-8), 0)


def test_local_gradient_and_hessian_are_those_of_the_log_loss() -> None:
    rng = np.random.default_rng(3)
    z = np.column_stack([rng.normal(size=(40, 3)), np.ones(40)])
    y = rng.integers(0, 2, 40).astype(float)
    theta = rng.normal(size=4) * 0.3

    def loss(t: np.ndarray) -> float:
        m = z @ t
        return float(np.sum(np.logaddexp(0, m) - y * m))

    gradient, upper = local_gradient_hessian(z, y, theta)
    eps = 1e-6
    numeric = [(loss(theta + eps * e) - loss(theta - eps * e)) / (2 * eps) for e in np.eye(4)]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)
    hessian = np.zeros((4, 4))
    hessian[np.triu_indices(4)] = upper
    hessian = hessian + np.triu(hessian, 1).T
    numeric_h = np.array(
        [(local_gradient_hessian(z, y, theta + eps * e)[0] - gradient) / eps for e in np.eye(4)]
    )
    np.testing.assert_allclose(hessian, numeric_h, rtol=1e-4, atol=1e-4)


def test_hospital_split_dirs_hold_vault_columns(tmp_path: Path) -> None:
    dirs = hospital_dirs(tmp_path)
    assert [d.name for d in dirs] == ["data"] * 3
    rows = load_aggregate(dirs[1], AggregateTask("sum", "mean_radius"), 1)
    assert rows.n == 190


@pytest.mark.parametrize(
    ("filters", "expected_rows"),
    [
        ([("admitted", ">=", "2021-01-01")], 2),
        ([("admitted", "<", "2021-01-01")], 1),
        ([("admitted", "in", ["2020-03-01", "2022-07-15"])], 2),
        ([("admitted", "==", "not a date")], None),
    ],
)
def test_date_columns_compare_with_iso_strings(
    tmp_path: Path, filters: object, expected_rows: int | None
) -> None:
    import datetime

    frame = pd.DataFrame(
        {
            "admitted": [
                datetime.date(2020, 3, 1),
                datetime.date(2021, 2, 2),
                datetime.date(2022, 7, 15),
            ],
            "cost": [1.0, 2.0, 4.0],
        }
    )
    directory = write_data_dir(tmp_path / "v1", frame)
    task = AggregateTask("sum", "cost", normalize_filters(filters), 1)
    if expected_rows is None:
        with pytest.raises(MpcDataError, match="compared"):
            load_aggregate(directory, task, 0)
    else:
        assert load_aggregate(directory, task, 0).n == expected_rows

"""The release policy: shapes, suppression at the k boundary, custom output."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ledger.compute.errors import ReleaseRefusedError
from ledger.compute.policy import (
    Count,
    Label,
    ListOf,
    Number,
    Obj,
    Stat,
    check_release,
    custom_shape,
    release_custom,
)

MEAN = Obj({"mean": Stat(), "n": Count()})


def test_count_at_k_is_released_and_k_minus_one_refused() -> None:
    assert check_release({"mean": 1.5, "n": 5}, MEAN, 5) == {"mean": 1.5, "n": 5}
    with pytest.raises(ReleaseRefusedError) as caught:
        check_release({"mean": 1.5, "n": 4}, MEAN, 5)
    assert caught.value.path == "n"
    assert "must be suppressed" in caught.value.rule


def test_empty_cell_may_show_zero() -> None:
    assert check_release({"mean": None, "n": 0}, MEAN, 5)["n"] == 0


def test_statistic_over_a_suppressed_count_must_be_null() -> None:
    assert check_release({"mean": None, "n": None}, MEAN, 5) == {"mean": None, "n": None}
    with pytest.raises(ReleaseRefusedError) as caught:
        check_release({"mean": 41.0, "n": None}, MEAN, 5)
    assert caught.value.path == "mean"


@pytest.mark.parametrize(
    ("result", "path"),
    [
        ({"mean": "41", "n": 9}, "mean"),
        ({"mean": math.nan, "n": 9}, "mean"),
        ({"mean": True, "n": 9}, "mean"),
        ({"mean": 1.0, "n": 9.0}, "n"),
        ({"mean": 1.0, "n": -9}, "n"),
        ({"mean": 1.0}, ""),
        ({"mean": 1.0, "n": 9, "rows": [1, 2]}, ""),
    ],
)
def test_wrong_shapes_are_refused(result: dict[str, Any], path: str) -> None:
    with pytest.raises(ReleaseRefusedError) as caught:
        check_release(result, MEAN, 5)
    assert caught.value.path == path


def test_refusal_never_shows_the_value() -> None:
    with pytest.raises(ReleaseRefusedError) as caught:
        check_release({"mean": "Jane Doe, 1961-04-02", "n": 9}, MEAN, 5)
    assert "Jane" not in str(caught.value)


def test_labels_only_from_the_request() -> None:
    shape = Obj(
        {"cells": ListOf(Obj({"label": Label(frozenset({"a", "b"})), "count": Count()}), 3)}
    )
    assert check_release({"cells": [{"label": "a", "count": 7}]}, shape, 5)
    with pytest.raises(ReleaseRefusedError) as caught:
        check_release({"cells": [{"label": "MRN0012345", "count": 7}]}, shape, 5)
    assert caught.value.path == "cells[0].label"
    with pytest.raises(ReleaseRefusedError, match="at most 3"):
        check_release({"cells": [{"label": "a", "count": 7}] * 4}, shape, 5)


def test_number_is_any_finite_number() -> None:
    shape = Obj({"lo": Number()})
    assert check_release({"lo": -1}, shape, 2)
    with pytest.raises(ReleaseRefusedError):
        check_release({"lo": None}, shape, 2)
    with pytest.raises(ReleaseRefusedError):
        check_release({"lo": math.inf}, shape, 2)


def test_result_must_be_an_object() -> None:
    with pytest.raises(ReleaseRefusedError):
        check_release([1, 2], MEAN, 2)


def test_custom_aggregates_released_at_k_and_suppressed_below() -> None:
    payload = {
        "aggregates": {"mean_age": {"value": 61.5, "n": 10}, "mean_bmi": {"value": 27.0, "n": 9}}
    }
    released = release_custom(payload, 10)
    assert released == {
        "aggregates": {
            "mean_age": {"value": 61.5, "n": 10, "suppressed": False},
            "mean_bmi": {"value": None, "n": None, "suppressed": True},
        }
    }
    assert check_release(released, custom_shape(["mean_age", "mean_bmi"]), 10) == released


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"rows": [[1, 2]]}, ""),
        ({"aggregates": {"m": {"value": 1.0, "n": 10}}, "debug": "x"}, ""),
        ({"aggregates": []}, "aggregates"),
        ({"aggregates": {}}, "aggregates"),
        ({"aggregates": {"Mean": {"value": 1.0, "n": 10}}}, "aggregates[0]"),
        ({"aggregates": {"m": {"value": "61", "n": 10}}}, "aggregates.m.value"),
        ({"aggregates": {"m": {"value": [1, 2, 3], "n": 10}}}, "aggregates.m.value"),
        ({"aggregates": {"m": {"value": math.inf, "n": 10}}}, "aggregates.m.value"),
        ({"aggregates": {"m": {"value": 1.0, "n": True}}}, "aggregates.m.n"),
        ({"aggregates": {"m": {"value": 1.0, "n": 2000}}}, "aggregates.m.n"),
        ({"aggregates": {"m": {"value": 1.0, "n": 10, "ids": [1]}}}, "aggregates.m"),
        ({"aggregates": {"m": {"value": {"v": 1}, "n": 10}}}, "aggregates.m.value"),
        ({"aggregates": {"other": {"value": 1.0, "n": 10}}}, "aggregates.other"),
    ],
)
def test_custom_output_of_other_shapes_is_refused(payload: Any, path: str) -> None:
    with pytest.raises(ReleaseRefusedError) as caught:
        release_custom(payload, 5, declared=["m"], rows_total=1000)
    assert caught.value.path == path


def test_custom_output_size_is_bounded() -> None:
    payload = {"aggregates": {f"a{i}": {"value": 1.0, "n": 10} for i in range(65)}}
    with pytest.raises(ReleaseRefusedError, match="1 to 64"):
        release_custom(payload, 5)
    assert len(release_custom(payload, 5, max_aggregates=65)["aggregates"]) == 65

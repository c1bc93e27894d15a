"""Parameters: each rule broken gives a typed error naming the field and the rule."""

from __future__ import annotations

import pickle
from typing import Any

import pyarrow as pa
import pytest

from ledger.compute.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    InvalidParameterError,
    InvalidRequestError,
)
from ledger.compute.params import (
    DPParams,
    Filter,
    canonical_json,
    check_filters,
    column_kinds,
    parse_params,
)
from ledger.compute.policy import check_k
from ledger.compute.templates.cohort_count import CohortCountParams
from ledger.compute.templates.dp_histogram import DPHistogramParams
from ledger.compute.templates.dp_mean import DPMeanParams
from ledger.compute.templates.kaplan_meier import KaplanMeierParams

MEAN: dict[str, Any] = {"epsilon": 1.0, "column": "age", "bounds": {"lo": 0, "hi": 100}}


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"epsilon": 0}, "params.epsilon", "greater than 0"),
        ({"epsilon": -1}, "params.epsilon", "greater than 0"),
        ({"epsilon": 10.5}, "params.epsilon", "less than or equal to 10"),
        ({"epsilon": 0.1234567}, "params", "whole number of micro-epsilon"),
        ({"bounds": {"lo": 5, "hi": 5}}, "params.bounds", "lo must be below hi"),
        ({"bounds": {"lo": 9, "hi": 1}}, "params.bounds", "lo must be below hi"),
        ({"bounds": {"lo": 0, "hi": 1e13}}, "params.bounds.hi", "less than or equal to"),
        ({"column": ""}, "params.column", "at least 1 character"),
        ({"extra": 1}, "params.extra", "is not a parameter of this algorithm"),
        ({"filters": [{"column": "age", "op": "~", "value": 1}]}, "params.filters.0.op", "Input"),
        ({"filters": [{"column": "age", "op": "<"}]}, "params.filters.0", "needs a single value"),
        ({"filters": [{"column": "age", "op": "in", "value": []}]}, "params.filters.0", "list"),
    ],
)
def test_mean_parameter_rules(change: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_params(DPMeanParams, {**MEAN, **change})
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert field in str(caught.value)


def test_missing_parameter_is_named() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_params(DPMeanParams, {"epsilon": 1.0, "column": "age"})
    assert caught.value.field == "params.bounds"
    assert "required" in caught.value.rule.lower()


def test_params_must_be_an_object() -> None:
    with pytest.raises(InvalidParameterError, match="JSON object"):
        parse_params(DPMeanParams, [1, 2])  # type: ignore[arg-type]


def test_epsilon_in_micro_epsilon_is_exact() -> None:
    assert parse_params(DPParams, {"epsilon": 0.1}).epsilon_micro == 100_000
    assert parse_params(DPParams, {"epsilon": 0.000001}).epsilon_micro == 1
    assert parse_params(DPParams, {"epsilon": 10}).epsilon_micro == 10_000_000


def test_histogram_rules() -> None:
    base = {"epsilon": 1.0, "column": "age"}
    with pytest.raises(InvalidParameterError, match="less than or equal to 1000"):
        parse_params(DPHistogramParams, {**base, "bounds": {"lo": 0, "hi": 1}, "bins": 1001})
    with pytest.raises(InvalidParameterError, match="needs both bounds and bins"):
        parse_params(DPHistogramParams, {**base, "bins": 10})
    with pytest.raises(InvalidParameterError, match="not both"):
        parse_params(
            DPHistogramParams,
            {**base, "bounds": {"lo": 0, "hi": 1}, "bins": 2, "categories": ["a"]},
        )
    with pytest.raises(InvalidParameterError, match="distinct"):
        parse_params(DPHistogramParams, {**base, "categories": ["a", "a"]})


def test_kaplan_meier_time_unit_must_be_positive() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_params(KaplanMeierParams, {"time": "t", "event": "e", "time_unit": 0})
    assert caught.value.field == "params.time_unit"


@pytest.mark.parametrize("k", [1, 0, -3, 1_000_001, 2.5, True, "5", None])
def test_k_below_two_or_not_an_integer_is_refused(k: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_k(k)
    assert caught.value.field == "k"


def test_k_range_accepted() -> None:
    assert check_k(2) == 2
    assert check_k(1_000_000) == 1_000_000


SCHEMA = pa.schema(
    [
        ("age", pa.int64()),
        ("value", pa.float64()),
        ("site", pa.string()),
        ("smoker", pa.bool_()),
        ("born", pa.date32()),
        ("_row", pa.int64()),
        ("_contributor", pa.string()),
    ]
)


def test_column_kinds_hide_vault_columns() -> None:
    assert column_kinds(SCHEMA) == {
        "age": "number",
        "value": "number",
        "site": "string",
        "smoker": "bool",
        "born": "date",
    }


def _filters(*items: dict[str, Any]) -> list[Filter]:
    return parse_params(CohortCountParams, {"filters": list(items)}).filters


def test_filter_on_a_missing_column() -> None:
    with pytest.raises(ColumnNotFoundError) as caught:
        check_filters(
            _filters({"column": "weight", "op": ">", "value": 3}), column_kinds(SCHEMA), 7
        )
    assert caught.value.field == "params.filters.0.column"
    assert caught.value.column == "weight"
    assert "does not exist in dataset 7" in str(caught.value)


def test_filter_on_the_vault_columns_is_refused() -> None:
    with pytest.raises(ColumnNotFoundError):
        check_filters(_filters({"column": "_row", "op": "==", "value": 3}), column_kinds(SCHEMA), 7)


def test_order_filter_on_a_string_column_is_a_type_error() -> None:
    with pytest.raises(ColumnTypeError) as caught:
        check_filters(
            _filters({"column": "site", "op": "<", "value": "b"}), column_kinds(SCHEMA), 1
        )
    assert caught.value.expected == "number or date"
    assert caught.value.actual == "string"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"column": "age", "op": "==", "value": "old"}, "params.filters.0.value"),
        ({"column": "site", "op": "in", "value": ["a", 3]}, "params.filters.0.value"),
        ({"column": "smoker", "op": "==", "value": 1}, "params.filters.0.value"),
        ({"column": "born", "op": ">", "value": "1990-13-01"}, "params.filters.0.value"),
    ],
)
def test_filter_value_must_fit_the_column(item: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        check_filters(_filters(item), column_kinds(SCHEMA), 1)
    assert caught.value.field == field


def test_errors_survive_pickling() -> None:
    for error in (
        ColumnNotFoundError("params.column", "weight", 3),
        ColumnTypeError("params.column", "site", "number", "string"),
        InvalidParameterError("epsilon", "must be > 0"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


def test_canonical_json_sorts_keys() -> None:
    assert canonical_json({"b": 1, "a": [1.5, None]}) == b'{"a":[1.5,null],"b":1}'

"""Public parameters: filters, column names, task JSON, and the MPC errors."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import pytest

from ledger.compute.mpc.errors import (
    MpcColumnError,
    MpcDataError,
    MpcError,
    MpcIsolationError,
    MpcParameterError,
    MpcPartyError,
    MpcProtocolError,
    MpcTimeoutError,
    MpcTooFewRowsError,
)
from ledger.compute.mpc.spec import (
    AggregateTask,
    LogisticTask,
    check_column,
    normalize_filters,
    task_from_json,
    task_to_json,
)
from ledger.errors import LedgerError


@dataclass
class _Filter:
    column: str
    op: str
    value: object


def test_filters_are_normalized_from_triples_and_objects() -> None:
    filters = normalize_filters(
        [("age", ">=", 18), ["site", "in", ["a", "b"]], _Filter("sex", "=", "f")]
    )
    assert filters == (("age", ">=", 18), ("site", "in", ("a", "b")), ("sex", "==", "f"))
    assert normalize_filters(None) == ()


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ("age > 3", "filters"),
        ([("age", ">")], "filters[0]"),
        ([("age", "~", 3)], "filters[0].op"),
        ([("_row", "==", 3)], "filters[0].column"),
        ([("age", "in", [])], "filters[0].value"),
        ([("age", "in", "abc")], "filters[0].value"),
        ([("age", "==", float("nan"))], "filters[0].value"),
        ([("age", "==", None)], "filters[0].value"),
        ([("age", "==", 1), ("", "==", 1)], "filters[1].column"),
    ],
)
def test_bad_filters_name_the_field(filters: object, field: str) -> None:
    with pytest.raises(MpcParameterError) as caught:
        normalize_filters(filters)
    assert caught.value.field == field
    assert field in str(caught.value)


@pytest.mark.parametrize("name", ["_row", "_contributor", "", "a\nb", 3, "x" * 129])
def test_system_and_malformed_columns_are_refused(name: object) -> None:
    with pytest.raises(MpcParameterError, match="column"):
        check_column("column", name)


@pytest.mark.parametrize(
    "task",
    [
        AggregateTask("sum", "age", (("site", "in", ("a", "b")),), 5),
        AggregateTask("mean", "age"),
        LogisticTask(("a", "b"), "y", "yes", 0.5, 20, 1e-9, False, (("a", ">", 1.5),), 12),
        LogisticTask(("a",), "y", None, 1.0, 1, 0.0),
    ],
)
def test_tasks_round_trip_through_json(task: AggregateTask | LogisticTask) -> None:
    assert task_from_json(task_to_json(task)) == task


def test_unknown_task_kind_is_refused() -> None:
    data = task_to_json(AggregateTask("sum", "age"))
    data["kind"] = "median"
    with pytest.raises(MpcParameterError, match="kind"):
        task_from_json(data)


@pytest.mark.parametrize(
    "error",
    [
        MpcParameterError("l2", "a number in (0, 1e12]", -1.0),
        MpcDataError(2, "age", "has infinite values"),
        MpcColumnError(1, "age"),
        MpcTooFewRowsError(0, 10),
        MpcPartyError(1, "the party process was killed by signal 9"),
        MpcTimeoutError(2.5, "computing", 1),
        MpcIsolationError("bubblewrap (bwrap) is not installed"),
        MpcProtocolError(None, "the parties revealed different results"),
    ],
)
def test_errors_are_ledger_errors_and_survive_pickling(error: MpcError) -> None:
    assert isinstance(error, LedgerError)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_error_messages_name_party_field_and_rule() -> None:
    assert str(MpcColumnError(1, "age")) == "party 1: 'age' is not a column of the data"
    too_few = MpcTooFewRowsError(0, 10)
    assert "party 0" in str(too_few) and "minimum of 10" in str(too_few)
    timeout = MpcTimeoutError(2.5, "computing", 1)
    assert isinstance(timeout, TimeoutError) and isinstance(timeout, MpcPartyError)
    assert "2.5 s" in str(timeout) and "no result was released" in str(timeout)
    assert isinstance(MpcColumnError(0, "x"), LookupError)
    assert isinstance(MpcParameterError("l2", "positive", 0), ValueError)

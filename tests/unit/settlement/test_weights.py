"""Vault weights: rows used per contributor over real Parquet files, and the weights store."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ledger.settlement.errors import WeightsError
from ledger.settlement.weights import (
    load_weights,
    record_weights,
    rows_used_by_contributor,
    weights_path,
)

P = [f"0x{i:064x}" for i in range(1, 4)]
JOB = "0x" + "ab" * 32


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Two partitions: 6 rows by three contributors (one row without a contributor)."""
    data = tmp_path / "v1" / "data"
    data.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "_row": [0, 1, 2, 3],
                "_contributor": [P[0], P[0], P[1], None],
                "age": [40, 55, 61, 70],
                "bmi": [None, 22.0, 30.5, 25.0],
            }
        ),
        data / "part-00000.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "_row": [4, 5],
                "_contributor": [P[2], P[0]],
                "age": [35, 66],
                "bmi": [21.0, 27.5],
            }
        ),
        data / "part-00001.parquet",
    )
    return data


def test_rows_used_counts_every_attributed_row(data_dir: Path) -> None:
    assert rows_used_by_contributor(data_dir) == {P[0]: 3, P[1]: 1, P[2]: 1}


def test_rows_used_applies_filters_and_non_null_columns(data_dir: Path) -> None:
    assert rows_used_by_contributor(data_dir, [("age", ">=", 50)]) == {P[0]: 2, P[1]: 1}
    assert rows_used_by_contributor(data_dir, pc.field("age") < 50) == {P[0]: 1, P[2]: 1}
    assert rows_used_by_contributor(data_dir, columns=["bmi"]) == {P[0]: 2, P[1]: 1, P[2]: 1}
    both = rows_used_by_contributor(data_dir, [("age", ">=", 50)], columns=["bmi"])
    assert both == {P[0]: 2, P[1]: 1}
    assert rows_used_by_contributor(data_dir, [("age", ">", 100)]) == {}


def test_rows_used_refuses_unknown_columns_and_missing_data(data_dir: Path) -> None:
    with pytest.raises(KeyError, match="'weight' is not in the vault data"):
        rows_used_by_contributor(data_dir, columns=["weight"])
    with pytest.raises(FileNotFoundError, match="no vault data directory"):
        rows_used_by_contributor(data_dir.parent / "missing")


def test_weights_round_trip_and_are_written_once(tmp_path: Path) -> None:
    path = record_weights(tmp_path, job_id=JOB, dataset_id=3, version=2, weights={P[0]: 5})
    assert path == weights_path(tmp_path, JOB) == tmp_path / "usage" / f"{JOB}.json"
    assert json.loads(path.read_text()) == {
        "job_id": JOB,
        "dataset_id": 3,
        "version": 2,
        "weights": {P[0]: 5},
    }
    loaded = load_weights(tmp_path, JOB.upper().replace("0X", "0x"), dataset_id=3, version=2)
    assert loaded.weights == {P[0]: 5} and loaded.rows == 5
    assert record_weights(tmp_path, job_id=JOB, dataset_id=3, version=2, weights={P[0]: 5}) == path
    with pytest.raises(WeightsError, match="other weights were recorded"):
        record_weights(tmp_path, job_id=JOB, dataset_id=3, version=2, weights={P[0]: 6})
    assert json.loads(path.read_text())["weights"] == {P[0]: 5}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"job_id": "0x12"}, "job_id must be 0x followed by 64 hex digits"),
        ({"version": 0}, "version must be an integer >= 1"),
        ({"weights": {"alice": 3}}, "every weights key must be a pseudonym"),
        ({"weights": {P[0]: -1}}, "every weight must be an integer number of rows >= 0"),
        ({"weights": {P[0]: 1.5}}, "every weight must be an integer number of rows >= 0"),
    ],
)
def test_record_weights_refuses_bad_fields(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"job_id": JOB, "dataset_id": 3, "version": 1, "weights": {P[0]: 1}}
    args.update(kwargs)
    with pytest.raises(WeightsError, match=message):
        record_weights(tmp_path, **args)  # type: ignore[arg-type]
    assert not (tmp_path / "usage").exists() or not any((tmp_path / "usage").iterdir())


def test_load_weights_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no weights file") as info:
        load_weights(tmp_path, JOB, dataset_id=3)
    assert info.value.job_id == JOB and info.value.dataset_id == 3
    record_weights(tmp_path, job_id=JOB, dataset_id=3, version=1, weights={P[0]: 1})
    with pytest.raises(WeightsError, match="dataset_id must be 4"):
        load_weights(tmp_path, JOB, dataset_id=4)
    with pytest.raises(WeightsError, match="version is 1, the job used version 2"):
        load_weights(tmp_path, JOB, dataset_id=3, version=2)
    weights_path(tmp_path, JOB).write_text("{not json")
    with pytest.raises(WeightsError, match="unreadable"):
        load_weights(tmp_path, JOB, dataset_id=3)

"""Custom code through the engine: run in the real sandbox (bubblewrap), then the release
policy; a refused result spends nothing and releases nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ledger.compute.catalog import code_hash
from ledger.compute.engine import ComputeEngine, ComputeRequest, GrantBudget
from ledger.compute.errors import ReleaseRefusedError
from tests.unit.compute.data import synthetic, write_dataset

MEANS = b"""import pyarrow.dataset as ds


def run(input_dirs, params):
    table = ds.dataset(input_dirs[0], format="parquet").to_table(columns=[params["column"]])
    values = table.column(params["column"]).to_pylist()
    smokers = ds.dataset(input_dirs[0], format="parquet").to_table(
        filter=ds.field("smoker") == True  # noqa: E712
    )
    return {
        "aggregates": {
            "mean": {"value": sum(values) / len(values), "n": len(values)},
            "smokers": {"value": float(smokers.num_rows), "n": smokers.num_rows},
        }
    }
"""

LEAK = b"""import pyarrow.dataset as ds


def run(input_dirs, params):
    table = ds.dataset(input_dirs[0], format="parquet").to_table(columns=["site"])
    return {"aggregates": {"sites": {"value": table.column("site").to_pylist()[:3], "n": 100}}}
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return write_dataset(tmp_path_factory.mktemp("custom"), synthetic(60, seed=3))


def request(dataset: Any, code: bytes, **extra: Any) -> ComputeRequest:
    return ComputeRequest(
        code_hash(code),
        {"column": "value"},
        [dataset],
        [GrantBudget("0x" + "c0" * 32, dataset.dataset_id, 0)],
        k=20,
        custom_code=code,
        **extra,
    )


def test_custom_aggregates_are_released_and_small_ones_suppressed(dataset: Any) -> None:
    frame = synthetic(60, seed=3)
    smokers = int(frame["smoker"].sum())
    assert smokers < 20  # the second aggregate is below k
    result = ComputeEngine().run(request(dataset, MEANS, custom_aggregates=["mean", "smokers"]))
    assert result.algorithm_hash == code_hash(MEANS)
    assert result.algorithm_name is None and result.backend == "sandbox"
    assert result.result["aggregates"]["mean"]["n"] == 60
    assert result.result["aggregates"]["mean"]["value"] == pytest.approx(frame["value"].mean())
    assert result.result["aggregates"]["smokers"] == {"value": None, "n": None, "suppressed": True}
    assert result.epsilon_spent == ()


def test_custom_output_with_row_values_is_refused(dataset: Any) -> None:
    with pytest.raises(ReleaseRefusedError) as caught:
        ComputeEngine().run(request(dataset, LEAK))
    assert caught.value.path == "aggregates.sites.value"
    assert "north" not in str(caught.value) and "south" not in str(caught.value)


def test_undeclared_aggregate_names_are_refused(dataset: Any, tmp_path: Path) -> None:
    with pytest.raises(ReleaseRefusedError, match="not a declared aggregate name"):
        ComputeEngine().run(request(dataset, MEANS, custom_aggregates=["mean"]))

"""The Dask backend on a real distributed LocalCluster (127.0.0.1, two workers): the same exact
aggregates as the local backend for every template, noise of the same scale, added once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client, LocalCluster

from ledger.compute.backend import DaskBackend, LocalBackend, backend_from_settings, open_dataset
from ledger.compute.budget import BudgetLedger
from ledger.compute.catalog import entry
from ledger.compute.engine import ComputeEngine, ComputeRequest, GrantBudget
from ledger.compute.errors import ColumnNotFoundError
from ledger.compute.templates._base import Template
from ledger.settings import load_settings
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade
from tests.unit.compute.data import lung, synthetic, write_dataset
from tests.unit.compute.test_templates import PARAMS

GRANT = "0x" + "0d" * 32


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as dask_client,
    ):
        yield dask_client


@pytest.fixture(scope="module")
def frame_ref(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return write_dataset(tmp_path_factory.mktemp("dask"), synthetic(20_000), parts=6)


@pytest.mark.parametrize(("name", "params"), PARAMS)
def test_dask_and_local_aggregates_are_identical(
    client: Client, frame_ref: Any, name: str, params: dict[str, Any]
) -> None:
    dataset = open_dataset(frame_ref)
    template = entry(name).template
    assert isinstance(template, Template)
    parsed = template.params_model.model_validate(params)
    local = LocalBackend().aggregate(template, parsed, dataset, None)
    dask = DaskBackend(client=client).aggregate(template, parsed, dataset, 60)
    assert dask == local


def test_dask_kaplan_meier_equals_local(client: Client, tmp_path: Path) -> None:
    ref = write_dataset(tmp_path, lung(), parts=4)
    request = ComputeRequest(
        "kaplan_meier",
        {"time": "time", "event": "status", "time_unit": 90},
        [ref],
        [GrantBudget(GRANT, 1, 0)],
        2,
    )
    local = ComputeEngine().run(request)
    dask = ComputeEngine(backend=DaskBackend(client=client)).run(request)
    assert dask.result == local.result
    assert dask.result_hash == local.result_hash
    assert dask.backend == "dask" and local.backend == "local"


def test_dask_task_errors_are_typed(client: Client, frame_ref: Any) -> None:
    dataset = open_dataset(frame_ref)
    template = entry("dp_count").template
    assert isinstance(template, Template)
    params = template.params_model.model_validate(
        {"epsilon": 1, "filters": [{"column": "value", "op": ">", "value": 1}]}
    )
    assert DaskBackend(client=client).aggregate(template, params, dataset, 60)["n"] > 0
    # A missing column is caught before any task runs, by the engine's checks.
    request = ComputeRequest(
        "cohort_count",
        {"filters": [{"column": "bmi", "op": ">", "value": 1}]},
        [frame_ref],
        [GrantBudget(GRANT, 1, 0)],
        5,
    )
    with pytest.raises(ColumnNotFoundError):
        ComputeEngine(backend=DaskBackend(client=client)).run(request)


def test_noise_is_added_once_with_the_same_scale(
    client: Client, frame_ref: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'budget.db'}"
    upgrade(url)
    database = open_engine(url)
    budget = BudgetLedger(database)
    grants = [GrantBudget(GRANT, 1, 10**12)]
    request = ComputeRequest("dp_count", {"epsilon": 1.0}, [frame_ref], grants, 5)
    runs = 100
    deviations = {}
    for name, backend in (("local", LocalBackend()), ("dask", DaskBackend(client=client))):
        engine = ComputeEngine(budget=budget, backend=backend)
        deviations[name] = np.array(
            [engine.run(request).result["count"] - 20_000 for _ in range(runs)], dtype=float
        )
    database.dispose()
    # Noise added once: discrete Laplace of scale 1, E|Z| = 2a / (1 - a^2) = 0.851 (a = 1/e).
    # Noise added per partition (6 files) would be a sum of six such draws, E|S| = 2.56.
    # Chernoff bounds for the mean of 100 draws of |Z| (rate function of |Z| computed exactly):
    # P(mean <= 0.35) <= exp(-100 * 0.158) and P(mean >= 1.6) <= exp(-100 * 0.179), so a correct
    # backend fails this check with probability below 3e-7, and per-partition noise passes it
    # with a vanishing one.
    a = np.exp(-1.0)
    assert 2 * a / (1 - a**2) == pytest.approx(0.851, abs=1e-3)
    for name, values in deviations.items():
        assert 0.35 < np.mean(np.abs(values)) < 1.6, name


def test_backend_from_settings() -> None:
    assert isinstance(backend_from_settings(load_settings()), LocalBackend)
    dask = backend_from_settings(load_settings(dask_scheduler="tcp://127.0.0.1:8786"))
    assert isinstance(dask, DaskBackend)

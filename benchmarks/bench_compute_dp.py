#!/usr/bin/env python3
"""DP mean over 1,000,000 rows against the non-private mean, measured in the same run.

The rows (a float ``value``, an integer ``age``, a string ``site``, plus the vault's ``_row`` and
``_contributor``) are written as four Parquet partitions in a temporary vault-format directory
(not timed). Then, medians over RUNS runs each:

- engine path: ``ComputeEngine.run`` of ``dp_mean`` (resolve, validate against the schema,
  reserve the budget in SQLite, read Parquet, clamp, fixed-point sum, OpenDP noise, release
  policy, commit) against the non-private baseline ``pandas.read_parquet(...).mean()``;
- the same engine path on a Dask LocalCluster (two in-process workers on 127.0.0.1);
- pure compute on an in-memory table: the template's partial aggregate and noisy finalize
  against ``numpy.mean`` of the same array.

Target: the engine's DP mean over 1,000,000 rows in <= 1 s. Results go to
``benchmarks/results/compute_dp.json`` (met or not).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from ledger.compute.backend import DaskBackend, DatasetRef, LocalBackend  # noqa: E402
from ledger.compute.budget import BudgetLedger  # noqa: E402
from ledger.compute.engine import ComputeEngine, ComputeRequest, GrantBudget  # noqa: E402
from ledger.compute.templates._base import PartialContext  # noqa: E402
from ledger.compute.templates.dp_mean import TEMPLATE as DP_MEAN  # noqa: E402
from ledger.compute.templates.dp_mean import DPMeanParams  # noqa: E402
from ledger.store.database import open_engine  # noqa: E402
from ledger.store.migrate import upgrade  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "compute_dp.json"
ROWS = 1_000_000
PARTS = 4
RUNS = 7
TARGET_SECONDS = 1.0
PARAMS: dict[str, Any] = {"epsilon": 1.0, "column": "value", "bounds": {"lo": 0, "hi": 200}}


def write_rows(root: Path) -> tuple[DatasetRef, np.ndarray]:
    rng = np.random.default_rng(2026)
    frame = pd.DataFrame(
        {
            "value": rng.normal(100.0, 15.0, ROWS),
            "age": rng.integers(18, 90, ROWS),
            "site": rng.choice(["north", "central", "south"], ROWS),
        }
    )
    frame["_row"] = np.arange(ROWS, dtype=np.int64)
    frame["_contributor"] = [f"0x{i % 97:064x}" for i in range(ROWS)]
    data = root / "v1" / "data"
    data.mkdir(parents=True)
    for i, index in enumerate(np.array_split(np.arange(ROWS), PARTS)):
        table = pa.Table.from_pandas(frame.iloc[index], preserve_index=False)
        pq.write_table(table, data / f"part-{i:05d}.parquet")
    return DatasetRef(1, 1, root / "v1"), frame["value"].to_numpy()


def timed(fn: Callable[[], Any], runs: int = RUNS) -> tuple[float, list[float], Any]:
    fn()  # warm-up (imports, caches, first connection)
    times, last = [], None
    for _ in range(runs):
        start = time.perf_counter()
        last = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, last


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-compute-dp-") as scratch:
        root = Path(scratch)
        print(f"writing {ROWS} rows in {PARTS} Parquet partitions ...", file=sys.stderr)
        ref, values = write_rows(root)
        true_mean = float(np.clip(values, 0, 200).mean())
        url = f"sqlite:///{root / 'budget.db'}"
        upgrade(url)
        database = open_engine(url)
        budget = BudgetLedger(database)
        grants = [GrantBudget("0x" + "be" * 32, 1, 10**12)]
        request = ComputeRequest("dp_mean", PARAMS, [ref], grants, k=10)

        engine = ComputeEngine(budget=budget, backend=LocalBackend())
        engine_dp, engine_dp_all, engine_result = timed(lambda: engine.run(request))
        data_dir = str(ref.parquet_dir)
        engine_plain, engine_plain_all, plain_mean = timed(
            lambda: float(pd.read_parquet(data_dir, columns=["value"])["value"].mean())
        )
        print(f"engine DP mean {engine_dp:.3f} s, pandas {engine_plain:.3f} s", file=sys.stderr)

        from distributed import Client, LocalCluster

        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=False,
                protocol="tcp",
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            dask_engine = ComputeEngine(budget=budget, backend=DaskBackend(client=client))
            dask_dp, dask_dp_all, dask_result = timed(lambda: dask_engine.run(request), 5)
        print(f"engine DP mean on Dask {dask_dp:.3f} s", file=sys.stderr)

        table = pa.table({"value": values})
        params = DPMeanParams.model_validate(PARAMS)
        ctx = PartialContext(rows_total=ROWS, kinds={"value": "number"})

        def pure_dp() -> dict[str, Any]:
            aggregate = DP_MEAN.partial(params, table, ctx)
            return DP_MEAN.finalize(params, aggregate, 10, ctx)

        pure_dp_s, pure_dp_all, pure_result = timed(pure_dp)
        pure_plain_s, pure_plain_all, _ = timed(lambda: float(np.mean(values)))
        database.dispose()

    report = {
        "rows": ROWS,
        "partitions": PARTS,
        "runs": RUNS,
        "epsilon": PARAMS["epsilon"],
        "bounds": [PARAMS["bounds"]["lo"], PARAMS["bounds"]["hi"]],
        "engine_path": {
            "dp_mean_median_s": engine_dp,
            "dp_mean_runs_s": engine_dp_all,
            "baseline_pandas_read_parquet_mean_median_s": engine_plain,
            "baseline_runs_s": engine_plain_all,
            "ratio_dp_over_baseline": engine_dp / engine_plain,
        },
        "engine_path_dask": {
            "workers": 2,
            "dp_mean_median_s": dask_dp,
            "dp_mean_runs_s": dask_dp_all,
            "ratio_dask_over_local": dask_dp / engine_dp,
        },
        "pure_compute": {
            "dp_mean_median_s": pure_dp_s,
            "dp_mean_runs_s": pure_dp_all,
            "baseline_numpy_mean_median_s": pure_plain_s,
            "baseline_runs_s": pure_plain_all,
            "ratio_dp_over_baseline": pure_dp_s / pure_plain_s,
        },
        "accuracy": {
            "true_clamped_mean": true_mean,
            "non_private_mean": plain_mean,
            "dp_mean_engine": engine_result.result["mean"],
            "dp_mean_dask": dask_result.result["mean"],
            "dp_mean_pure": pure_result["mean"],
            "abs_error_engine": abs(engine_result.result["mean"] - true_mean),
        },
        "targets": {
            "dp_mean_engine_s_max": TARGET_SECONDS,
            "met": engine_dp <= TARGET_SECONDS,
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["targets"]["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

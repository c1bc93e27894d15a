#!/usr/bin/env python3
"""Secure multi-party computation vs its non-private baseline, measured in the same run.

- Secure sum over 3 parties x 1,000,000 values (target <= 5 s). Each party (a bubblewrap-
  sandboxed process holding only its own Parquet data directory) sums its own values, then the
  three sums and counts are secret-shared and added in MPyC. Baselines: numpy's sum of the pooled
  values in memory, and reading the three Parquet directories plus that sum.
- Secure logistic regression over the three-hospital breast cancer split (569 rows, 30 features;
  target <= 2 s). Baseline: StandardScaler + scikit-learn LogisticRegression on the pooled rows.
  Also reported: the largest absolute difference of the coefficients to scikit-learn's.

Each secure computation is timed cold (`secure_*` without a pool: three party processes are
started, import MPyC/NumPy/pyarrow, run the job and are stopped: what a one-off call costs) and
warm (a `PartyPool` whose parties stay up between jobs), with the protocol-only part (connection
set-up plus MPC rounds, slowest party) reported separately. Medians over `RUNS` runs, variants
interleaved. Results go to ``benchmarks/results/compute_mpc.json`` (targets met or not).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The baselines run single-threaded, as each party does: on a small shared machine, BLAS and
# OpenMP thread pools made scikit-learn's fit up to 30x slower, which would flatter MPC.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.compute.mpc import (  # noqa: E402
    PartyPool,
    SecureAggregate,
    SecureModel,
    bwrap_path,
    secure_logistic_regression,
    secure_sum,
)
from ledger.compute.mpc.protocols import BIT_LENGTH, FRACTIONAL_BITS  # noqa: E402
from ledger.samples import hospital_split  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "compute_mpc.json"
RUNS = int(os.environ.get("BENCH_MPC_RUNS", "7"))
VALUES_PER_PARTY = int(os.environ.get("BENCH_MPC_VALUES", "1000000"))
TARGET_SUM_S = 5.0
TARGET_LOGISTIC_S = 2.0
TIMEOUT = 120.0
IDENTIFIERS = ("record_id", "patient_id", "department")


def write_data_dir(directory: Path, table: pa.Table) -> Path:
    """A vault version's ``data/`` directory: data columns, ``_row``, ``_contributor``."""
    data = directory / "data"
    data.mkdir(parents=True)
    n = table.num_rows
    table = table.append_column("_row", pa.array(np.arange(n, dtype=np.int64)))
    contributors = pa.array(["0x" + f"{i % 97:02x}" * 32 for i in range(97)])
    table = table.append_column(
        "_contributor", pa.DictionaryArray.from_arrays(np.arange(n) % 97, contributors)
    )
    pq.write_table(table, data / "part-00000.parquet")
    return data


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_s": statistics.median(ordered),
        "p90_s": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "min_s": ordered[0],
        "max_s": ordered[-1],
        "runs": len(ordered),
    }


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def interleave(variants: dict[str, Callable[[], Any]], runs: int) -> dict[str, list[Any]]:
    """Run each variant `runs` times, round-robin, after one unmeasured warm-up round."""
    out: dict[str, list[Any]] = {name: [] for name in variants}
    for round_ in range(runs + 1):
        for name, variant in variants.items():
            sample = variant()
            if round_:
                out[name].append(sample)
        if round_:
            print(f"  round {round_}/{runs}", file=sys.stderr)
    return out


def bench_sum(work: Path) -> dict[str, Any]:
    rng = np.random.default_rng(20261130)
    arrays = [rng.normal(100.0, 15.0, VALUES_PER_PARTY) for _ in range(3)]
    dirs = [
        write_data_dir(work / f"sum-{i}", pa.table({"value": values}))
        for i, values in enumerate(arrays)
    ]
    pooled = np.concatenate(arrays)
    expected = float(pooled.sum())
    pool = PartyPool(sandbox=True)

    def baseline() -> tuple[float, None]:
        return timed(lambda: float(pooled.sum()))[0], None

    def baseline_read() -> tuple[float, None]:
        def read_and_sum() -> float:
            values = [pq.read_table(d, columns=["value"]).column("value") for d in dirs]
            return float(sum(np.asarray(v).sum() for v in values))

        return timed(read_and_sum)[0], None

    def cold() -> tuple[float, SecureAggregate]:
        return timed(lambda: secure_sum(dirs, "value", timeout=TIMEOUT))

    def warm() -> tuple[float, SecureAggregate]:
        return timed(lambda: secure_sum(dirs, "value", timeout=TIMEOUT, pool=pool))

    try:
        samples = interleave(
            {"baseline": baseline, "baseline_read": baseline_read, "cold": cold, "warm": warm},
            RUNS,
        )
    finally:
        pool.close()
    errors = [abs(r.value - expected) for name in ("cold", "warm") for _, r in samples[name]]
    results = [r for name in ("cold", "warm") for _, r in samples[name]]
    assert all(r.n == 3 * VALUES_PER_PARTY for r in results)
    return summarize(samples, TARGET_SUM_S) | {
        "values_per_party": VALUES_PER_PARTY,
        "parties": 3,
        "max_abs_error_vs_numpy": max(errors),
        "relative_error_vs_numpy": max(errors) / abs(expected),
    }


def bench_logistic(work: Path) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    frames = [f.drop(columns=list(IDENTIFIERS)) for f in hospital_split("breast_cancer")]
    features = [c for c in frames[0].columns if c != "diagnosis"]
    dirs = [
        write_data_dir(work / f"hospital-{i}", pa.Table.from_pandas(f, preserve_index=False))
        for i, f in enumerate(frames)
    ]
    import pandas as pd

    table = pd.concat(frames, ignore_index=True)
    x = table[features].to_numpy(float)
    y = (table["diagnosis"] == "malignant").to_numpy(int)
    pool = PartyPool(sandbox=True)

    def fit_pooled() -> Any:
        scaled = StandardScaler().fit_transform(x)
        return LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(scaled, y)

    def secure(which: PartyPool | None) -> SecureModel:
        return secure_logistic_regression(
            dirs,
            features,
            "diagnosis",
            positive_label="malignant",
            l2=1.0,
            max_iter=100,
            tol=1e-10,
            timeout=TIMEOUT,
            pool=which,
        )

    try:
        samples = interleave(
            {
                "baseline": lambda: timed(fit_pooled),
                "cold": lambda: timed(lambda: secure(None)),
                "warm": lambda: timed(lambda: secure(pool)),
            },
            RUNS,
        )
    finally:
        pool.close()
    reference = samples["baseline"][0][1]
    models: list[SecureModel] = [m for name in ("cold", "warm") for _, m in samples[name]]
    difference = max(
        max(
            float(np.abs(np.asarray(m.coefficients) - reference.coef_[0]).max()),
            abs(m.intercept - float(reference.intercept_[0])),
        )
        for m in models
    )
    return summarize(samples, TARGET_LOGISTIC_S) | {
        "rows": len(table),
        "features": len(features),
        "parties": 3,
        "newton_iterations": models[0].iterations,
        "sklearn_lbfgs_iterations": int(reference.n_iter_[0]),
        "max_abs_coefficient_difference_vs_sklearn": difference,
        "requirement_max_abs_difference": 1e-4,
        "requirement_met": difference <= 1e-4,
    }


def summarize(samples: dict[str, list[Any]], target: float) -> dict[str, Any]:
    times = {name: [t for t, _ in values] for name, values in samples.items()}
    out: dict[str, Any] = {name: stats(values) for name, values in times.items()}
    for name in ("cold", "warm"):
        timings = [r.timing for _, r in samples[name]]
        out[name] |= {
            "start_median_s": statistics.median(t.start for t in timings),
            "load_median_s": statistics.median(t.load for t in timings),
            "protocol_median_s": statistics.median(t.protocol for t in timings),
        }
    baseline = out["baseline"]["median_s"]
    cold, warm = out["cold"]["median_s"], out["warm"]["median_s"]
    out["ratio_cold_to_baseline"] = cold / baseline
    out["ratio_warm_to_baseline"] = warm / baseline
    out["target_s"] = target
    out["target_met_cold_end_to_end"] = cold <= target
    out["target_met_warm_end_to_end"] = warm <= target
    return out


def main() -> int:
    if bwrap_path() is None:
        print("bubblewrap is not installed: the parties cannot be sandboxed", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-mpc-"))
    try:
        print("secure sum, 3 parties x 1,000,000 values", file=sys.stderr)
        summed = bench_sum(work)
        print("secure logistic regression, three hospitals", file=sys.stderr)
        logistic = bench_logistic(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "benchmark": "secure multi-party computation (MPyC, 3 sandboxed party processes)",
        "runs": RUNS,
        "fixed_point": {"bit_length": BIT_LENGTH, "fractional_bits": FRACTIONAL_BITS},
        "secure_sum": summed,
        "secure_logistic_regression": logistic,
        "targets_met": summed["target_met_cold_end_to_end"]
        and logistic["target_met_cold_end_to_end"]
        and logistic["requirement_met"],
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "bwrap": bwrap_path(),
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for name, part in (("secure sum", summed), ("secure logistic regression", logistic)):
        print(
            f"{name}: baseline {part['baseline']['median_s'] * 1000:.2f} ms, "
            f"cold {part['cold']['median_s']:.3f} s "
            f"(start {part['cold']['start_median_s']:.3f} s, "
            f"protocol {part['cold']['protocol_median_s']:.3f} s), "
            f"warm {part['warm']['median_s']:.3f} s "
            f"(protocol {part['warm']['protocol_median_s']:.3f} s); "
            f"target <= {part['target_s']:g} s cold: "
            f"{'met' if part['target_met_cold_end_to_end'] else 'NOT met'}"
        )
    print(
        "max abs coefficient difference to scikit-learn: "
        f"{logistic['max_abs_coefficient_difference_vs_sklearn']:.2e}"
    )
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/table.py: rows from small synthetic result files, "met" from values, "not run"."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "table.py"


@pytest.fixture(scope="module")
def table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_table"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def documents(**over: float) -> dict[str, dict[str, Any]]:
    """One small result document per benchmark; ``over`` changes the values a test looks at."""
    v = {
        "vault_s": 20.0,
        "pandas_s": 10.0,
        "sandbox_ms": 130.0,
        "dp_s": 0.5,
        "sum_cold_s": 4.0,
        "lr_cold_s": 1.5,
        "p50_ms": 400.0,
        "batched_jps": 25.0,
        "anchor_gas": 900.0,
        "tree_1m_s": 30.0,
        "publish_1m": 67_000.0,
        "claim_1m": 79_000.0,
        "api_errors": 0.0,
        "register_gas": 140_000.0,
        "index_p99_ms": 0.5,
        "backfill_s": 2.0,
        "merkle_1m_s": 12.0,
    } | over
    runs = [
        {
            "rows": rows,
            "baseline": {"median_seconds": v["pandas_s"] / k, "peak_rss_bytes": 2**29 / k},
            "vault": {"median_seconds": v["vault_s"] / k, "peak_rss_bytes": 2**28 / k},
        }
        for rows, k in ((250_000, 4), (1_000_000, 1))
    ]
    secure = {
        "baseline": {"median_s": 0.002},
        "baseline_read": {"median_s": 0.05},
        "cold": {"median_s": v["sum_cold_s"]},
        "warm": {"median_s": 0.1},
    }
    lr = {
        "baseline": {"median_s": 0.02},
        "cold": {"median_s": v["lr_cold_s"]},
        "warm": {"median_s": 0.2},
        "max_abs_coefficient_difference_vs_sklearn": 1e-6,
    }
    sizes = {"10000": 1.0, "100000": 5.0, "1000000": v["tree_1m_s"]}
    loaded = {
        "clients": 50,
        "seconds": 60,
        "requests": 1000,
        "requests_per_s": 16.6,
        "latency_ms": {"p50": 400, "p99": 900},
        "errors": v["api_errors"],
    }
    return {
        # Flags in the files say the opposite of the values where a test checks "met".
        "vault": {"runs": runs, "target_met": False},
        "compute_sandbox": {
            "variants": {
                "sandbox": {"median_ms": v["sandbox_ms"]},
                "subprocess": {"median_ms": 100},
            },
            "target_met": False,
        },
        "compute_dp": {
            "engine_path": {
                "dp_mean_median_s": v["dp_s"],
                "baseline_pandas_read_parquet_mean_median_s": 0.25,
            },
            "machine": {"load_average_1m": 3.25, "cpus": 2},
        },
        "compute_mpc": {"secure_sum": secure, "secure_logistic_regression": lr},
        "jobs": {
            "load_average": [1.0, 2.0, 3.0],
            "per_job": {
                "jobs": 40,
                "latency_ms": {"p50": v["p50_ms"], "p99": 900.0},
                "jobs_per_s": 5.0,
                "gas_per_job": {"record_usage": 120_000},
            },
            "batched": {
                "jobs_per_s": v["batched_jps"],
                "batch_size": 50,
                "worker_processes": 2,
                "anchor_gas_per_receipt": v["anchor_gas"],
            },
            "met": {"p50_ms": False, "batched_jobs_per_s": False},
        },
        "settlement": {
            "tree": {
                "sizes": {
                    k: {"tree_and_proofs_s": s, "peak_rss_mib": 100} for k, s in sizes.items()
                }
            },
            "gas": {
                "publish_epoch": {
                    "by_contributors": {"10": 67_000, "1000": 67_000, "1000000": v["publish_1m"]}
                },
                "claim": {
                    "by_contributors": {
                        "10": {"median": 67_000},
                        "1000": {"median": 72_000},
                        "1000000": {"median": v["claim_1m"]},
                    }
                },
                "comparison": {
                    size: {
                        "settler_publish_gas": 67_000,
                        "push_contract_gas": 10_000 * int(size),
                        "push_one_transaction_each_gas": 21_000 * int(size),
                        "push_extrapolated": size == "1000000",
                    }
                    for size in ("1000", "1000000")
                },
            },
        },
        "api": {
            "when": "2026-11-30T01:02:03+00:00",
            "baseline_one_client": loaded | {"clients": 1, "errors": 0},
            "loaded": loaded,
        },
        "gas": {
            "operations": {
                "register": {
                    "median": v["register_gas"],
                    "calls": 3,
                    "target": 150_000,
                    "met": False,
                    "contract": "DataRegistry",
                    "function": "register",
                },
                "new_op": {"median": 5_000, "calls": 2, "target": 4_000, "met": True},
            }
        },
        "core_grants": {
            "index_ms": {"p50": 0.3, "p99": v["index_p99_ms"]},
            "eth_call_ms": {"p50": 15.0, "p99": 20.0},
        },
        "core_indexer": {
            "results": {
                "sqlite": {
                    "events": 100_000,
                    "events_per_second": 100_000 / v["backfill_s"],
                    "backfill_seconds": v["backfill_s"],
                    "fetch_only_seconds": 1.0,
                    "met_ratio": False,
                },
                "postgresql": {"error": "no PostgreSQL answered"},
            }
        },
        "merkle": {
            "sizes": [
                {"leaves": 1_000_000, "total_s": v["merkle_1m_s"], "build_s": 10.0}
                | {"all_proofs_s": v["merkle_1m_s"] - 10.0, "peak_rss_mib": 500}
            ]
        },
    }


def write(directory: Path, docs: dict[str, dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (directory / f"{name}.json").write_text(json.dumps(doc))
    return directory


def by_what(rows: list[Any]) -> dict[str, Any]:
    return {row.what.split(":")[0] if row.benchmark == "gas" else row.what: row for row in rows}


def test_rows_and_met_from_values_not_flags(table: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "README.md"
    rows = table.generate(write(tmp_path / "results", documents()), out)
    found = by_what(rows)
    assert [r.benchmark for r in rows][:2] == ["vault", "vault"]
    assert {r.benchmark for r in rows} == {
        "vault", "compute", "jobs", "settlement", "api", "gas", "core", "merkle",
    }  # fmt: skip
    assert len(rows) == len({(r.benchmark, r.what) for r in rows})
    ingest = found["ingest 1M rows x 20 columns"]
    assert (ingest.measured, ingest.ratio, ingest.target, ingest.met) == (
        "20.00 s (50,000 rows/s)", "2.00x", "<= 3x", "yes",
    )  # fmt: skip
    assert "10.00 s (100,000 rows/s)" in ingest.baseline
    assert found["peak memory, ingest 1M rows"].measured == "256 MiB (x4.00 for x4 rows)"
    assert found["sandbox overhead per job"].measured.startswith("30 ms")
    assert found["sandbox overhead per job"].met == "yes"
    assert found["DP mean over 1M rows"].ratio == "2.00x"
    assert found["per-job latency, DP mean 100k rows"].met == "yes"
    assert found["batched throughput"].measured == "25.0 jobs/s (2 worker processes)"
    assert found["batched throughput"].met == "yes"
    assert found["anchoring gas per receipt"].ratio == "1/133"
    assert found["payout gas, 1M contributors"].baseline.endswith("extrapolated, not sent")
    assert found["register"].met == "yes" and found["register"].target == "<= 150,000"
    assert found["new_op"].target == "<= 4,000" and found["new_op"].met == "**no**"
    assert found["grant_direct"].measured.startswith("not run (gas.json lacks operations")
    assert found["indexer backfill, SQLite"].met == "yes"
    assert found["indexer backfill, PostgreSQL"].measured.startswith("not run")
    assert found["1M leaves, build + all proofs"].met == "yes"
    text = out.read_text()
    assert "| benchmark | what | measured | baseline (same run) | ratio | target | met? |" in text
    assert "make bench" in text
    assert "`api.json`: 2026-11-30T01:02:03+00:00" in text
    written = datetime.fromtimestamp((tmp_path / "results" / "jobs.json").stat().st_mtime, UTC)
    assert (
        f"`jobs.json`: date not recorded (file written {written:%Y-%m-%d %H:%M} UTC); "
        "load average 1.0 / 2.0 / 3.0 (1, 5, 15 min)"
    ) in text
    assert "; load average 3.2 (1 min), 2 CPUs" in text


@pytest.mark.parametrize(
    ("over", "what"),
    [
        ({"vault_s": 31.0}, "ingest 1M rows x 20 columns"),
        ({"sandbox_ms": 150.5}, "sandbox overhead per job"),
        ({"dp_s": 1.01}, "DP mean over 1M rows"),
        ({"sum_cold_s": 5.5}, "secure sum 3 x 1M, cold"),
        ({"lr_cold_s": 2.1}, "secure logistic regression, cold"),
        ({"p50_ms": 501.0}, "per-job latency, DP mean 100k rows"),
        ({"batched_jps": 19.9}, "batched throughput"),
        ({"anchor_gas": 1001.0}, "anchoring gas per receipt"),
        ({"tree_1m_s": 61.0}, "tree + all proofs, 1M"),
        ({"publish_1m": 69_000.0}, "publish gas at 10 / 1k / 1M"),  # under 70k but not flat
        ({"publish_1m": 70_001.0}, "publish gas at 10 / 1k / 1M"),
        ({"claim_1m": 80_001.0}, "claim gas at 10 / 1k / 1M"),
        ({"api_errors": 1.0}, "50 clients, mixed reads: errors"),
        ({"register_gas": 150_001.0}, "register"),
        ({"index_p99_ms": 1.5}, "grant check from the index"),
        ({"backfill_s": 2.5}, "indexer backfill, SQLite"),
        ({"merkle_1m_s": 60.5}, "1M leaves, build + all proofs"),
    ],
)
def test_missed_target_is_no(
    table: ModuleType, tmp_path: Path, over: dict[str, float], what: str
) -> None:
    rows = by_what(table.build_rows(table.load_results(write(tmp_path, documents(**over)))))
    assert rows[what].met == "**no**"
    others = [r for w, r in rows.items() if w != what and r.met == "**no**" and w != "new_op"]
    assert others == []


def test_target_boundary_is_met(table: ModuleType, tmp_path: Path) -> None:
    docs = documents(vault_s=30.0, dp_s=1.0, anchor_gas=1000.0, register_gas=150_000.0)
    rows = by_what(table.build_rows(table.load_results(write(tmp_path, docs))))
    for what in ("ingest 1M rows x 20 columns", "DP mean over 1M rows", "register"):
        assert rows[what].met == "yes", what
    assert rows["anchoring gas per receipt"].met == "yes"


def test_missing_files_give_not_run_rows(table: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "README.md"
    (tmp_path / "results").mkdir()
    rows = table.generate(tmp_path / "results", out)
    assert len(rows) >= 28
    assert all(r.measured.startswith("not run (no ") for r in rows)
    assert all((r.baseline, r.ratio, r.met) == ("—", "—", "—") for r in rows)
    assert by_what(rows)["tree + all proofs, 1M"].target == "<= 60 s"  # targets still shown
    text = out.read_text()
    assert "`vault.json`: not run (no vault.json)" in text
    assert not any(ch.isdigit() for r in rows for ch in r.measured)  # no numbers invented


def test_missing_key_and_bad_files(table: ModuleType, tmp_path: Path) -> None:
    docs = documents()
    del docs["vault"]["runs"][1]  # no 1,000,000-row run
    del docs["jobs"]["batched"]["anchor_gas_per_receipt"]
    docs["api"]["loaded"]["requests_per_s"] = "fast"
    write(tmp_path, docs)
    (tmp_path / "merkle.json").write_text("{not json")
    (tmp_path / "gas.json").write_text("[1, 2]")
    rows = by_what(table.build_rows(table.load_results(tmp_path)))
    assert rows["ingest 1M rows x 20 columns"].measured == (
        "not run (vault.json lacks runs[rows=1,000,000])"
    )
    assert rows["anchoring gas per receipt"].measured == (
        "not run (jobs.json lacks batched.anchor_gas_per_receipt)"
    )
    assert rows["batched throughput"].met == "yes"  # the rest of the file still counts
    assert "not a number" in rows["50 clients, mixed reads: throughput"].measured
    assert rows["1M leaves, build + all proofs"].measured == (
        "not run (merkle.json is not readable JSON)"
    )
    assert rows["register"].measured == "not run (gas.json is not a JSON object)"


def test_compute_json_preferred_over_parts(table: ModuleType, tmp_path: Path) -> None:
    docs = documents()
    write(tmp_path, docs)
    fast = documents(dp_s=0.1)["compute_dp"]
    parts = {"compute_dp": fast, "compute_sandbox": docs["compute_sandbox"]}
    (tmp_path / "compute.json").write_text(json.dumps({"parts": parts}))
    rows = by_what(table.build_rows(table.load_results(tmp_path)))
    assert rows["DP mean over 1M rows"].measured == "100 ms"  # from compute.json, not the part
    assert rows["secure sum 3 x 1M, cold"].measured == (
        "not run (compute.json has no part compute_mpc)"
    )
    (tmp_path / "compute.json").unlink()
    rows = by_what(table.build_rows(table.load_results(tmp_path)))
    assert rows["DP mean over 1M rows"].measured == "500 ms"
    assert rows["secure sum 3 x 1M, cold"].measured == "4.00 s"


def test_main_writes_the_readme(table: ModuleType, tmp_path: Path) -> None:
    results = write(tmp_path / "results", documents())
    out = tmp_path / "out.md"
    assert table.main(["--results", str(results), "--out", str(out)]) == 0
    lines = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + len(table.build_rows(table.load_results(results)))

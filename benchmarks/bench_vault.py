"""Vault ingest vs plain pandas ``read_csv`` + ``to_parquet`` of the same synthetic CSV.

For each size (250,000 and 1,000,000 rows x 20 columns, written by
``ledger.samples.synthetic.write_synthetic_csv`` into a temporary directory), runs in its own
subprocess, so that peak RSS is measured per run (``ru_maxrss`` of the child):

- baseline: ``pandas.read_csv(path)`` then ``DataFrame.to_parquet``;
- vault: ``ledger.vault.ingest.ingest`` (streamed in chunks: validation, de-identification,
  Parquet partitions, row commitment, contributor table) into a fresh vault.

Each measurement is repeated ``--repeats`` times (median reported). Writes
``benchmarks/results/vault.json``: seconds, rows/s, ratio vault/baseline (target <= 3), peak RSS
per size, and how peak RSS grows between the sizes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "vault.json"
TARGET_RATIO = 3.0

_BASELINE = """
import json, resource, sys, time
import pandas as pd
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1])
frame.to_parquet(sys.argv[2])
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "rows": len(frame), "peak_rss": rss}))
"""

_VAULT = """
import json, resource, sys, time
from pathlib import Path
from ledger.samples.synthetic import synthetic_schema
from ledger.vault.ingest import ingest
from ledger.vault.schema import parse_schema
from ledger.vault.store import Vault
schema = parse_schema(synthetic_schema())
vault = Vault(Path(sys.argv[2]), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
start = time.perf_counter()
manifest = ingest(vault, Path(sys.argv[1]), schema, "bench")
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
contributors = len(manifest.contributor_rows)
print(json.dumps({"seconds": seconds, "rows": manifest.row_count, "peak_rss": rss,
                  "commitment": manifest.commitment, "contributors": contributors}))
"""

_IDLE = """
import json, resource
import pandas, pyarrow.parquet
import ledger.vault.ingest
print(json.dumps({"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _measure(size: int, repeats: int, work: Path) -> dict[str, Any]:
    from ledger.samples.synthetic import write_synthetic_csv

    csv_path = work / f"synthetic-{size}.csv"
    started = time.perf_counter()
    write_synthetic_csv(csv_path, size)
    generated = time.perf_counter() - started
    baseline, vault = [], []
    for i in range(repeats):
        baseline.append(_child(_BASELINE, str(csv_path), str(work / f"baseline-{i}.parquet")))
        vault.append(_child(_VAULT, str(csv_path), str(work / f"vault-{size}-{i}")))
    assert all(v["rows"] == size for v in vault), "the vault must keep every row"
    assert len({v["commitment"] for v in vault}) >= 1
    base_s = statistics.median(b["seconds"] for b in baseline)
    vault_s = statistics.median(v["seconds"] for v in vault)
    return {
        "rows": size,
        "columns": 20,
        "csv_bytes": csv_path.stat().st_size,
        "generate_seconds": round(generated, 3),
        "baseline": {
            "what": "pandas.read_csv + DataFrame.to_parquet",
            "seconds": [round(b["seconds"], 3) for b in baseline],
            "median_seconds": round(base_s, 3),
            "rows_per_second": round(size / base_s),
            "peak_rss_bytes": max(b["peak_rss"] for b in baseline),
        },
        "vault": {
            "what": "ledger.vault.ingest (chunked: validate, de-identify, Parquet, commitment)",
            "seconds": [round(v["seconds"], 3) for v in vault],
            "median_seconds": round(vault_s, 3),
            "rows_per_second": round(size / vault_s),
            "peak_rss_bytes": max(v["peak_rss"] for v in vault),
            "contributors": vault[0]["contributors"],
        },
        "ratio": round(vault_s / base_s, 3),
    }


def main() -> None:
    """Run the benchmark and write benchmarks/results/vault.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    idle = _child(_IDLE)["peak_rss"]
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-vault-") as tmp:
        for size in sorted(args.sizes):
            run = _measure(size, args.repeats, Path(tmp))
            runs.append(run)
            print(  # noqa: T201 - a benchmark reports on stdout
                f"{size:>9,} rows: baseline {run['baseline']['median_seconds']:.2f} s "
                f"({run['baseline']['peak_rss_bytes'] / 2**20:.0f} MiB), vault "
                f"{run['vault']['median_seconds']:.2f} s "
                f"({run['vault']['peak_rss_bytes'] / 2**20:.0f} MiB), ratio {run['ratio']:.2f}"
            )
    small, large = runs[0], runs[-1]
    growth = {
        "rows_factor": round(large["rows"] / small["rows"], 2),
        "baseline_rss_factor": round(
            large["baseline"]["peak_rss_bytes"] / small["baseline"]["peak_rss_bytes"], 2
        ),
        "vault_rss_factor": round(
            large["vault"]["peak_rss_bytes"] / small["vault"]["peak_rss_bytes"], 2
        ),
        "vault_rss_bytes_per_extra_row": round(
            (large["vault"]["peak_rss_bytes"] - small["vault"]["peak_rss_bytes"])
            / max(1, large["rows"] - small["rows"]),
            1,
        ),
    }
    result = {
        "benchmark": "vault_ingest",
        "target_ratio": TARGET_RATIO,
        "target_met": all(r["ratio"] <= TARGET_RATIO for r in runs),
        "idle_import_rss_bytes": idle,
        "runs": runs,
        "memory_growth": growth,
        "machine": {
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
            "load_average": list(__import__("os").getloadavg()),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")  # noqa: T201


if __name__ == "__main__":
    main()

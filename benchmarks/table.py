#!/usr/bin/env python3
"""Regenerate ``benchmarks/README.md`` from the JSON files in ``benchmarks/results/``.

``table.py [--results DIR] [--out FILE]``. One small extractor per result file turns its own
structure into rows of one table: benchmark, what, measured, baseline (same run), ratio, target,
met. "met" is decided here from the measured value and the target, not from a flag in the file.
A file that is missing, unreadable or lacks a value gives a row saying "not run"; nothing is
invented. ``compute.json`` (merged by ``merge_results.py``) is read when present, else its three
parts ``compute_sandbox``, ``compute_dp`` and ``compute_mpc``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = HERE / "README.md"
NOT_RUN = "not run"
NONE = "—"
SOURCES = (
    "vault",
    "compute_sandbox",
    "compute_dp",
    "compute_mpc",
    "jobs",
    "settlement",
    "api",
    "gas",
    "core_grants",
    "core_indexer",
    "merkle",
)
COMPUTE_PARTS = ("compute_sandbox", "compute_dp", "compute_mpc")
# Gas rows in the root README's order; targets used only when gas.json carries none.
GAS_OPERATIONS: dict[str, tuple[str, int | None]] = {
    "register": ("", 150_000),
    "grant_direct": ("", None),
    "grant_with_sig": ("", 100_000),
    "revoke": ("", 35_000),
    "escrow": ("", None),
    "record_usage": (" (consume + capture + receipt)", 120_000),
    "anchor_batch": (" (any batch size)", 50_000),
    "publish_epoch": (" (any number of contributors)", 70_000),
    "claim": (" (first claim)", 80_000),
}


class Missing(Exception):
    """A value the table needs is absent from a result file (or is not a number)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class Outcome:
    """What an extractor found for one row; ``met`` is None when there is no numeric target."""

    measured: str
    baseline: str = NONE
    ratio: str = NONE
    met: bool | None = None


@dataclass(frozen=True)
class Row:
    """One line of the table, every cell already text."""

    benchmark: str
    what: str
    measured: str
    baseline: str
    ratio: str
    target: str
    met: str


@dataclass(frozen=True)
class Spec:
    """A headline measurement: where it comes from, what it is, its target and its extractor."""

    source: str
    what: str
    target: str
    measure: Callable[[Mapping[str, Any]], Outcome]

    @property
    def benchmark(self) -> str:
        """The benchmark's name: its result file's stem up to the first underscore."""
        return self.source.split("_")[0]


Loaded = dict[str, Any] | str  # a result document, or why there is none


def dig(data: Any, *path: str | int) -> Any:
    """``data[path[0]][path[1]]...``, or Missing naming the path."""
    node = data
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            raise Missing(".".join(str(p) for p in path)) from None
    return node


def num(data: Any, *path: str | int) -> float:
    """A finite number at ``path``, or Missing."""
    value = dig(data, *path)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Missing(".".join(str(p) for p in path) + " (not a number)")
    return float(value)


def secs(value: float) -> str:
    """Seconds as text in a readable unit."""
    if value >= 100:
        return f"{value:,.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.01:
        return f"{value * 1e3:.0f} ms"
    return f"{value * 1e3:.2f} ms"


def ms(value: float) -> str:
    """Milliseconds as text in a readable unit."""
    return secs(value / 1e3)


def ratio(value: float) -> str:
    """A measured / baseline ratio as text."""
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    if value >= 0.1:
        return f"{value:.2f}x"
    return f"1/{1 / value:,.0f}" if value > 0 else f"{value:g}x"


def count(value: float) -> str:
    """A whole number with thousands separators."""
    return f"{value:,.0f}"


def mib(size_bytes: float) -> str:
    """Bytes as MiB."""
    return f"{size_bytes / 2**20:,.0f} MiB"


# -- vault.json (bench_vault.py) ----------------------------------------------------------------


def _vault_run(data: Mapping[str, Any], rows: int) -> Mapping[str, Any]:
    for run in dig(data, "runs"):
        if isinstance(run, dict) and run.get("rows") == rows:
            return run
    raise Missing(f"runs[rows={rows:,}]")


def vault_ingest(data: Mapping[str, Any]) -> Outcome:
    run = _vault_run(data, 1_000_000)
    rows = num(run, "rows")
    vault = num(run, "vault", "median_seconds")
    base = num(run, "baseline", "median_seconds")
    return Outcome(
        f"{secs(vault)} ({count(rows / vault)} rows/s)",
        f"pandas read_csv + to_parquet {secs(base)} ({count(rows / base)} rows/s)",
        ratio(vault / base),
        vault / base <= 3.0,
    )


def vault_memory(data: Mapping[str, Any]) -> Outcome:
    large = _vault_run(data, 1_000_000)
    vault = num(large, "vault", "peak_rss_bytes")
    base = num(large, "baseline", "peak_rss_bytes")
    measured, baseline = mib(vault), mib(base)
    smaller = [r for r in dig(data, "runs") if isinstance(r, dict) and r.get("rows") != 1_000_000]
    if smaller:
        small = smaller[0]
        factor = 1_000_000 / num(small, "rows")
        grown = vault / num(small, "vault", "peak_rss_bytes")
        measured += f" (x{grown:.2f} for x{factor:.0f} rows)"
        baseline += f" (x{base / num(small, 'baseline', 'peak_rss_bytes'):.2f})"
    return Outcome(measured, "pandas " + baseline, ratio(vault / base))


# -- compute_sandbox / compute_dp / compute_mpc (merged into compute.json) -----------------------


def sandbox_overhead(data: Mapping[str, Any]) -> Outcome:
    sandbox = num(data, "variants", "sandbox", "median_ms")
    plain = num(data, "variants", "subprocess", "median_ms")
    overhead = sandbox - plain
    return Outcome(
        f"{ms(overhead)} ({ms(sandbox)} per job)",
        f"plain subprocess {ms(plain)}",
        ratio(sandbox / plain),
        overhead <= 50.0,
    )


def dp_mean(data: Mapping[str, Any]) -> Outcome:
    dp = num(data, "engine_path", "dp_mean_median_s")
    base = num(data, "engine_path", "baseline_pandas_read_parquet_mean_median_s")
    return Outcome(
        secs(dp), f"pandas read_parquet + mean {secs(base)}", ratio(dp / base), dp <= 1.0
    )


def _secure(part: str, mode: str, limit: float, baseline: str) -> Callable[..., Outcome]:
    def measure(data: Mapping[str, Any]) -> Outcome:
        value = num(data, part, mode, "median_s")
        base = num(data, part, baseline, "median_s")
        if part == "secure_sum":
            shown = (
                f"read Parquet + numpy sum {secs(base)} "
                f"(in memory {secs(num(data, part, 'baseline', 'median_s'))})"
            )
        else:
            shown = f"scikit-learn on pooled rows {secs(base)}"
        return Outcome(secs(value), shown, ratio(value / base), value <= limit)

    return measure


def secure_lr_accuracy(data: Mapping[str, Any]) -> Outcome:
    diff = num(data, "secure_logistic_regression", "max_abs_coefficient_difference_vs_sklearn")
    return Outcome(f"{diff:.1e}", "scikit-learn coefficients", NONE, diff <= 1e-4)


# -- jobs.json (bench_jobs.py) --------------------------------------------------------------------


def jobs_latency(data: Mapping[str, Any]) -> Outcome:
    p50 = num(data, "per_job", "latency_ms", "p50")
    p99 = num(data, "per_job", "latency_ms", "p99")
    jobs = num(data, "per_job", "jobs")
    return Outcome(f"p50 {ms(p50)} / p99 {ms(p99)} ({count(jobs)} jobs)", met=p50 <= 500.0)


def jobs_batched(data: Mapping[str, Any]) -> Outcome:
    batched = num(data, "batched", "jobs_per_s")
    per_job = num(data, "per_job", "jobs_per_s")
    info = dig(data, "batched")
    if "worker_processes" in info:
        how = f"{info['worker_processes']} worker processes"
    elif "worker_threads" in info:
        how = f"{info['worker_threads']} worker threads"
    else:
        how = "workers not recorded"
    return Outcome(
        f"{batched:.1f} jobs/s ({how})",
        f"per-job mode {per_job:.1f} jobs/s",
        ratio(batched / per_job),
        batched >= 20.0,
    )


def jobs_anchor_gas(data: Mapping[str, Any]) -> Outcome:
    anchor = num(data, "batched", "anchor_gas_per_receipt")
    record = num(data, "per_job", "gas_per_job", "record_usage")
    size = num(data, "batched", "batch_size")
    return Outcome(
        f"{count(anchor)} gas (batches of {count(size)})",
        f"recordUsage {count(record)} gas per job",
        ratio(anchor / record),
        anchor <= 1_000,
    )


# -- settlement.json (bench_settlement.py) ------------------------------------------------------


def _settlement_tree(size: int, limit: float | None) -> Callable[..., Outcome]:
    def measure(data: Mapping[str, Any]) -> Outcome:
        entry = dig(data, "tree", "sizes", str(size))
        took = num(entry, "tree_and_proofs_s")
        shown = f"{secs(took)} (peak RSS {count(num(entry, 'peak_rss_mib'))} MiB)"
        return Outcome(shown, met=None if limit is None else took <= limit)

    return measure


SETTLEMENT_SIZES = ("10", "1000", "1000000")


def settlement_publish(data: Mapping[str, Any]) -> Outcome:
    gas = [num(data, "gas", "publish_epoch", "by_contributors", s) for s in SETTLEMENT_SIZES]
    spread = max(gas) - min(gas)
    flat = spread <= 0.01 * min(gas)
    return Outcome(
        " / ".join(count(g) for g in gas) + f" (spread {count(spread)})",
        met=flat and max(gas) <= 70_000,
    )


def settlement_claim(data: Mapping[str, Any]) -> Outcome:
    by = [num(data, "gas", "claim", "by_contributors", s, "median") for s in SETTLEMENT_SIZES]
    return Outcome(" / ".join(count(g) for g in by), met=max(by) <= 80_000)


def _settlement_push(size: str) -> Callable[..., Outcome]:
    def measure(data: Mapping[str, Any]) -> Outcome:
        entry = dig(data, "gas", "comparison", size)
        publish = num(entry, "settler_publish_gas")
        push = num(entry, "push_contract_gas")
        each = num(entry, "push_one_transaction_each_gas")
        note = ", extrapolated, not sent" if dig(entry, "push_extrapolated") else ""
        return Outcome(
            f"publish {count(publish)}",
            f"push contract {count(push)} (one transfer each {count(each)}){note}",
            ratio(publish / push),
        )

    return measure


# -- api.json (bench_api.py) ----------------------------------------------------------------------


def api_throughput(data: Mapping[str, Any]) -> Outcome:
    loaded = num(data, "loaded", "requests_per_s")
    one = num(data, "baseline_one_client", "requests_per_s")
    clients = num(data, "loaded", "clients")
    seconds = num(data, "loaded", "seconds")
    return Outcome(
        f"{loaded:.1f} req/s ({count(clients)} clients x {seconds:.0f} s)",
        f"1 client {one:.1f} req/s",
        ratio(loaded / one),
    )


def api_latency(data: Mapping[str, Any]) -> Outcome:
    p50 = num(data, "loaded", "latency_ms", "p50")
    p99 = num(data, "loaded", "latency_ms", "p99")
    b50 = num(data, "baseline_one_client", "latency_ms", "p50")
    b99 = num(data, "baseline_one_client", "latency_ms", "p99")
    return Outcome(
        f"p50 {ms(p50)} / p99 {ms(p99)}",
        f"1 client p50 {ms(b50)} / p99 {ms(b99)}",
        f"{ratio(p50 / b50)} (p50)",
    )


def api_errors(data: Mapping[str, Any]) -> Outcome:
    errors = num(data, "loaded", "errors")
    requests = num(data, "loaded", "requests")
    base = num(data, "baseline_one_client", "errors")
    return Outcome(
        f"{count(errors)} of {count(requests)}", f"1 client: {count(base)}", met=errors + base == 0
    )


# -- gas.json (scripts/bench_gas.py) ------------------------------------------------------------


def gas_specs(loaded: Loaded | None) -> list[Spec]:
    """One spec per operation: the known ones in order, then any others gas.json holds."""
    document = loaded if isinstance(loaded, dict) else {}
    found = document.get("operations")
    operations: dict[str, Any] = found if isinstance(found, dict) else {}
    names = [*GAS_OPERATIONS, *sorted(n for n in operations if n not in GAS_OPERATIONS)]
    out = []
    for name in names:
        note, known = GAS_OPERATIONS.get(name, ("", None))
        entry = operations.get(name)
        entry = entry if isinstance(entry, dict) else {}
        target = entry.get("target")
        if not isinstance(target, int | float) or isinstance(target, bool):
            target = known
        what = name
        if isinstance(entry.get("contract"), str) and isinstance(entry.get("function"), str):
            what += f": {entry['contract']}.{entry['function']}"
        what += note
        leaves = document.get("claim_tree_leaves")
        if name == "claim" and isinstance(leaves, int) and not isinstance(leaves, bool):
            what += f", {count(leaves)}-leaf tree"
        shown = NONE if target is None else f"<= {count(target)}"
        out.append(Spec("gas", what, shown, _gas_measure(name, target)))
    return out


def _gas_measure(name: str, target: float | None) -> Callable[..., Outcome]:
    def measure(data: Mapping[str, Any]) -> Outcome:
        median = num(data, "operations", name, "median")
        calls = num(data, "operations", name, "calls")
        shown = f"{count(median)} (median of {count(calls)} calls)"
        return Outcome(shown, met=None if target is None else median <= target)

    return measure


# -- core_grants.json / core_indexer.json (bench_core_*.py) -------------------------------------


def grant_check(data: Mapping[str, Any]) -> Outcome:
    p50, p99 = num(data, "index_ms", "p50"), num(data, "index_ms", "p99")
    c50, c99 = num(data, "eth_call_ms", "p50"), num(data, "eth_call_ms", "p99")
    faster = min(c50 / p50, c99 / p99)
    return Outcome(
        f"p50 {ms(p50)} / p99 {ms(p99)}",
        f"eth_call p50 {ms(c50)} / p99 {ms(c99)}",
        f"{ratio(p50 / c50)} (p50), {ratio(p99 / c99)} (p99)",
        p99 <= 1.0 and faster >= 10.0,
    )


def _indexer(database: str) -> Callable[..., Outcome]:
    def measure(data: Mapping[str, Any]) -> Outcome:
        entry = dig(data, "results", database)
        if isinstance(entry, dict) and "error" in entry:
            raise Missing(f"results.{database} (the run recorded an error)")
        rate = num(entry, "events_per_second")
        events = num(entry, "events")
        backfill = num(entry, "backfill_seconds")
        fetch = num(entry, "fetch_only_seconds")
        return Outcome(
            f"{count(rate)} events/s ({count(events)} events in {secs(backfill)})",
            f"eth_getLogs alone {secs(fetch)}",
            ratio(backfill / fetch),
            rate >= 3_000 and backfill / fetch <= 2.0,
        )

    return measure


# -- merkle.json (bench_merkle.py) ----------------------------------------------------------------


def _merkle(leaves: int, limit: float | None) -> Callable[..., Outcome]:
    def measure(data: Mapping[str, Any]) -> Outcome:
        for entry in dig(data, "sizes"):
            if isinstance(entry, dict) and entry.get("leaves") == leaves:
                total = num(entry, "total_s")
                shown = (
                    f"{secs(total)} (build {secs(num(entry, 'build_s'))} + proofs "
                    f"{secs(num(entry, 'all_proofs_s'))}; peak RSS "
                    f"{count(num(entry, 'peak_rss_mib'))} MiB)"
                )
                return Outcome(shown, met=None if limit is None else total <= limit)
        raise Missing(f"sizes[leaves={leaves:,}]")

    return measure


secure_sum_cold = _secure("secure_sum", "cold", 5.0, "baseline_read")
secure_sum_warm = _secure("secure_sum", "warm", 5.0, "baseline_read")
secure_lr_cold = _secure("secure_logistic_regression", "cold", 2.0, "baseline")
secure_lr_warm = _secure("secure_logistic_regression", "warm", 2.0, "baseline")
LIMITED, BACKFILL = "p99 <= 1 ms, >= 10x", ">= 3,000/s, <= 2x"


def specs(loaded: Mapping[str, Loaded]) -> list[Spec]:
    """Every headline measurement, in the table's order."""
    mpc, settle = "compute_mpc", "settlement"
    return [
        Spec("vault", "ingest 1M rows x 20 columns", "<= 3x", vault_ingest),
        Spec("vault", "peak memory, ingest 1M rows", "bounded", vault_memory),
        Spec("compute_sandbox", "sandbox overhead per job", "<= 50 ms", sandbox_overhead),
        Spec("compute_dp", "DP mean over 1M rows", "<= 1 s", dp_mean),
        Spec(mpc, "secure sum 3 x 1M, cold", "<= 5 s", secure_sum_cold),
        Spec(mpc, "secure sum 3 x 1M, warm", "<= 5 s", secure_sum_warm),
        Spec(mpc, "secure logistic regression, cold", "<= 2 s", secure_lr_cold),
        Spec(mpc, "secure logistic regression, warm", "<= 2 s", secure_lr_warm),
        Spec(mpc, "secure LR max coefficient difference", "<= 1e-4", secure_lr_accuracy),
        Spec("jobs", "per-job latency, DP mean 100k rows", "p50 <= 500 ms", jobs_latency),
        Spec("jobs", "batched throughput", ">= 20 jobs/s", jobs_batched),
        Spec("jobs", "anchoring gas per receipt", "<= 1,000", jobs_anchor_gas),
        Spec(settle, "tree + all proofs, 10k", NONE, _settlement_tree(10_000, None)),
        Spec(settle, "tree + all proofs, 100k", NONE, _settlement_tree(100_000, None)),
        Spec(settle, "tree + all proofs, 1M", "<= 60 s", _settlement_tree(1_000_000, 60.0)),
        Spec(settle, "publish gas at 10 / 1k / 1M", "flat (1%), <= 70,000", settlement_publish),
        Spec(settle, "claim gas at 10 / 1k / 1M", "<= 80,000", settlement_claim),
        Spec(settle, "payout gas, 1k contributors", NONE, _settlement_push("1000")),
        Spec(settle, "payout gas, 1M contributors", NONE, _settlement_push("1000000")),
        Spec("api", "50 clients, mixed reads: throughput", NONE, api_throughput),
        Spec("api", "50 clients, mixed reads: latency", NONE, api_latency),
        Spec("api", "50 clients, mixed reads: errors", "0", api_errors),
        *gas_specs(loaded.get("gas")),
        Spec("core_grants", "grant check from the index", LIMITED, grant_check),
        Spec("core_indexer", "indexer backfill, SQLite", BACKFILL, _indexer("sqlite")),
        Spec("core_indexer", "indexer backfill, PostgreSQL", BACKFILL, _indexer("postgresql")),
        Spec("merkle", "100k leaves, build + all proofs", NONE, _merkle(100_000, None)),
        Spec("merkle", "1M leaves, build + all proofs", "<= 60 s", _merkle(1_000_000, 60.0)),
    ]


def build_rows(loaded: Mapping[str, Loaded]) -> list[Row]:
    """The table's rows; a missing file or value gives a "not run" row instead of an error."""
    rows = []
    for spec in specs(loaded):
        source = loaded.get(spec.source, f"no {spec.source}.json")
        try:
            if isinstance(source, str):
                raise Missing(source)
            out = spec.measure(source)
        except Missing as missing:
            why = missing.what if isinstance(source, str) else f"{spec.source}.json lacks {missing}"
            rows.append(
                Row(spec.benchmark, spec.what, f"{NOT_RUN} ({why})", NONE, NONE, spec.target, NONE)
            )
            continue
        except (ArithmeticError, TypeError, ValueError) as exc:
            why = f"{NOT_RUN} ({spec.source}.json has unusable values: {type(exc).__name__})"
            rows.append(Row(spec.benchmark, spec.what, why, NONE, NONE, spec.target, NONE))
            continue
        met = NONE if out.met is None else ("yes" if out.met else "**no**")
        rows.append(
            Row(spec.benchmark, spec.what, out.measured, out.baseline, out.ratio, spec.target, met)
        )
    return rows


def _read(path: Path) -> Loaded:
    if not path.is_file():
        return f"no {path.name}"
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return f"{path.name} is not readable JSON"
    return data if isinstance(data, dict) else f"{path.name} is not a JSON object"


def load_results(directory: Path) -> dict[str, Loaded]:
    """Every result document by source name (compute parts from compute.json when present)."""
    loaded = {name: _read(directory / f"{name}.json") for name in SOURCES}
    merged = _read(directory / "compute.json")
    if isinstance(merged, dict):
        parts = merged.get("parts")
        for part in COMPUTE_PARTS:
            if isinstance(parts, dict) and isinstance(parts.get(part), dict):
                loaded[part] = parts[part]
            else:
                loaded[part] = f"compute.json has no part {part}"
    return loaded


def _committed(path: Path) -> str | None:
    """The commit date of ``path`` when it is unchanged since its last commit, else None."""
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", path.name],
            cwd=path.parent, capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        if status.stdout.strip():
            return None
        log = subprocess.run(
            ["git", "log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%d %H:%M UTC", "--",
             path.name],
            cwd=path.parent, capture_output=True, text=True, timeout=10, check=True,
            env={**os.environ, "TZ": "UTC"},
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return log.stdout.strip() or None


def _file_date(path: Path) -> str:
    """When the file was committed (if unchanged since), else when it was last written."""
    committed = _committed(path)
    if committed:
        return f"file committed {committed}"
    try:
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return "file date unknown"
    return f"file written {written:%Y-%m-%d %H:%M} UTC"


def run_info(label: str, data: Loaded, path: Path) -> str:
    """One line saying when a result was measured and under what load, as far as the file says."""
    if isinstance(data, str):
        return f"{label}: {NOT_RUN} ({data})"
    found = data.get("machine")
    machine: dict[str, Any] = found if isinstance(found, dict) else {}
    when = data.get("when") or machine.get("when")
    if isinstance(when, str):
        date = when
    else:
        date = f"date not recorded ({_file_date(path)})"
    load = data.get("load_average", machine.get("load_average", machine.get("load_average_1m")))
    if isinstance(load, list) and all(isinstance(x, int | float) for x in load) and load:
        shown = "load average " + " / ".join(f"{x:.1f}" for x in load) + " (1, 5, 15 min)"
    elif isinstance(load, int | float) and not isinstance(load, bool):
        shown = f"load average {load:.1f} (1 min)"
    else:
        shown = "load average not recorded"
    cpus = machine.get("cpus")
    cpu_text = f", {cpus} CPUs" if isinstance(cpus, int) and not isinstance(cpus, bool) else ""
    return f"{label}: {date}; {shown}{cpu_text}"


INTRO = """\
# Benchmarks

This file is generated by `benchmarks/table.py` from the JSON files in `benchmarks/results/`: do
not edit it by hand.

**How to run.** `make bench` runs every benchmark (`make bench-gas`, `bench-core`, `bench-merkle`,
`bench-vault`, `bench-compute`, `bench-jobs`, `bench-settlement`, `bench-api`) and then regenerates
this file; each `make bench-*` target runs one benchmark and writes its JSON into
`benchmarks/results/`; `.venv/bin/python benchmarks/table.py` regenerates this file alone.

**How to read it.** Machines are noisy (these ran on 2 CPUs shared with other work), so times are
medians (or percentiles) of repeated runs, and each is set against a baseline measured in the same
run; *ratio* is measured / baseline. Gas is exact (whole transactions, warm calls). *met?* is
decided here from the measured value and the target; "—" means the row has no numeric target, and
"not run" means its result file or value is missing. The date and load average each result file
records are listed below the table.
"""


def render(rows: list[Row], runs: list[str]) -> str:
    """The whole README text."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    head = ("benchmark", "what", "measured", "baseline (same run)", "ratio", "target", "met?")
    lines = [INTRO, "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = (
            row.benchmark,
            row.what,
            row.measured,
            row.baseline,
            row.ratio,
            row.target,
            row.met,
        )
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    lines += ["", "## Runs", "", *(f"- {run}" for run in runs), ""]
    return "\n".join(lines)


def generate(results: Path, out: Path) -> list[Row]:
    """Read ``results``, write the README at ``out``, return the rows."""
    loaded = load_results(results)
    rows = build_rows(loaded)
    merged = results / "compute.json"
    runs = []
    for name in SOURCES:
        if name in COMPUTE_PARTS and merged.is_file():
            runs.append(run_info(f"`{name}` (in `compute.json`)", loaded[name], merged))
        else:
            runs.append(run_info(f"`{name}.json`", loaded[name], results / f"{name}.json"))
    out.write_text(render(rows, runs))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    rows = generate(args.results, args.out)
    ran = sum(not r.measured.startswith(NOT_RUN) for r in rows)
    missed = sum(r.met == "**no**" for r in rows)
    print(f"wrote {args.out}: {len(rows)} rows, {ran} measured, {missed} targets not met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

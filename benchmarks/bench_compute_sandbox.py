#!/usr/bin/env python3
"""Sandbox overhead per job: a trivial job in the bubblewrap sandbox vs the same job as a plain
``python`` subprocess and in-process, measured in the same run.

The trivial job sums range(1000) and writes a small JSON result into its output directory. Each
variant runs `RUNS` times after `WARMUP` unmeasured runs, interleaved so that noise from other
work on the machine hits all of them alike:
- in_process: the job's function called directly;
- subprocess: the same interpreter with the same flags and site-packages bootstrap, no jail;
- sandbox: `SandboxRunner.run` (bwrap, seccomp, rlimits, a cgroup, output checks);
- sandbox_no_cgroup: the same without a cgroup (rlimits only), to show what the cgroup costs;
- custom: `run_custom` end to end (hash check, harness, result.json read and parse).

Overhead = median(sandbox) - median(subprocess); target <= 50 ms. Results go to
``benchmarks/results/compute_sandbox.json`` (met or not).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.compute.custom import code_hash, run_custom  # noqa: E402
from ledger.compute.sandbox import SandboxLimits, SandboxRunner  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "compute_sandbox.json"
RUNS = int(os.environ.get("BENCH_SANDBOX_RUNS", "30"))
WARMUP = 3
TARGET_OVERHEAD_MS = 50.0

JOB = """\
import json, sys
out = sys.argv[1] if len(sys.argv) > 1 else "/output"
with open(out + "/result.json", "w") as handle:
    json.dump({"sum": sum(range(1000))}, handle)
"""
CUSTOM = b"def run(input_dirs, params):\n    return {'sum': sum(range(1000))}\n"
BOOT = (
    "import runpy, site, sys\n"
    "site.addsitedir({site!r})\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def in_process(out: Path) -> None:
    with open(out / "result.json", "w") as handle:
        json.dump({"sum": sum(range(1000))}, handle)


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p90_ms": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] * 1000,
        "min_ms": ordered[0] * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    code = work / "code"
    code.mkdir()
    (code / "job.py").write_text(JOB)
    data = work / "data"
    data.mkdir()
    limits = SandboxLimits(cpu_seconds=10, wall_seconds=30.0, memory_bytes=256 << 20)
    runner = SandboxRunner(limits=limits)
    no_cgroup = SandboxRunner(limits=limits, cgroup_parent=work / "no-cgroup")
    interpreter = str(
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    site = sysconfig.get_paths()["purelib"]
    plain = [interpreter, "-I", "-S", "-B", "-c", BOOT.format(site=site), str(code / "job.py")]
    counter = 0
    cgroup_seen: set[str] = set()

    def fresh_out() -> Path:
        nonlocal counter
        counter += 1
        out = work / f"out-{counter}"
        out.mkdir()
        return out

    def check(out: Path) -> None:
        assert json.loads((out / "result.json").read_text()) == {"sum": 499500}
        shutil.rmtree(out)

    def v_in_process() -> float:
        out = fresh_out()
        start = time.perf_counter()
        in_process(out)
        elapsed = time.perf_counter() - start
        check(out)
        return elapsed

    def v_subprocess() -> float:
        out = fresh_out()
        start = time.perf_counter()
        subprocess.run([*plain, str(out)], check=True, env={"PATH": "/usr/bin:/bin"})
        elapsed = time.perf_counter() - start
        check(out)
        return elapsed

    def sandboxed(which: SandboxRunner) -> Callable[[], float]:
        def variant() -> float:
            out = fresh_out()
            start = time.perf_counter()
            result = which.run(["/code/job.py"], output_dir=out, code_dir=code)
            elapsed = time.perf_counter() - start
            result.raise_for_failure()
            cgroup_seen.add(result.cgroup.split(" ")[0])
            check(out)
            return elapsed

        return variant

    digest = code_hash(CUSTOM)

    def v_custom() -> float:
        start = time.perf_counter()
        run = run_custom(CUSTOM, digest, [data], {}, limits, runner=runner, work_root=work)
        elapsed = time.perf_counter() - start
        assert run.result == {"sum": 499500}
        return elapsed

    variants: dict[str, Callable[[], float]] = {
        "in_process": v_in_process,
        "subprocess": v_subprocess,
        "sandbox": sandboxed(runner),
        "sandbox_no_cgroup": sandboxed(no_cgroup),
        "custom": v_custom,
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for i in range(WARMUP + RUNS):
            for name, variant in variants.items():
                elapsed = variant()
                if i >= WARMUP:
                    samples[name].append(elapsed)
            if i >= WARMUP and (i - WARMUP + 1) % 10 == 0:
                print(f"  {i - WARMUP + 1}/{RUNS} rounds", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = {name: stats(values) for name, values in samples.items()}
    sandbox_ms = summary["sandbox"]["median_ms"]
    plain_ms = summary["subprocess"]["median_ms"]
    overhead_ms = sandbox_ms - plain_ms
    result: dict[str, Any] = {
        "benchmark": "sandbox overhead per job (trivial job)",
        "runs": RUNS,
        "warmup": WARMUP,
        "variants": summary,
        "overhead_vs_subprocess_ms": overhead_ms,
        "overhead_vs_in_process_ms": sandbox_ms - summary["in_process"]["median_ms"],
        "cgroup_cost_ms": sandbox_ms - summary["sandbox_no_cgroup"]["median_ms"],
        "custom_end_to_end_overhead_ms": summary["custom"]["median_ms"] - plain_ms,
        "ratio_sandbox_to_subprocess": sandbox_ms / plain_ms,
        "cgroup": sorted(cgroup_seen),
        "target_overhead_ms": TARGET_OVERHEAD_MS,
        "target_met": overhead_ms <= TARGET_OVERHEAD_MS,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "bwrap": shutil.which("bwrap"),
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    for name, values in summary.items():
        print(f"{name:>18}: median {values['median_ms']:7.2f} ms  p90 {values['p90_ms']:7.2f} ms")
    met = "met" if result["target_met"] else "NOT met"
    print(f"sandbox overhead vs subprocess: {overhead_ms:.2f} ms (target <= 50 ms: {met})")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

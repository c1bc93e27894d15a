#!/usr/bin/env python3
"""Gas of each operation, from forge's gas report over benchmarks/gas, into gas.json.

forge's `--gas-report` runs each call from a test as its own transaction, so the figures are whole
transaction gas (21,000 base + calldata + execution), comparable with gas seen on a real chain.
The median over the bench's warm calls is the figure reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORGE = ROOT / "node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
OUT = ROOT / "benchmarks/results/gas.json"

# name in gas.json -> (contract, function name as forge reports it, target or None)
OPERATIONS: dict[str, tuple[str, str, int | None]] = {
    "register": ("DataRegistry", "register", 150_000),
    "grant_direct": ("AccessGrants", "issue", None),
    "grant_with_sig": ("AccessGrants", "issueWithSig", 100_000),
    "revoke": ("AccessGrants", "revoke", 35_000),
    "record_usage": ("UsageLedger", "recordUsage", 120_000),
    "anchor_batch": ("UsageLedger", "anchorBatch", 50_000),
    "publish_epoch": ("RevenueVault", "publishEpoch", 70_000),
    "claim": ("RevenueVault", "claim", 80_000),
    "escrow": ("RevenueVault", "escrow", None),
}

# Published figures for scale (measured elsewhere, whole transactions), from the issue.
REFERENCES = {
    "data_asset_publish_best_known_market": 1_060_000,
    "relayed_signed_attestation_common_service": 331_000,
    "merkle_airdrop_claim": 95_000,
}


def main() -> int:
    env = dict(os.environ, FOUNDRY_TEST="benchmarks/gas")
    proc = subprocess.run(
        [str(FORGE), "test", "--gas-report", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        return proc.returncode
    report = _parse_report(proc.stdout)
    results: dict[str, dict[str, object]] = {}
    for name, (contract, function, target) in OPERATIONS.items():
        stats = _find(report, contract, function)
        entry: dict[str, object] = {
            "contract": contract,
            "function": function,
            "median": stats["median"],
            "min": stats["min"],
            "max": stats["max"],
            "calls": stats["calls"],
        }
        if target is not None:
            entry["target"] = target
            entry["met"] = stats["median"] <= target
        results[name] = entry
    document = {
        "unit": "gas per transaction (21,000 base + calldata + execution), median of warm calls",
        "source": "forge test --gas-report over benchmarks/gas/GasBench.t.sol",
        "claim_tree_leaves": 1_000_000,
        "operations": results,
        "references": REFERENCES,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    width = max(len(n) for n in results)
    for name, entry in results.items():
        target = entry.get("target")
        verdict = "" if target is None else ("  ok" if entry["met"] else "  OVER TARGET")
        shown = f" (target {target:,})" if isinstance(target, int) else ""
        print(f"{name:<{width}}  {entry['median']:>9,}{shown}{verdict}")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


def _parse_report(stdout: str) -> list[dict[str, object]]:
    # forge prints the JSON report as the last line that parses as a JSON array.
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("["):
            parsed = json.loads(line)
            if isinstance(parsed, list):
                return parsed
    raise SystemExit("bench-gas: forge printed no JSON gas report")


def _find(report: list[dict[str, object]], contract: str, function: str) -> dict[str, int]:
    for item in report:
        if str(item.get("contract", "")).endswith(f":{contract}"):
            functions = item.get("functions", {})
            assert isinstance(functions, dict)
            for signature, stats in functions.items():
                if signature.split("(")[0] == function:
                    return {k: int(v) for k, v in stats.items()}
    raise SystemExit(f"bench-gas: no gas figure for {contract}.{function}")


if __name__ == "__main__":
    sys.exit(main())

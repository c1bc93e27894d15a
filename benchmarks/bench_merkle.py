#!/usr/bin/env python3
"""StandardMerkleTree: build + every proof for 100k and 1M (address, uint256) leaves.

Each size runs in a child process so its peak RSS is its own: the rows are made (not timed),
then `StandardMerkleTree.of` is timed, then `iter_proofs` over every leaf (each proof checked
against the root for the first 1,000). The baselines, measured in the same run: the cost of one
keccak256 with safe-pysha3 (used) and with pycryptodome, and of one row's ABI encoding with our
fast path and with ``eth_abi.encode``.

Target: 1M leaves built with all proofs in <= 60 s. Results go to
``benchmarks/results/merkle.json`` (met or not).
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.merkle import StandardMerkleTree, leaf_hash, verify  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "merkle.json"
SIZES = (100_000, 1_000_000)
TARGET_SECONDS = 60.0
ENCODING = ("address", "uint256")


def rows(n: int) -> list[list[Any]]:
    return [[f"0x{i * 0x9E3779B97F4A7C15 % (1 << 160):040x}", i * 10**12 + 1] for i in range(n)]


def run_size(n: int) -> dict[str, Any]:
    values = rows(n)
    start = time.perf_counter()
    tree = StandardMerkleTree.of(values, ENCODING)
    built = time.perf_counter()
    elements = 0
    for index, proof in tree.iter_proofs():
        elements += len(proof)
        if index < 1_000:
            assert verify(tree.root, leaf_hash(ENCODING, values[index]), proof)
    proved = time.perf_counter()
    return {
        "leaves": n,
        "build_s": built - start,
        "all_proofs_s": proved - built,
        "total_s": proved - start,
        "proof_elements": elements,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def per_call_us(fn: Any, arg: Any, rounds: int = 100_000) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        fn(arg)
    return (time.perf_counter() - start) / rounds * 1e6


def baselines() -> dict[str, float]:
    import sha3
    from Crypto.Hash import keccak
    from eth_abi.abi import encode

    data = bytes(range(64))
    row = rows(1)[0]
    return {
        "keccak_safe_pysha3_us": per_call_us(lambda d: sha3.keccak_256(d).digest(), data),
        "keccak_pycryptodome_us": per_call_us(
            lambda d: keccak.new(digest_bits=256, data=d).digest(), data
        ),
        "leaf_hash_fast_path_us": per_call_us(lambda r: leaf_hash(ENCODING, r), row),
        "eth_abi_encode_us": per_call_us(lambda r: encode(list(ENCODING), r), row, 20_000),
    }


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--size":
        print(json.dumps(run_size(int(sys.argv[2]))))
        return 0
    results = []
    for n in SIZES:
        print(f"building {n} leaves and all proofs ...", file=sys.stderr)
        child = subprocess.run(
            [sys.executable, __file__, "--size", str(n)], check=True, capture_output=True, text=True
        )
        results.append(json.loads(child.stdout))
        print(json.dumps(results[-1]), file=sys.stderr)
    largest = results[-1]
    report = {
        "encoding": list(ENCODING),
        "sizes": results,
        "baselines": baselines(),
        "targets": {
            "leaves": largest["leaves"],
            "total_s_max": TARGET_SECONDS,
            "met": largest["total_s"] <= TARGET_SECONDS,
        },
        "machine": {"python": platform.python_version(), "cpus": platform.machine()},
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0 if report["targets"]["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Ingest streams: peak memory (ru_maxrss of a child process) does not follow the file size.

Two synthetic files, one four times the other, are ingested in child processes with small
chunks; the larger one may use at most a quarter of its extra bytes more memory (reading it
whole would take several times its size)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ledger.samples.synthetic import write_synthetic_csv
from tests.unit.vault.conftest import ROOT

_CHILD = """
import json, resource, sys
from pathlib import Path
from ledger.samples.synthetic import synthetic_schema
from ledger.vault.ingest import ingest
from ledger.vault.schema import parse_schema
from ledger.vault.store import Vault
schema = synthetic_schema()
schema["contributor"] = {"column": "department", "kind": "department"}
vault = Vault(Path(sys.argv[2]), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
manifest = ingest(vault, Path(sys.argv[1]), parse_schema(schema), "big", chunk_bytes=1 << 20)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": manifest.row_count, "peak": peak}))
"""


def _ingest_peak(csv_path: Path, vault_dir: Path) -> dict[str, int]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(csv_path), str(vault_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    small = write_synthetic_csv(tmp_path / "small.csv", 30_000, seed=1)
    large = write_synthetic_csv(tmp_path / "large.csv", 120_000, seed=2)
    extra_bytes = large.stat().st_size - small.stat().st_size
    assert extra_bytes > 20 * 2**20
    a = _ingest_peak(small, tmp_path / "v-small")
    b = _ingest_peak(large, tmp_path / "v-large")
    assert (a["rows"], b["rows"]) == (30_000, 120_000)
    assert b["peak"] - a["peak"] < extra_bytes // 4, (a, b, extra_bytes)

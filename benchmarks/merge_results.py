"""Merge several benchmark result files into one: ``merge_results.py OUT PART...``.

Reads ``benchmarks/results/<PART>.json`` for each part and writes ``benchmarks/results/<OUT>.json``
as ``{"parts": {"<PART>": {...}, ...}}``, so one ``make`` target can gather benchmarks that run as
separate processes (each in its own interpreter, so their memory peaks do not mix).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: merge_results.py OUT PART [PART...]", file=sys.stderr)
        return 2
    out, parts = argv[0], argv[1:]
    merged = {"parts": {part: json.loads((RESULTS / f"{part}.json").read_text()) for part in parts}}
    (RESULTS / f"{out}.json").write_text(json.dumps(merged, indent=2) + "\n")
    print(f"wrote {RESULTS / f'{out}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

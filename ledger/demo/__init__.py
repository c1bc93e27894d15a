"""``ledger demo``: the whole story end to end on a chain, database and data dir of its own.

`run_demo` plays it with the real modules and returns a `DemoSummary`; `ledger.demo.cli`
prints it (``install`` adds the ``demo`` command to a Typer app).
"""

from __future__ import annotations

from ledger.demo.errors import DemoCheckError, DemoDataDirError, DemoError
from ledger.demo.story import run_demo
from ledger.demo.summary import DemoSummary, StepReport

__all__ = [
    "DemoCheckError",
    "DemoDataDirError",
    "DemoError",
    "DemoSummary",
    "StepReport",
    "run_demo",
]

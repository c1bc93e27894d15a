"""A test hook for crash tests: ``LEDGER_JOBS_CRASH_AT=<point>`` makes the worker kill itself
with SIGKILL at that step boundary (no cleanup, no flush: as a power cut would).

Points: `CRASH_POINTS`. Unset (the default) does nothing.
"""

from __future__ import annotations

import os
import signal
from typing import Final

__all__ = ["CRASH_ENV", "CRASH_POINTS", "crash_point"]

CRASH_ENV: Final = "LEDGER_JOBS_CRASH_AT"

#: Every boundary the pipeline offers, in the order a job meets them.
CRASH_POINTS: Final = (
    "paid",
    "authorized",
    "computed:written",
    "computed",
    "receipted",
    "record:intended",
    "record:sent",
    "recorded",
    "anchored",
    "done",
    "refunding",
    "refund:sent",
    "failed",
)


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if `name` is the configured crash point."""
    assert name in CRASH_POINTS, name
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

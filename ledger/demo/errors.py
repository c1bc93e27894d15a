"""Errors of the demo (subclasses of `ledger.errors.LedgerError`).

DemoError                 a step of the demo story failed (names the step and why)
├── DemoDataDirError      the data dir asked for is not a fresh, empty directory
└── DemoCheckError        the story ran, but a consistency check of its outcome failed
"""

from __future__ import annotations

from pathlib import Path

from ledger.errors import LedgerError

__all__ = ["DemoCheckError", "DemoDataDirError", "DemoError"]


class DemoError(LedgerError):
    """Raised when a step of the demo fails; `step` names it, `reason` says why."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"demo step {step!r} failed: {reason}")


class DemoDataDirError(DemoError, ValueError):
    """Raised when the demo's data dir exists and is not empty (the demo never reuses state)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            "setup",
            f"data dir {path} must be absent or empty (the demo starts from nothing); "
            "choose another --data-dir or leave it out to use a temporary one",
        )


class DemoCheckError(DemoError):
    """Raised when the story's outcome breaks a consistency rule (e.g. paid != captured)."""

    def __init__(self, check: str, detail: str) -> None:
        self.check = check
        self.detail = detail
        super().__init__("checks", f"{check}: {detail}")

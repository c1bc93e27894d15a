"""The ledger's exception tree: one root, `LedgerError`, and a leaf per thing that can go wrong.

Every leaf takes structured arguments, keeps them as attributes and builds its own message, so
callers can branch on the fields and users read a sentence that names what failed and what to do.
Errors of the libraries underneath (web3, subprocess, json) are translated at the boundary with
``raise ... from exc``.

    LedgerError
    ├── ArtifactError             a compiled contract artifact is missing, malformed or stale
    ├── CompilationError          the Solidity compiler cannot be run or reports errors
    ├── InvalidGrantError         a grant term does not fit its Solidity type (also a ValueError)
    └── ChainError                talking to the chain failed
        └── AnvilError            the embedded anvil node could not be started or answered wrongly
            └── AnvilNotFoundError    the anvil binary is not installed
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AnvilError",
    "AnvilNotFoundError",
    "ArtifactError",
    "ChainError",
    "CompilationError",
    "InvalidGrantError",
    "LedgerError",
]


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose."""


class ArtifactError(LedgerError):
    """Raised when a compiled contract artifact is missing, unreadable, malformed or stale."""

    def __init__(self, reason: str, *, contract: str | None = None) -> None:
        self.reason = reason
        self.contract = contract
        subject = f"artifact of contract {contract!r}" if contract else "contract artifacts"
        super().__init__(
            f"{subject}: {reason} "
            "(run `.venv/bin/python scripts/compile` to rebuild ledger/artifacts)"
        )


class CompilationError(LedgerError):
    """Raised when the Solidity compiler cannot be run or reports errors."""

    def __init__(self, reason: str, *, details: str = "") -> None:
        self.reason = reason
        self.details = details
        super().__init__(f"{reason}\n{details}" if details else reason)


class InvalidGrantError(LedgerError, ValueError):
    """Raised when a grant term does not fit its Solidity type; names the field and the rule."""

    def __init__(self, field: str, rule: str, value: object) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"grant field {field!r} must be {rule}, got {value!r}")


class ChainError(LedgerError):
    """Raised when talking to the chain fails."""


class AnvilError(ChainError):
    """Raised when the embedded anvil node cannot be started, or does not answer as expected."""

    def __init__(self, reason: str, *, output: str = "") -> None:
        self.reason = reason
        self.output = output
        message = f"anvil: {reason}"
        if output:
            message += f"\n--- anvil output (last lines) ---\n{output}"
        super().__init__(message)


class AnvilNotFoundError(AnvilError):
    """Raised when the anvil binary is not where the project installs it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"no anvil executable at {path}; run `make setup` to install the toolchain from npm"
        )

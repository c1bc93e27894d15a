"""Errors of the sandbox and of custom algorithms.

Messages name the field, the limit or the missing tool; they never carry anything the sandboxed
code printed or returned (that may hold data).

    SandboxError (LedgerError)
    ├── SandboxUnavailableError   bubblewrap, libseccomp or namespaces are missing: nothing runs
    ├── SandboxConfigError        a limit or a mount is invalid (also a ValueError)
    ├── SandboxRunError           the sandboxed run failed; nothing is released
    │   ├── SandboxTimeoutError       the wall-clock timeout killed the whole process tree
    │   ├── SandboxLimitError         a limit was hit: cpu, memory, pids, output
    │   └── SandboxCrashError         the code exited non-zero, raised, or died by a signal
    └── CustomCodeError           custom code is refused before it runs or breaks the contract
        ├── CustomCodeFormatError     not UTF-8, too large, BOM, NUL bytes (also a ValueError)
        ├── CustomCodeHashError       the code's hash is not the hash the grant names
        └── CustomResultError         result.json is missing, too large, not a JSON object
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = [
    "CustomCodeError",
    "CustomCodeFormatError",
    "CustomCodeHashError",
    "CustomResultError",
    "SandboxConfigError",
    "SandboxCrashError",
    "SandboxError",
    "SandboxLimitError",
    "SandboxRunError",
    "SandboxTimeoutError",
    "SandboxUnavailableError",
]


class SandboxError(LedgerError):
    """Raised when code cannot be run in the sandbox or its run failed."""


class SandboxUnavailableError(SandboxError):
    """Raised when the sandbox cannot be built here: custom code is refused, never run bare."""

    def __init__(self, missing: str, hint: str) -> None:
        self.missing = missing
        self.hint = hint
        super().__init__(f"the sandbox is unavailable: {missing}; {hint}")


class SandboxConfigError(SandboxError, ValueError):
    """Raised when a sandbox limit or mount is invalid; names the field and the rule."""

    def __init__(self, field: str, rule: str, value: object) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"sandbox {field} must be {rule}, got {value!r}")


class SandboxRunError(SandboxError):
    """Raised when a sandboxed run did not finish cleanly; nothing it wrote is released."""


class SandboxTimeoutError(SandboxRunError, TimeoutError):
    """Raised when a run exceeded its wall-clock timeout and its process tree was killed."""

    def __init__(self, wall_seconds: float, limit_seconds: float) -> None:
        self.wall_seconds = wall_seconds
        self.limit_seconds = limit_seconds
        super().__init__(
            f"the sandboxed run exceeded its wall-clock limit of {limit_seconds:g} s "
            f"(killed after {wall_seconds:.2f} s)"
        )


class SandboxLimitError(SandboxRunError):
    """Raised when a run hit a resource limit; `kind` is cpu, memory, pids or output."""

    def __init__(self, kind: str, limit: int | float, detail: str = "") -> None:
        self.kind = kind
        self.limit = limit
        self.detail = detail
        extra = f" ({detail})" if detail else ""
        super().__init__(f"the sandboxed run hit its {kind} limit of {limit:g}{extra}")


class SandboxCrashError(SandboxRunError):
    """Raised when the code exited non-zero, raised an exception, or was killed by a signal."""

    def __init__(self, reason: str, *, exit_code: int | None = None, signal: int | None = None):
        self.reason = reason
        self.exit_code = exit_code
        self.signal = signal
        super().__init__(f"the sandboxed run failed: {reason}")


class CustomCodeError(SandboxError):
    """Raised when custom code is refused before it runs or does not keep its contract."""


class CustomCodeFormatError(CustomCodeError, ValueError):
    """Raised when custom code is not canonical UTF-8 text of an allowed size; names the rule."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"custom {field} must be {rule}")


class CustomCodeHashError(CustomCodeError):
    """Raised when the code's keccak256 is not the algorithm hash the grant names (not run)."""

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"custom code hash {actual} is not the algorithm hash {expected} named by the grant; "
            "the code was not run"
        )


class CustomResultError(CustomCodeError):
    """Raised when the run's result.json is missing, too large, not regular or not a JSON object."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        super().__init__(f"custom algorithm result (result.json) must be {rule}")

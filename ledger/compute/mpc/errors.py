"""Errors of multi-party computation; every one a `ledger.errors.LedgerError`.

    MpcError                      a secure computation across owners failed or was refused
    ├── MpcParameterError         a public parameter is out of range (also a ValueError)
    ├── MpcDataError              a party's data cannot be used as asked (names party and rule)
    │   ├── MpcColumnError        a column is missing or is a system column (also a LookupError)
    │   └── MpcTooFewRowsError    a party has fewer rows than the minimum per party
    ├── MpcPartyError             a party process crashed, exited or could not connect
    │   └── MpcTimeoutError       the computation did not finish in time (also a TimeoutError)
    ├── MpcIsolationError         the party sandbox (bubblewrap) was asked for but is unavailable
    └── MpcProtocolError          a party broke the coordinator protocol or the parties disagree

Messages name the party by its index (its position in ``data_dirs``), the field and the rule;
they never carry row values, row counts below the minimum, or a party's own statistics.
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = [
    "MpcColumnError",
    "MpcDataError",
    "MpcError",
    "MpcIsolationError",
    "MpcParameterError",
    "MpcPartyError",
    "MpcProtocolError",
    "MpcTimeoutError",
    "MpcTooFewRowsError",
]


class MpcError(LedgerError):
    """Raised when a secure computation across owners fails or is refused."""


class MpcParameterError(MpcError, ValueError):
    """Raised when a public parameter of a secure computation breaks its rule; names the field."""

    def __init__(self, field: str, rule: str, value: object) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"parameter {field!r} must be {rule}, got {value!r}")


class MpcDataError(MpcError):
    """Raised when a party's data cannot be used as asked; `party` is its index in ``data_dirs``."""

    def __init__(self, party: int, field: str, rule: str) -> None:
        self.party = party
        self.field = field
        self.rule = rule
        super().__init__(f"party {party}: {field!r} {rule}")


class MpcColumnError(MpcDataError, LookupError):
    """Raised when a named column is missing from a party's data, or is a system column."""

    def __init__(self, party: int, column: str, rule: str = "is not a column of the data") -> None:
        self.column = column
        super().__init__(party, column, rule)


class MpcTooFewRowsError(MpcDataError):
    """Raised when a party has fewer usable rows than the minimum per party (count not shown)."""

    def __init__(self, party: int, minimum: int) -> None:
        self.minimum = minimum
        super().__init__(
            party, "rows", f"has fewer usable rows than the minimum of {minimum} per party"
        )


class MpcPartyError(MpcError):
    """Raised when a party process crashes, exits, cannot connect to its peers or fails inside."""

    def __init__(self, party: int | None, reason: str) -> None:
        self.party = party
        self.reason = reason
        subject = "a party" if party is None else f"party {party}"
        super().__init__(f"{subject} failed: {reason}; no result was released")


class MpcTimeoutError(MpcPartyError, TimeoutError):
    """Raised when the parties do not finish within the timeout; every party was stopped."""

    def __init__(self, timeout: float, stage: str, party: int | None = None) -> None:
        self.timeout = timeout
        self.stage = stage
        super().__init__(party, f"no answer within the timeout of {timeout:g} s while {stage}")


class MpcIsolationError(MpcError):
    """Raised when isolated parties are required but bubblewrap is missing or cannot start."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"party isolation unavailable: {reason} "
            "(install bubblewrap: apt-get install bubblewrap)"
        )


class MpcProtocolError(MpcError):
    """Raised when a party sends a malformed message, or the parties reveal different results."""

    def __init__(self, party: int | None, reason: str) -> None:
        self.party = party
        self.reason = reason
        subject = "the parties" if party is None else f"party {party}"
        super().__init__(f"protocol violation by {subject}: {reason}")

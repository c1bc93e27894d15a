"""Errors of private computation: the catalog, parameters, the release policy, the budget.

Every leaf takes structured arguments, keeps them as attributes and builds a message that names
the field and the rule. Messages never carry values read from a dataset: only names of columns,
parameters and the request's own values.

    ComputeError (LedgerError)
    ├── UnknownAlgorithmError     neither a catalog template nor the request's custom code
    ├── InvalidRequestError       the request itself is malformed (datasets, grants, k); ValueError
    │   └── InvalidParameterError a parameter breaks a rule (range, bounds, bins, epsilon)
    │       ├── ColumnNotFoundError   a parameter names a column the dataset lacks
    │       └── ColumnTypeError       a column has the wrong type for its use
    ├── DatasetUnreadableError    a dataset's Parquet directory is missing or unreadable
    ├── ReleaseRefusedError       a result is not an allowed aggregate shape (nothing released)
    ├── BudgetError               privacy budget accounting
    │   ├── BudgetExceededError       the request would spend more than the grant has left
    │   └── ReservationStateError     a reservation is unknown, reused or already finished
    ├── ComputeTimeoutError       the computation did not finish in time (nothing spent)
    ├── BackendError              the compute backend (Dask) failed
    └── ComputeUnavailableError   a dispatch path (sandbox, MPC) is not available here
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = [
    "BackendError",
    "BudgetError",
    "BudgetExceededError",
    "ColumnNotFoundError",
    "ColumnTypeError",
    "ComputeError",
    "ComputeTimeoutError",
    "ComputeUnavailableError",
    "DatasetUnreadableError",
    "InvalidParameterError",
    "InvalidRequestError",
    "ReleaseRefusedError",
    "ReservationStateError",
    "UnknownAlgorithmError",
]


class ComputeError(LedgerError):
    """Raised when a computation cannot be run or its result cannot be released."""


class UnknownAlgorithmError(ComputeError, LookupError):
    """Raised when an algorithm is neither a catalog template (by name or hash) nor the request's
    custom code."""

    def __init__(self, algorithm: str, known: tuple[str, ...] = ()) -> None:
        self.algorithm = algorithm
        self.known = known
        hint = f"; known templates: {', '.join(known)}" if known else ""
        super().__init__(f"algorithm {algorithm!r} is not in the catalog{hint}")


class InvalidRequestError(ComputeError, ValueError):
    """Raised when a compute request breaks a rule; `field` names the part, `rule` the rule."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class InvalidParameterError(InvalidRequestError):
    """Raised when an algorithm parameter breaks a rule (names the parameter and the rule)."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"params.{field}" if not field.startswith("params") else field, rule)


class ColumnNotFoundError(InvalidParameterError):
    """Raised when a parameter names a column the dataset does not have."""

    def __init__(self, field: str, column: str, dataset_id: int) -> None:
        self.column = column
        self.dataset_id = dataset_id
        super().__init__(field, f"column {column!r} does not exist in dataset {dataset_id}")


class ColumnTypeError(InvalidParameterError):
    """Raised when a column's type does not fit its use (e.g. a mean over a string column)."""

    def __init__(self, field: str, column: str, expected: str, actual: str) -> None:
        self.column = column
        self.expected = expected
        self.actual = actual
        super().__init__(field, f"column {column!r} must be {expected}, but it is {actual}")


class DatasetUnreadableError(ComputeError):
    """Raised when a dataset's Parquet directory is missing, empty or unreadable."""

    def __init__(self, dataset_id: int, reason: str) -> None:
        self.dataset_id = dataset_id
        self.reason = reason
        super().__init__(f"dataset {dataset_id}: {reason}")


class ReleaseRefusedError(ComputeError):
    """Raised when a result is not an allowed aggregate shape; nothing of it is released.

    `path` locates the offending part (``aggregates.mean.value``), `rule` says what is allowed.
    """

    def __init__(self, path: str, rule: str) -> None:
        self.path = path
        self.rule = rule
        super().__init__(f"release refused at {path or 'result'}: {rule}")


class BudgetError(ComputeError):
    """Raised when privacy budget accounting refuses an operation."""


class BudgetExceededError(BudgetError):
    """Raised before running when a request would spend more than the grant has left."""

    def __init__(
        self,
        grant_id: str,
        dataset_id: int,
        *,
        budget: int,
        spent: int,
        reserved: int,
        requested: int,
    ) -> None:
        self.grant_id = grant_id
        self.dataset_id = dataset_id
        self.budget = budget
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        left = max(budget - spent - reserved, 0)
        super().__init__(
            f"grant {grant_id} on dataset {dataset_id}: the request needs {requested} "
            f"micro-epsilon but only {left} of {budget} are left ({spent} spent, {reserved} "
            "reserved by running jobs)"
        )


class ReservationStateError(BudgetError):
    """Raised when a reservation is unknown, reused with other terms, or already finished."""

    def __init__(self, reservation_id: str, reason: str) -> None:
        self.reservation_id = reservation_id
        self.reason = reason
        super().__init__(f"budget reservation {reservation_id}: {reason}")


class ComputeTimeoutError(ComputeError, TimeoutError):
    """Raised when a computation runs past its deadline; the reservation is released."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"the computation did not finish within {seconds:g} s")


class BackendError(ComputeError):
    """Raised when the compute backend (e.g. the Dask cluster) fails to run the computation."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"compute backend {backend}: {reason}")


class ComputeUnavailableError(ComputeError):
    """Raised when a dispatch path (sandboxed custom code, multi-party computation) cannot run."""

    def __init__(self, feature: str, reason: str) -> None:
        self.feature = feature
        self.reason = reason
        super().__init__(f"{feature} is unavailable: {reason}")

"""The library API of multi-party computation: secure sum, mean and logistic regression.

Each data directory is one party (one owner's vault ``data/`` directory); party ``i`` is
``data_dirs[i]``. At least three parties are required: MPyC's Shamir sharing tolerates
``t = (m - 1) // 2`` curious parties, which is zero for two (and with two, the sum reveals the
other party's input anyway). What is revealed is listed in `ledger.compute.mpc.protocols`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from ledger.compute.mpc.errors import MpcParameterError
from ledger.compute.mpc.launcher import JobOutcome, PartyPool, run_job
from ledger.compute.mpc.spec import (
    DEFAULT_MIN_ROWS,
    MAX_FEATURES,
    MAX_ITERATIONS,
    AggregateTask,
    LogisticTask,
    Scalar,
    Task,
    check_column,
    normalize_filters,
)

__all__ = [
    "MAX_PARTIES",
    "MIN_PARTIES",
    "MpcTiming",
    "SecureAggregate",
    "SecureModel",
    "secure_logistic_regression",
    "secure_mean",
    "secure_sum",
]

#: Fewest parties of a secure computation (honest majority with at least one curious party).
MIN_PARTIES = 3
#: Most parties of a secure computation.
MAX_PARTIES = 16
_MAX_TIMEOUT = 86_400.0


@dataclass(frozen=True)
class MpcTiming:
    """Where the wall-clock time of a secure computation went (seconds)."""

    start: float  # starting party processes (0 with a warm pool)
    load: float  # parties loading their rows
    protocol: float  # connecting and running the protocol (slowest party)
    total: float  # end to end, as seen by the caller

    @classmethod
    def of(cls, outcome: JobOutcome) -> MpcTiming:
        """Timing of a finished job."""
        return cls(
            outcome.start_seconds,
            outcome.load_seconds,
            outcome.protocol_seconds,
            outcome.total_seconds,
        )


@dataclass(frozen=True)
class SecureAggregate:
    """A revealed secure sum or mean over all parties' values, and the number of values."""

    kind: Literal["sum", "mean"]
    column: str
    value: float
    n: int
    parties: int
    timing: MpcTiming = field(compare=False, repr=False)


@dataclass(frozen=True)
class SecureModel:
    """A logistic regression trained across parties.

    `coefficients` apply to the standardized features ``(x - means) / scales`` (means 0 and
    scales 1 when trained with ``standardize=False``); `intercept` is on the same scale.
    """

    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    n: int
    iterations: int
    converged: bool
    means: tuple[float, ...]
    scales: tuple[float, ...]
    l2: float
    parties: int
    timing: MpcTiming = field(compare=False, repr=False)

    def decision_function(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Log-odds of the positive class for rows `x` (n x d, raw feature scale)."""
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.means)) / np.asarray(self.scales)
        return np.asarray(z @ np.asarray(self.coefficients) + self.intercept, dtype=np.float64)

    def predict_proba(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Probability of the positive class for rows `x` (n x d, raw feature scale)."""
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * self.decision_function(x))))


def _dirs(data_dirs: Sequence[Path | str]) -> list[Path]:
    if isinstance(data_dirs, str | bytes | Path) or not isinstance(data_dirs, Sequence):
        raise MpcParameterError("data_dirs", "a sequence of directories", type(data_dirs))
    if not MIN_PARTIES <= len(data_dirs) <= MAX_PARTIES:
        raise MpcParameterError(
            "data_dirs", f"between {MIN_PARTIES} and {MAX_PARTIES} directories", len(data_dirs)
        )
    resolved: list[Path] = []
    for i, raw in enumerate(data_dirs):
        if not isinstance(raw, str | Path):
            raise MpcParameterError(f"data_dirs[{i}]", "a path", type(raw))
        path = Path(raw).resolve()
        if not path.is_dir():
            raise MpcParameterError(f"data_dirs[{i}]", "an existing directory", str(path))
        if (path / "manifest.json").exists() or (path / "key").exists():
            # A version (or vault) directory would show the party its manifest and contributor
            # table (or the owner's key): only the rows' data/ directory is for compute.
            raise MpcParameterError(
                f"data_dirs[{i}]", "a dataset version's data/ directory, not the version", str(path)
            )
        for j, other in enumerate(resolved):
            if path == other or other in path.parents or path in other.parents:
                raise MpcParameterError(
                    f"data_dirs[{i}]",
                    f"a directory apart from data_dirs[{j}] (not the same, not nested)",
                    str(path),
                )
        resolved.append(path)
    return resolved


def _timeout(timeout: object) -> float:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or not 0 < timeout <= _MAX_TIMEOUT
    ):
        raise MpcParameterError("timeout", f"a number of seconds in (0, {_MAX_TIMEOUT:g}]", timeout)
    return float(timeout)


def _min_rows(min_rows: object) -> int:
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise MpcParameterError("min_rows", "an integer >= 1", min_rows)
    return min_rows


def _run(
    data_dirs: Sequence[Path | str],
    task: Task,
    timeout: object,
    pool: PartyPool | None,
    sandbox: bool | None,
) -> tuple[JobOutcome, int]:
    dirs = _dirs(data_dirs)
    seconds = _timeout(timeout)
    if pool is not None and not isinstance(pool, PartyPool):
        raise MpcParameterError("pool", "a PartyPool or None", type(pool))
    if pool is not None and sandbox is not None and sandbox != pool.sandbox:
        raise MpcParameterError("sandbox", f"None or {pool.sandbox} with this pool", sandbox)
    return run_job(dirs, task, timeout=seconds, pool=pool, sandbox=sandbox), len(dirs)


def _aggregate(
    kind: Literal["sum", "mean"],
    data_dirs: Sequence[Path | str],
    column: str,
    filters: object,
    timeout: float,
    min_rows: int,
    pool: PartyPool | None,
    sandbox: bool | None,
) -> SecureAggregate:
    task = AggregateTask(
        kind, check_column("column", column), normalize_filters(filters), _min_rows(min_rows)
    )
    outcome, parties = _run(data_dirs, task, timeout, pool, sandbox)
    result = outcome.result
    return SecureAggregate(
        kind, column, float(result["value"]), int(result["n"]), parties, MpcTiming.of(outcome)
    )


def secure_sum(
    data_dirs: Sequence[Path | str],
    column: str,
    *,
    filters: object = None,
    timeout: float,
    min_rows: int = DEFAULT_MIN_ROWS,
    pool: PartyPool | None = None,
    sandbox: bool | None = None,
) -> SecureAggregate:
    """Sum of a numeric column over every party's rows; only the sum and the count are revealed.

    Each party sums its own non-null values (after `filters`) and secret-shares the sum and
    count. `min_rows` usable rows are required per party. `pool` reuses warm party processes;
    `sandbox` True requires bubblewrap, False runs plain processes, None uses it when present
    (a pool's own setting applies when `pool` is given).
    Raises `MpcParameterError` (bad parameters), `MpcColumnError`, `MpcTooFewRowsError`,
    `MpcDataError` (a party's data cannot be used), `MpcPartyError` / `MpcTimeoutError` (a
    party failed or the timeout passed; every party was stopped), `MpcIsolationError`.
    """
    return _aggregate("sum", data_dirs, column, filters, timeout, min_rows, pool, sandbox)


def secure_mean(
    data_dirs: Sequence[Path | str],
    column: str,
    *,
    filters: object = None,
    timeout: float,
    min_rows: int = DEFAULT_MIN_ROWS,
    pool: PartyPool | None = None,
    sandbox: bool | None = None,
) -> SecureAggregate:
    """Mean of a numeric column over every party's rows: sum and count are summed securely and
    only the mean and the total count n are returned (together they imply the sum).

    Parameters and errors as `secure_sum`.
    """
    return _aggregate("mean", data_dirs, column, filters, timeout, min_rows, pool, sandbox)


def _logistic_task(
    features: Sequence[str],
    label: str,
    positive_label: object,
    l2: object,
    max_iter: object,
    tol: object,
    standardize: object,
    filters: object,
    min_rows: object,
) -> LogisticTask:
    if isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise MpcParameterError("features", "a non-empty sequence of column names", features)
    if len(features) > MAX_FEATURES:
        raise MpcParameterError("features", f"at most {MAX_FEATURES} columns", len(features))
    names = tuple(check_column(f"features[{i}]", f) for i, f in enumerate(features))
    if len(set(names)) != len(names):
        raise MpcParameterError("features", "distinct column names", list(names))
    check_column("label", label)
    if label in names:
        raise MpcParameterError("label", "a column that is not a feature", label)
    if positive_label is not None and not (
        isinstance(positive_label, str | int | bool)
        or (isinstance(positive_label, float) and math.isfinite(positive_label))
    ):
        raise MpcParameterError(
            "positive_label", "a string, number, boolean or None", positive_label
        )
    if (
        isinstance(l2, bool)
        or not isinstance(l2, int | float)
        or not math.isfinite(l2)
        or not 0 < l2 <= 1e12
    ):
        raise MpcParameterError("l2", "a number in (0, 1e12] (scikit-learn's 1/C)", l2)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int):
        raise MpcParameterError("max_iter", f"an integer in [1, {MAX_ITERATIONS}]", max_iter)
    if not 1 <= max_iter <= MAX_ITERATIONS:
        raise MpcParameterError("max_iter", f"an integer in [1, {MAX_ITERATIONS}]", max_iter)
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 <= tol < math.inf:
        raise MpcParameterError("tol", "a finite number >= 0", tol)
    if not isinstance(standardize, bool):
        raise MpcParameterError("standardize", "a boolean", standardize)
    scalar: Scalar | None = positive_label
    return LogisticTask(
        features=names,
        label=label,
        positive_label=scalar,
        l2=float(l2),
        max_iter=max_iter,
        tol=float(tol),
        standardize=standardize,
        filters=normalize_filters(filters),
        min_rows=_min_rows(min_rows),
    )


def secure_logistic_regression(
    data_dirs: Sequence[Path | str],
    features: Sequence[str],
    label: str,
    *,
    positive_label: Scalar | None = None,
    l2: float = 1.0,
    max_iter: int = 100,
    tol: float = 1e-8,
    timeout: float,
    standardize: bool = True,
    filters: object = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    pool: PartyPool | None = None,
    sandbox: bool | None = None,
) -> SecureModel:
    """L2-regularised logistic regression trained across parties without pooling rows.

    Minimizes ``sum(logloss) + l2/2 * ||w||^2`` (intercept unpenalized) over the complete
    cases of all parties, on features standardized with the global means and population
    standard deviations (`standardize`): the objective of scikit-learn's
    ``LogisticRegression(C=1/l2)`` on ``StandardScaler``-ed pooled rows. Newton iterations
    stop when no coordinate moves by `tol` or more (``tol=0``: exactly `max_iter` steps).
    The label is ``label == positive_label``, or a 0/1 or boolean column when that is None.
    Revealed: n, the feature means and scales, the summed gradient and Hessian of every
    iteration, and the model. Errors as `secure_sum`.
    """
    task = _logistic_task(
        features, label, positive_label, l2, max_iter, tol, standardize, filters, min_rows
    )
    outcome, parties = _run(data_dirs, task, timeout, pool, sandbox)
    result = outcome.result
    return SecureModel(
        features=task.features,
        coefficients=tuple(float(c) for c in result["coefficients"]),
        intercept=float(result["intercept"]),
        n=int(result["n"]),
        iterations=int(result["iterations"]),
        converged=bool(result["converged"]),
        means=tuple(float(m) for m in result["means"]),
        scales=tuple(float(s) for s in result["scales"]),
        l2=task.l2,
        parties=parties,
        timing=MpcTiming.of(outcome),
    )

"""The compute engine: one request in, one released result (or a typed error) out.

Flow of `ComputeEngine.run`: resolve the algorithm (a catalog template by name or code hash, or
the request's custom code by its hash) → validate the parameters, then against every dataset's
columns → reserve the privacy budget of every (grant, dataset) → run (a template through the
backend, custom code in the sandbox, a multi-owner template by MPC) → apply the release policy →
commit the reservation. Any failure after the reservation releases it, so failed and timed-out
jobs spend nothing and return nothing. The engine is a plain library: no I/O but the datasets
and the budget database, no printing; the job pipeline calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ledger.compute.backend import (
    Backend,
    DatasetRef,
    LocalBackend,
    OpenedDataset,
    open_dataset,
)
from ledger.compute.budget import BudgetCharge, BudgetLedger, Reservation
from ledger.compute.catalog import CatalogEntry, code_hash, entry, is_code_hash, runtime_hash
from ledger.compute.errors import (
    ComputeUnavailableError,
    InvalidRequestError,
    UnknownAlgorithmError,
)
from ledger.compute.params import canonical_json, keccak_hex, parse_params
from ledger.compute.policy import check_k, check_release, release_custom
from ledger.compute.templates._base import MultiOwnerTemplate, PartialContext, Template

__all__ = [
    "ComputeEngine",
    "ComputeRequest",
    "ComputeResult",
    "DatasetRef",
    "EpsilonSpend",
    "GrantBudget",
    "result_hash",
]

#: Most datasets one request may combine (multi-owner templates: one party each).
MAX_DATASETS = 16
#: Seconds a multi-party computation may take when the request sets no timeout.
DEFAULT_MPC_TIMEOUT = 300.0


@dataclass(frozen=True)
class GrantBudget:
    """A grant's privacy terms for one dataset, as the chain holds them: its budget and what it
    has spent so far (``AccessGrants`` ``epsilonBudget`` / ``epsilonSpent``), in micro-epsilon."""

    grant_id: str
    dataset_id: int
    budget_micro: int
    spent_micro: int = 0


@dataclass(frozen=True)
class ComputeRequest:
    """What to compute, on which datasets, under which grants, with which suppression threshold.

    `algorithm` is a template name, a template code hash, or the hash of `custom_code`.
    `custom_aggregates` declares the aggregate names custom code may release. `reservation_id`
    (e.g. the job id) makes the budget reservation idempotent across restarts.
    """

    algorithm: str
    params: Mapping[str, Any]
    datasets: Sequence[DatasetRef]
    grants: Sequence[GrantBudget]
    k: int
    custom_code: bytes | None = field(default=None, repr=False)
    custom_aggregates: Sequence[str] | None = None
    reservation_id: str | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class EpsilonSpend:
    """Micro-epsilon a result spent on one (grant, dataset)."""

    grant_id: str
    dataset_id: int
    epsilon_micro: int


@dataclass(frozen=True)
class ComputeResult:
    """A released result and what binds it in a receipt."""

    result: dict[str, Any]
    result_hash: str
    algorithm_hash: str
    algorithm_name: str | None
    runtime_hash: str
    parameters_hash: str
    epsilon_spent: tuple[EpsilonSpend, ...]
    suppression_k: int
    datasets: tuple[tuple[int, int], ...]
    backend: str
    reservation_id: str | None


def result_hash(result: Mapping[str, Any]) -> str:
    """keccak256 of the RFC 8785 canonical JSON of a released result."""
    return keccak_hex(canonical_json(dict(result)))


@dataclass(frozen=True)
class _Plan:
    algorithm_hash: str
    algorithm_name: str | None
    catalog_entry: CatalogEntry | None
    params: BaseModel | None
    raw_params: dict[str, Any]
    opened: tuple[OpenedDataset, ...]
    epsilon_micro: int


class ComputeEngine:
    """Runs compute requests; `budget` is required for templates that spend epsilon.

    `sandbox_limits` is passed to the custom-code runner as is (its defaults if None).
    """

    def __init__(
        self,
        *,
        budget: BudgetLedger | None = None,
        backend: Backend | None = None,
        sandbox_limits: Any = None,
    ) -> None:
        self._budget = budget
        self._backend: Backend = backend or LocalBackend()
        self._sandbox_limits = sandbox_limits

    @property
    def backend(self) -> Backend:
        """The backend template aggregates are computed on."""
        return self._backend

    def run(self, request: ComputeRequest) -> ComputeResult:
        """Compute, release and account for `request`.

        Raises:
            UnknownAlgorithmError: the algorithm is not in the catalog and not the custom code.
            InvalidRequestError: the request or a parameter breaks a rule (its leaves name the
                column or parameter).
            DatasetUnreadableError: a dataset cannot be read.
            BudgetExceededError: a grant has too little budget left (nothing ran).
            ReleaseRefusedError: the result is not an allowed shape (nothing released or spent).
            ComputeTimeoutError, BackendError, ComputeUnavailableError: the run failed (nothing
                spent).
        """
        k = check_k(request.k)
        plan = self._plan(request)
        charges = self._charges(request, plan)
        reservation = self._reserve(charges, request.reservation_id)
        try:
            released = self._execute(request, plan, k)
            if reservation is not None:
                assert self._budget is not None
                self._budget.commit(reservation)
        except BaseException:
            if reservation is not None:
                assert self._budget is not None
                self._budget.release(reservation)
            raise
        return ComputeResult(
            result=released,
            result_hash=result_hash(released),
            algorithm_hash=plan.algorithm_hash,
            algorithm_name=plan.algorithm_name,
            runtime_hash=runtime_hash(),
            parameters_hash=keccak_hex(canonical_json(plan.raw_params)),
            epsilon_spent=tuple(
                EpsilonSpend(c.grant_id, c.dataset_id, c.amount_micro) for c in charges
            ),
            suppression_k=k,
            datasets=tuple((d.dataset_id, d.version) for d in request.datasets),
            backend=self._backend.name if plan.catalog_entry is not None else "sandbox",
            reservation_id=None if reservation is None else reservation.reservation_id,
        )

    def _plan(self, request: ComputeRequest) -> _Plan:
        if not isinstance(request.algorithm, str) or not request.algorithm:
            raise InvalidRequestError("algorithm", "must be a template name or a code hash")
        datasets = list(request.datasets)
        if not 1 <= len(datasets) <= MAX_DATASETS:
            raise InvalidRequestError("datasets", f"must name 1 to {MAX_DATASETS} datasets")
        ids = [d.dataset_id for d in datasets]
        if len(set(ids)) != len(ids):
            raise InvalidRequestError("datasets", "a dataset may appear only once")
        if not isinstance(request.params, Mapping):
            raise InvalidRequestError("params", "must be a JSON object")
        try:
            catalog_entry: CatalogEntry | None = entry(request.algorithm)
        except UnknownAlgorithmError:
            catalog_entry = None
        if catalog_entry is None:
            return self._plan_custom(request, datasets)
        template = catalog_entry.template
        params = parse_params(template.params_model, request.params)
        if template.multi_owner and len(datasets) < 2:
            raise InvalidRequestError("datasets", f"{template.name} needs at least two datasets")
        if not template.multi_owner and len(datasets) != 1:
            raise InvalidRequestError("datasets", f"{template.name} runs on exactly one dataset")
        opened = tuple(open_dataset(ref) for ref in datasets)
        for dataset in opened:
            template.check(params, dataset.kinds, dataset.ref.dataset_id)
        return _Plan(
            algorithm_hash=catalog_entry.hash,
            algorithm_name=catalog_entry.name,
            catalog_entry=catalog_entry,
            params=params,
            raw_params=params.model_dump(mode="json"),
            opened=opened,
            epsilon_micro=template.epsilon_micro(params),
        )

    def _plan_custom(self, request: ComputeRequest, datasets: list[DatasetRef]) -> _Plan:
        if request.custom_code is None:
            raise UnknownAlgorithmError(request.algorithm, tuple(_names()))
        if not is_code_hash(request.algorithm.lower()):
            raise InvalidRequestError("algorithm", "custom code is named by its hash (0x + 64 hex)")
        if code_hash(request.custom_code) != request.algorithm.lower():
            raise InvalidRequestError("custom_code", "does not hash to the requested algorithm")
        raw = dict(request.params)
        try:
            canonical_json(raw)
        except Exception:
            raise InvalidRequestError("params", "must be plain JSON (no NaN, no binary)") from None
        opened = tuple(open_dataset(ref) for ref in datasets)
        return _Plan(
            algorithm_hash=request.algorithm.lower(),
            algorithm_name=None,
            catalog_entry=None,
            params=None,
            raw_params=raw,
            opened=opened,
            epsilon_micro=0,
        )

    def _charges(self, request: ComputeRequest, plan: _Plan) -> list[BudgetCharge]:
        grants: dict[int, GrantBudget] = {}
        for grant in request.grants:
            if grant.dataset_id in grants:
                raise InvalidRequestError(
                    "grants", f"dataset {grant.dataset_id} has more than one grant"
                )
            grants[grant.dataset_id] = grant
        wanted = {d.ref.dataset_id for d in plan.opened}
        missing = sorted(wanted - set(grants))
        if missing:
            raise InvalidRequestError("grants", f"no grant for dataset {missing[0]}")
        extra = sorted(set(grants) - wanted)
        if extra:
            raise InvalidRequestError("grants", f"grant for dataset {extra[0]} not in the request")
        if plan.epsilon_micro == 0:
            return []
        return [
            BudgetCharge(
                grant_id=grants[d.ref.dataset_id].grant_id,
                dataset_id=d.ref.dataset_id,
                amount_micro=plan.epsilon_micro,
                budget_micro=grants[d.ref.dataset_id].budget_micro,
                chain_spent_micro=grants[d.ref.dataset_id].spent_micro,
            )
            for d in plan.opened
        ]

    def _reserve(self, charges: list[BudgetCharge], rid: str | None) -> Reservation | None:
        if not charges:
            return None
        if self._budget is None:
            raise ComputeUnavailableError(
                "differential privacy", "the engine has no privacy budget ledger"
            )
        return self._budget.reserve(charges, reservation_id=rid)

    def _execute(self, request: ComputeRequest, plan: _Plan, k: int) -> dict[str, Any]:
        if plan.catalog_entry is None:
            return self._run_custom(request, plan, k)
        template = plan.catalog_entry.template
        if isinstance(template, MultiOwnerTemplate):
            result = self._run_multi(template, plan, k, request.timeout)
        else:
            assert isinstance(template, Template)
            dataset = plan.opened[0]
            aggregate = self._backend.aggregate(template, plan.params, dataset, request.timeout)
            ctx = PartialContext(rows_total=dataset.rows_total, kinds=dataset.kinds)
            result = template.finalize(plan.params, aggregate, k, ctx)
        return check_release(result, template.shape(plan.params), k)

    def _run_multi(
        self, template: MultiOwnerTemplate, plan: _Plan, k: int, timeout: float | None
    ) -> dict[str, Any]:
        dirs: list[Path] = [d.ref.parquet_dir for d in plan.opened]
        return template.run_multi(plan.params, dirs, k, timeout or DEFAULT_MPC_TIMEOUT)

    def _run_custom(self, request: ComputeRequest, plan: _Plan, k: int) -> dict[str, Any]:
        try:
            from ledger.compute.custom import run_custom
        except ImportError as exc:
            raise ComputeUnavailableError(
                "custom code", f"the sandbox runner is missing ({exc})"
            ) from None
        assert request.custom_code is not None
        run = run_custom(
            request.custom_code,
            plan.algorithm_hash,
            [d.ref.parquet_dir for d in plan.opened],
            plan.raw_params,
            self._sandbox_limits,
        )
        return release_custom(
            run.result,
            k,
            declared=request.custom_aggregates,
            rows_total=sum(d.rows_total for d in plan.opened),
        )


def _names() -> list[str]:
    from ledger.compute.catalog import catalog

    return list(catalog())

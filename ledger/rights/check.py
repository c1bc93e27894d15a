"""Whether a grant allows a job, and if not, why: one rule set for the index and the chain.

`decide` is pure: it takes the grant's terms, what is known of its state and of its dataset,
and the job, and returns a `Decision`. The index path (fast, for listings and the API) and
`check_onchain` (fresh, what the job pipeline calls right before running) both end in the same
reasons, named by `Reason`. The chain stays the authority: `check_onchain` also asks the
contract itself (``AccessGrants.checkUse``) and maps its custom error onto the same reasons.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Protocol

from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3.contract import Contract

from ledger.chain.client import call
from ledger.chain.reverts import ContractRevert
from ledger.rights.typed_data import Grant, check_value, grant_as_tuple

__all__ = [
    "ANY_CATALOG_ALGORITHM",
    "Decision",
    "GrantTerms",
    "GrantStatus",
    "JobRequest",
    "Reason",
    "check_onchain",
    "decide",
    "status_onchain",
]

#: ``AccessGrants.ANY_CATALOG_ALGORITHM``: keccak256("ledger.algorithm.any-catalog").
ANY_CATALOG_ALGORITHM: Final = keccak(text="ledger.algorithm.any-catalog")


class Reason(enum.StrEnum):
    """Why a grant does not allow a job (stable codes, used by the API too)."""

    UNKNOWN_GRANT = "unknown_grant"
    REVOKED = "revoked"
    OWNER_CHANGED = "owner_changed"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    WRONG_DATASET = "wrong_dataset"
    WRONG_GRANTEE = "wrong_grantee"
    WRONG_ALGORITHM = "wrong_algorithm"
    WRONG_PURPOSE = "wrong_purpose"
    INVALID_USES = "invalid_uses"
    USES_EXCEEDED = "uses_exceeded"
    BUDGET_EXCEEDED = "budget_exceeded"
    EXECUTOR_NOT_ALLOWED = "executor_not_allowed"
    UNKNOWN_DATASET = "unknown_dataset"
    PAYMENT_TOO_LARGE = "payment_too_large"


class GrantTerms(Protocol):
    """The terms `decide` reads: a `Grant`, or a lighter row from the index."""

    @property
    def price_per_use(self) -> int: ...
    @property
    def dataset_id(self) -> int: ...
    @property
    def grantee(self) -> str: ...
    @property
    def algorithm_hash(self) -> bytes: ...
    @property
    def purpose(self) -> bytes: ...
    @property
    def valid_from(self) -> int: ...
    @property
    def valid_until(self) -> int: ...
    @property
    def max_uses(self) -> int: ...
    @property
    def epsilon_budget(self) -> int: ...
    @property
    def nonce(self) -> int: ...


@dataclass(frozen=True, slots=True)
class GrantStatus:
    """What is known of an issued grant and its dataset, from the index or the chain."""

    issued: bool
    revoked: bool
    uses: int
    epsilon_spent: int
    owner_epoch: int
    min_nonce: int
    dataset_owner_epoch: int | None
    executor_allowed: bool
    algorithm_listed: bool


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What a job asks of a grant. Values are checked against the contract's types.

    Raises:
        InvalidGrantError: a value does not fit (names the field and the rule); addresses are
            stored checksummed, so both checks compare them alike.
    """

    dataset_id: int
    consumer: ChecksumAddress
    algorithm_hash: bytes
    purpose: bytes
    uses: int
    epsilon: int
    executor: ChecksumAddress
    at: int

    def __post_init__(self) -> None:
        for name, solidity_type in _JOB_TYPES:
            object.__setattr__(self, name, check_value(name, solidity_type, getattr(self, name)))


_JOB_TYPES: Final = (
    ("dataset_id", "uint256"),
    ("consumer", "address"),
    ("algorithm_hash", "bytes32"),
    ("purpose", "bytes32"),
    ("uses", "uint32"),
    ("epsilon", "uint64"),
    ("executor", "address"),
    ("at", "uint256"),
)
# RevenueVault's MAX_PAYMENT: the most one escrow (one grant's part of a job) can hold.
MAX_PAYMENT: Final = 2**88 - 1


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: allowed, or the first reason it is not, with a sentence for people."""

    allowed: bool
    reason: Reason | None = None
    detail: str = ""

    @classmethod
    def no(cls, reason: Reason, detail: str) -> Decision:
        """A refusal."""
        return cls(False, reason, detail)


_ALLOWED: Final = Decision(True)


def decide(grant: GrantTerms, status: GrantStatus, job: JobRequest) -> Decision:
    """Whether `grant` (in `status`) allows `job`.

    The checks run in the order ``UsageLedger.recordUsage`` meets them (dataset, executor, then
    ``AccessGrants._checkUse``, then the payment), so both paths name the same first reason.
    """
    if status.dataset_owner_epoch is None:
        return Decision.no(Reason.UNKNOWN_DATASET, f"dataset {grant.dataset_id} is not registered")
    if not status.executor_allowed:
        return Decision.no(Reason.EXECUTOR_NOT_ALLOWED, "the owner has not allowed this executor")
    if not status.issued:
        return Decision.no(Reason.UNKNOWN_GRANT, "no grant with these terms was issued")
    if status.revoked or grant.nonce < status.min_nonce:
        return Decision.no(Reason.REVOKED, "the grantor revoked this grant")
    if status.dataset_owner_epoch != status.owner_epoch:
        return Decision.no(Reason.OWNER_CHANGED, "the dataset changed hands after the grant")
    if job.dataset_id != grant.dataset_id:
        return Decision.no(Reason.WRONG_DATASET, f"the grant is for dataset {grant.dataset_id}")
    if job.at < grant.valid_from:
        return Decision.no(Reason.NOT_YET_VALID, f"valid from {grant.valid_from}")
    if job.at > grant.valid_until:
        return Decision.no(Reason.EXPIRED, f"expired at {grant.valid_until}")
    if job.consumer != grant.grantee:
        return Decision.no(Reason.WRONG_GRANTEE, "results of this grant go to another grantee")
    if grant.algorithm_hash == ANY_CATALOG_ALGORITHM:
        if not status.algorithm_listed:
            return Decision.no(Reason.WRONG_ALGORITHM, "the algorithm is not in the catalog")
    elif job.algorithm_hash != grant.algorithm_hash:
        return Decision.no(Reason.WRONG_ALGORITHM, "the grant names another algorithm")
    if job.purpose != grant.purpose:
        return Decision.no(Reason.WRONG_PURPOSE, "the grant is for another purpose")
    if job.uses < 1:
        return Decision.no(Reason.INVALID_USES, "a job uses at least one use")
    if status.uses + job.uses > grant.max_uses:
        left = grant.max_uses - status.uses
        return Decision.no(Reason.USES_EXCEEDED, f"{left} of {grant.max_uses} uses left")
    if status.epsilon_spent + job.epsilon > grant.epsilon_budget:
        left = grant.epsilon_budget - status.epsilon_spent
        return Decision.no(Reason.BUDGET_EXCEEDED, f"{left} micro-epsilon of budget left")
    if grant.price_per_use * job.uses > MAX_PAYMENT:
        return Decision.no(Reason.PAYMENT_TOO_LARGE, "price times uses exceeds one escrow")
    return _ALLOWED


# The contract's custom errors, mapped onto the same reasons.
_REVERT_REASONS: Final = {
    "AccessGrantsUnknownGrant": Reason.UNKNOWN_GRANT,
    "AccessGrantsRevoked": Reason.REVOKED,
    "AccessGrantsOwnerChanged": Reason.OWNER_CHANGED,
    "AccessGrantsWrongGrantee": Reason.WRONG_GRANTEE,
    "AccessGrantsWrongAlgorithm": Reason.WRONG_ALGORITHM,
    "AccessGrantsWrongPurpose": Reason.WRONG_PURPOSE,
    "AccessGrantsUsesExceeded": Reason.USES_EXCEEDED,
    "AccessGrantsBudgetExceeded": Reason.BUDGET_EXCEEDED,
    "AccessGrantsInvalidTerms": Reason.INVALID_USES,
    "DataRegistryUnknownDataset": Reason.UNKNOWN_DATASET,
}


def check_onchain(grants: Contract, registry: Contract, grant: Grant, job: JobRequest) -> Decision:
    """The fresh check the pipeline runs right before computing: the chain's own answer.

    Calls ``AccessGrants.checkUse`` (the exact rule `consume` applies) and
    ``DataRegistry.isExecutor`` at the latest block.

    Raises:
        RpcUnavailableError: the node does not answer.
    """
    try:
        executor_allowed = call(registry.functions.isExecutor(grant.dataset_id, job.executor))
    except ContractRevert as exc:
        return _from_revert(exc, grant)
    if not executor_allowed:
        return Decision.no(Reason.EXECUTOR_NOT_ALLOWED, "the owner has not allowed this executor")
    use = (job.consumer, job.algorithm_hash, job.purpose, job.uses, job.epsilon)
    try:
        call(grants.functions.checkUse(grant_as_tuple(grant), use))
    except ContractRevert as exc:
        return _from_revert(exc, grant)
    if job.dataset_id != grant.dataset_id:
        return Decision.no(Reason.WRONG_DATASET, f"the grant is for dataset {grant.dataset_id}")
    if grant.price_per_use * job.uses > MAX_PAYMENT:
        return Decision.no(Reason.PAYMENT_TOO_LARGE, "price times uses exceeds one escrow")
    return _ALLOWED


def _from_revert(exc: ContractRevert, grant: Grant) -> Decision:
    if exc.error == "AccessGrantsOutsideWindow":
        now = int(exc.arguments.get("nowTimestamp", 0))
        if now < grant.valid_from:
            return Decision.no(Reason.NOT_YET_VALID, f"valid from {grant.valid_from}")
        return Decision.no(Reason.EXPIRED, f"expired at {grant.valid_until}")
    reason = _REVERT_REASONS.get(exc.error)
    if reason is None:
        raise exc
    return Decision.no(reason, str(exc))


def status_onchain(
    grants: Contract, registry: Contract, grant: Grant, job: JobRequest
) -> GrantStatus:
    """The `GrantStatus` of `grant` for `job`, read from the chain with several eth_calls.

    Raises:
        RpcUnavailableError: the node does not answer.
    """
    grant_id = call(grants.functions.grantId(grant_as_tuple(grant)))
    uses, spent, epoch, _issued_at, state = call(grants.functions.stateOf(grant_id))
    try:
        dataset_epoch: int | None = call(registry.functions.ownerEpochOf(grant.dataset_id))
    except ContractRevert:
        dataset_epoch = None
    allowed = dataset_epoch is not None and call(
        registry.functions.isExecutor(grant.dataset_id, job.executor)
    )
    return GrantStatus(
        issued=state != 0,
        revoked=state == 2,
        uses=uses,
        epsilon_spent=spent,
        owner_epoch=epoch,
        min_nonce=call(grants.functions.minNonceOf(grant.grantor)),
        dataset_owner_epoch=dataset_epoch,
        executor_allowed=bool(allowed),
        algorithm_listed=bool(call(grants.functions.isCatalogAlgorithm(job.algorithm_hash))),
    )

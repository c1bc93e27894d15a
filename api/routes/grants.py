"""Grants: the typed data an owner signs, relaying a signed grant, listing, status, checks and
revocation.

``AccessGrants`` has no signature-based revocation: ``revoke`` must be sent by the grantor (or
the dataset's current owner) from their own wallet, so the revoke route returns the unsigned
transaction for the wallet to send.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any, Final

from eth_utils.crypto import keccak
from fastapi import APIRouter, Query
from sqlalchemy import func, select

from api.deps import AddressDep, Services, ServicesDep
from api.errors import ApiError
from api.routes.common import address, hash32, reading, responses, uint
from api.schemas import GrantSubmission, GrantTermsIn
from ledger.chain.client import call
from ledger.compute.catalog import entry
from ledger.errors import ContractRevert
from ledger.indexer.state import table_of
from ledger.jobs.request import grant_from_json, grant_to_json
from ledger.rights.check import ANY_CATALOG_ALGORITHM, JobRequest
from ledger.rights.index import check_from_index, grant_from_record
from ledger.rights.signatures import verify_grant_signature
from ledger.rights.typed_data import Grant, grant_as_tuple, grant_digest, grant_typed_data
from ledger.store.models.grants import GrantRecord
from ledger.store.models.registry import Dataset

__all__ = ["router"]

router = APIRouter(prefix="/v1/grants", tags=["grants"])
_GRANTS: Final = table_of(GrantRecord)
_DATASETS: Final = table_of(Dataset)
_HEX: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_DAY: Final = 86_400


def algorithm_hash(value: str, field: str = "algorithm") -> bytes:
    """'any' (any catalog algorithm), a catalog name, or a 0x code hash, as 32 bytes."""
    if value == "any":
        return ANY_CATALOG_ALGORITHM
    if _HEX.fullmatch(value):
        return bytes.fromhex(value[2:])
    try:
        return bytes.fromhex(str(entry(value).hash)[2:])
    except LookupError:
        raise ApiError(
            422, "unknown_algorithm", f"{field} must be 'any', a catalog name or a 0x hash", field
        ) from None


def purpose_hash(value: str, field: str = "purpose") -> bytes:
    """A 0x hash as is, or keccak256 of a purpose label."""
    if _HEX.fullmatch(value):
        return bytes.fromhex(value[2:])
    if not value.strip():
        raise ApiError(422, "invalid_request", f"{field} must not be empty", field)
    return keccak(text=value)


def dataset_owner(services: Services, dataset_id: int) -> str:
    """The dataset's current owner, from the chain (404 if it is not registered)."""
    try:
        owner: str = call(services.chain.registry.functions.ownerOf(dataset_id))
    except ContractRevert:
        raise ApiError(
            404, "dataset_not_found", f"datasetId {dataset_id} is not registered", "datasetId"
        ) from None
    return owner


def _next_nonce(services: Services, grantor: str) -> int:
    with reading(services.engine) as session:
        top = (
            session.connection()
            .execute(select(func.max(_GRANTS.c.nonce)).where(_GRANTS.c.grantor == grantor))
            .scalar()
        )
    nonce = max(
        0 if top is None else int(top) + 1,
        int(call(services.chain.grants.functions.minNonceOf(grantor))),
    )
    for _ in range(64):
        if not call(services.chain.grants.functions.isNonceUsed(grantor, nonce)):
            return nonce
        nonce += 1
    return nonce


def _typed(services: Services, grant: Grant) -> dict[str, Any]:
    return {
        "grant_id": "0x" + services.chain.grant_id(grant).hex(),
        "typed_data": grant_typed_data(
            grant, services.deployment.chain_id, services.chain.grants.address
        ),
    }


@router.post("/typed-data", responses=responses(401, 403, 404, 422))
def typed_data(terms: GrantTermsIn, caller: AddressDep, services: ServicesDep) -> dict[str, Any]:
    """The ``eth_signTypedData_v4`` JSON of a grant by the signed-in owner of the dataset, and
    the grant's id (its EIP-712 digest). POST because the terms are a body; nothing is stored."""
    dataset_id = uint(terms.datasetId, "datasetId")
    owner = dataset_owner(services, dataset_id)
    if owner != caller:
        raise ApiError(
            403,
            "not_dataset_owner",
            "datasetId must be a dataset the signed-in address owns",
            "datasetId",
        )
    now = services.chain.now()
    valid_from = now if terms.validFrom is None else uint(terms.validFrom, "validFrom", 64)
    grant = Grant(
        dataset_id=dataset_id,
        grantor=caller,  # type: ignore[arg-type]
        grantee=address(terms.grantee, "grantee"),  # type: ignore[arg-type]
        algorithm_hash=algorithm_hash(terms.algorithm),
        purpose=purpose_hash(terms.purpose),
        valid_from=valid_from,
        valid_until=valid_from + 30 * _DAY
        if terms.validUntil is None
        else uint(terms.validUntil, "validUntil", 64),
        max_uses=uint(terms.maxUses, "maxUses", 32),
        epsilon_budget=uint(terms.epsilonBudget, "epsilonBudget", 64),
        payment_token=address(terms.paymentToken, "paymentToken"),  # type: ignore[arg-type]
        price_per_use=uint(terms.pricePerUse, "pricePerUse"),
        nonce=_next_nonce(services, caller) if terms.nonce is None else uint(terms.nonce, "nonce"),
        deadline=now + 3600 if terms.deadline is None else uint(terms.deadline, "deadline"),
    )
    return _typed(services, grant)


@router.post("", status_code=201, responses=responses(401, 403, 404, 409, 422))
def submit(body: GrantSubmission, caller: AddressDep, services: ServicesDep) -> dict[str, Any]:
    """Relay a grant the signed-in owner signed (``AccessGrants.issueWithSig``, sent by the
    service's executor key). Terms, domain, ownership, deadline, nonce and signature are checked
    first; nothing is sent if one fails."""
    domain = body.typed_data.get("domain")
    if isinstance(domain, dict):
        if (
            domain.get("chainId") != services.deployment.chain_id
            or str(domain.get("verifyingContract", "")).lower()
            != services.chain.grants.address.lower()
        ):
            raise ApiError(
                422,
                "wrong_domain",
                "typed_data.domain must name this chain id and AccessGrants contract",
                "typed_data.domain",
            )
    grant = grant_from_json(body.typed_data, "typed_data.message")
    if grant.grantor != caller:
        raise ApiError(
            403,
            "not_grantor",
            "typed_data.message.grantor must be the signed-in address",
            "typed_data.message.grantor",
        )
    if dataset_owner(services, grant.dataset_id) != grant.grantor:
        raise ApiError(
            403,
            "not_dataset_owner",
            "the grantor must own typed_data.message.datasetId",
            "typed_data.message.datasetId",
        )
    grants = services.chain.grants.functions
    if grant.deadline < services.chain.now():
        raise ApiError(
            422,
            "deadline_passed",
            "typed_data.message.deadline must be in the future",
            "typed_data.message.deadline",
        )
    if call(grants.isNonceUsed(grant.grantor, grant.nonce)):
        raise ApiError(
            409,
            "nonce_used",
            "typed_data.message.nonce must not be used or invalidated",
            "typed_data.message.nonce",
        )
    signature = bytes.fromhex(body.signature[2:]) if len(body.signature) % 2 == 0 else b""
    chain_id = services.deployment.chain_id
    if not verify_grant_signature(
        services.w3, grant, signature, chain_id, services.chain.grants.address
    ):
        raise ApiError(
            422,
            "invalid_signature",
            "signature must be the grantor's EIP-712 signature (low-s) of these terms",
            "signature",
        )
    receipt = services.relayer.send(grants.issueWithSig(grant_as_tuple(grant), signature))
    return {
        "grant_id": "0x" + grant_digest(grant, chain_id, services.chain.grants.address).hex(),
        "tx_hash": receipt["transactionHash"].to_0x_hex(),
        "block_number": receipt["blockNumber"],
        "terms": grant_to_json(grant),
    }


def _row_json(row: Any) -> dict[str, Any]:
    grant = grant_from_record(row)
    return {
        "grant_id": row.grant_id,
        "status": str(row.status),
        "uses": row.uses,
        "epsilon_spent": str(row.epsilon_spent),
        "relayed": row.relayed,
        "terms": grant_to_json(grant),
    }


@router.get("", responses=responses(401, 422))
def list_grants(
    caller: AddressDep,
    services: ServicesDep,
    role: Annotated[str, Query(pattern="^(grantor|grantee)$")] = "grantor",
    dataset_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Grants the signed-in address gave (``role=grantor``) or received (``role=grantee``), from
    the index, newest first."""
    column = _GRANTS.c.grantor if role == "grantor" else _GRANTS.c.grantee
    query = select(_GRANTS).where(column == caller)
    if dataset_id is not None:
        query = query.where(_GRANTS.c.dataset_id == dataset_id)
    with reading(services.engine) as session:
        total = (
            session.connection()
            .execute(select(func.count()).select_from(query.subquery()))
            .scalar_one()
        )
        rows = (
            session.connection()
            .execute(
                query.order_by(_GRANTS.c.block_number.desc(), _GRANTS.c.grant_id)
                .limit(limit)
                .offset(offset)
            )
            .all()
        )
    return {"total": total, "limit": limit, "offset": offset, "items": [_row_json(r) for r in rows]}


def _party_grant(services: Services, grant_id: str, caller: str) -> Any:
    """The indexed grant, if `caller` is its grantor, grantee or the dataset's owner."""
    key = hash32(grant_id, "grant_id")
    with reading(services.engine) as session:
        row = (
            session.connection()
            .execute(
                select(_GRANTS, _DATASETS.c.owner.label("dataset_owner"))
                .select_from(
                    _GRANTS.outerjoin(_DATASETS, _DATASETS.c.dataset_id == _GRANTS.c.dataset_id)
                )
                .where(_GRANTS.c.grant_id == key)
            )
            .first()
        )
    if row is None:
        raise ApiError(404, "grant_not_found", "grant_id must name an indexed grant", "grant_id")
    if caller not in (row.grantor, row.grantee, row.dataset_owner):
        raise ApiError(
            403,
            "not_grant_party",
            "only the grant's grantor, grantee or dataset owner may see it",
            "grant_id",
        )
    return row


@router.get("/{grant_id}", responses=responses(401, 403, 404, 422))
def grant_status(grant_id: str, caller: AddressDep, services: ServicesDep) -> dict[str, Any]:
    """An indexed grant: terms, status, uses and privacy spent (parties only)."""
    return _row_json(_party_grant(services, grant_id, caller))


@router.get("/{grant_id}/check", responses=responses(401, 403, 404, 422))
def check(
    grant_id: str,
    caller: AddressDep,
    services: ServicesDep,
    algorithm: Annotated[str, Query(max_length=100)] = "any",
    purpose: Annotated[str | None, Query(max_length=100)] = None,
    epsilon: Annotated[int, Query(ge=0, lt=2**64)] = 0,
    uses: Annotated[int, Query(ge=1, lt=2**32)] = 1,
) -> dict[str, Any]:
    """Whether the grant allows a job of its grantee now (from the index; the pipeline checks
    the chain again before running), and if not, the reason code."""
    row = _party_grant(services, grant_id, caller)
    job = JobRequest(
        dataset_id=row.dataset_id,
        consumer=row.grantee,
        algorithm_hash=row_algorithm(row.algorithm_hash, algorithm),
        purpose=bytes.fromhex(row.purpose[2:]) if purpose is None else purpose_hash(purpose),
        uses=uses,
        epsilon=epsilon,
        executor=services.relayer.address,
        at=int(time.time()),
    )
    with reading(services.engine) as session:
        decision = check_from_index(session, row.grant_id, job)
    return {
        "grant_id": row.grant_id,
        "allowed": decision.allowed,
        "reason": None if decision.reason is None else decision.reason.value,
        "detail": decision.detail,
    }


def row_algorithm(granted: str, asked: str) -> bytes:
    """The algorithm to check: the one asked for; 'any' means the grant's own."""
    if asked == "any" and granted != "0x" + ANY_CATALOG_ALGORITHM.hex():
        return bytes.fromhex(granted[2:])
    return algorithm_hash(asked)


@router.post("/{grant_id}/revoke", responses=responses(401, 403, 404, 409, 422))
def revoke(grant_id: str, caller: AddressDep, services: ServicesDep) -> dict[str, Any]:
    """The unsigned ``AccessGrants.revoke`` transaction for the signed-in grantor (or dataset
    owner) to send from their wallet: the contract accepts revocation only from them, with no
    signature-based variant, so the service cannot relay it."""
    row = _party_grant(services, grant_id, caller)
    if caller not in (row.grantor, row.dataset_owner):
        raise ApiError(
            403,
            "not_grant_owner",
            "only the grantor or the dataset's owner may revoke a grant",
            "grant_id",
        )
    if str(row.status) == "revoked":
        raise ApiError(409, "already_revoked", "the grant is revoked already", "grant_id")
    grant = grant_from_record(row)
    contract = services.chain.grants
    return {
        "grant_id": row.grant_id,
        "note": "send this transaction from your wallet (eth_sendTransaction); "
        "AccessGrants only accepts revocations from the grantor or the dataset owner",
        "tx": {
            "chainId": services.deployment.chain_id,
            "from": caller,
            "to": contract.address,
            "data": contract.encode_abi("revoke", args=[grant_as_tuple(grant)]),
            "value": "0",
        },
    }

"""Jobs: create (the consumer's wallet pays the escrows), report payments, status, result.

Creating a job mirrors ``ledger.jobs.submit.submit_job`` up to the payment: the request is
checked (datasets, one grant per dataset, the chain's ``checkUse`` for the service's executor,
prices), the job is stored ``awaiting_payment`` with its intended escrows, and the response holds
the unsigned ``RevenueVault.escrow`` transactions (and ERC-20 approvals) for the consumer's
wallet. The worker observes the escrows on chain and runs the job once all are held; the
optional payments route only records which transactions paid.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from web3.exceptions import TransactionNotFound

from api.deps import AddressDep, Services, ServicesDep
from api.errors import ApiError
from api.routes.common import hash32, responses, uint
from api.routes.grants import algorithm_hash
from api.schemas import JobCreate, PaymentsIn
from ledger.jobs.chain import ERC20_ABI, ZERO_ADDRESS, EscrowStatus
from ledger.jobs.queries import job_result, job_status
from ledger.jobs.request import DatasetSpec, build_request, grant_from_json
from ledger.jobs.store import JobStore
from ledger.jobs.submit import check_job, store_job
from ledger.store.models.jobs import (
    JobStatus,
    OutboxAction,
    OutboxStatus,
    PipelineJob,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JobId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="The job id.")]


def _tx(services: Services, sender: str, to: str, data: str, value: int) -> dict[str, Any]:
    return {
        "chainId": services.deployment.chain_id,
        "from": sender,
        "to": to,
        "data": data,
        "value": str(value),
    }


@router.post("", status_code=201, responses=responses(401, 404, 409, 422))
def create(body: JobCreate, caller: AddressDep, services: ServicesDep) -> dict[str, Any]:
    """Check and store a job of the signed-in consumer; returns the transactions its wallet
    must send to escrow the payment (none for free grants). Nothing is stored if a check
    fails."""
    chain = services.chain
    grants = tuple(grant_from_json(g, f"grants[{i}]") for i, g in enumerate(body.grants))
    specs = tuple(
        DatasetSpec(uint(d.datasetId, f"datasets[{i}].datasetId"), d.version)
        for i, d in enumerate(body.datasets)
    )
    request = build_request(
        consumer=caller,
        grants=grants,
        algorithm=body.algorithm,
        algorithm_hash=algorithm_hash(body.algorithm),
        params=body.params,
        datasets=specs,
    )
    checked = check_job(chain, request, executor=services.relayer.address)
    store_job(services.jobs, checked)
    job_id = checked.job_id
    vault = chain.vault
    payments = []
    for grant, amount, key in checked.due:
        txs = []
        if grant.payment_token != ZERO_ADDRESS:
            token = services.w3.eth.contract(address=grant.payment_token, abi=ERC20_ABI)
            approve = token.encode_abi("approve", args=[vault.address, amount])
            txs.append(_tx(services, caller, grant.payment_token, approve, 0))
        data = vault.encode_abi(
            "escrow", args=[job_id, bytes.fromhex(key[2:]), grant.payment_token, amount]
        )
        value = amount if grant.payment_token == ZERO_ADDRESS else 0
        txs.append(_tx(services, caller, vault.address, data, value))
        payments.append(
            {
                "grant_id": key,
                "escrow_id": "0x" + chain.escrow_id(job_id, bytes.fromhex(key[2:]), caller).hex(),
                "token": grant.payment_token,
                "amount": str(amount),
                "transactions": txs,
            }
        )
    return {
        "job_id": checked.job_hex,
        "status": JobStatus.AWAITING_PAYMENT.value,
        "datasets": [
            {"datasetId": d.dataset_id, "version": d.version} for d in checked.request.datasets
        ],
        "payments": payments,
        "note": "send each transaction from your wallet in order; the job runs once every "
        "escrow is held on chain",
    }


class _Loaded(JobStore):
    """A job store that answers `get` from rows already read (one query for a whole page)."""

    def __init__(self, engine: Engine, rows: list[PipelineJob]) -> None:
        super().__init__(engine)
        for row in rows:
            row.status = JobStatus(row.status)  # stored as its value
        self._rows = {r.job_id: r for r in rows}

    def get(self, job_id: str) -> PipelineJob:
        """The row read before (the store's own `get` for any other)."""
        return self._rows.get(job_id) or super().get(job_id)


@router.get("", responses=responses(401, 422))
def list_jobs(
    caller: AddressDep,
    services: ServicesDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """The signed-in consumer's jobs, newest first, each as its status (``GET /v1/jobs/{id}``);
    nobody else's."""
    # Consumers are stored checksummed; a lower-case one (older rows) is matched too.
    mine = col(PipelineJob.consumer).in_(sorted({caller, caller.lower()}))
    where = [mine] if status is None else [mine, col(PipelineJob.status) == status]
    with Session(services.engine) as session:
        total = session.exec(select(func.count()).select_from(PipelineJob).where(*where)).one()
        rows = list(
            session.exec(
                select(PipelineJob)
                .where(*where)
                .order_by(col(PipelineJob.created_at).desc(), col(PipelineJob.job_id))
                .limit(limit)
                .offset(offset)
            )
        )
    loaded = _Loaded(services.engine, rows)
    return {
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [job_status(loaded, r.job_id) for r in rows],
    }


def _own_job(services: Services, job_id: str, caller: str) -> PipelineJob:
    job = services.jobs.get(job_id.lower())
    if job.consumer.lower() != caller.lower():
        raise ApiError(403, "not_job_consumer", "only the job's consumer may see it", "job_id")
    return job


@router.post("/{job_id}/payments", responses=responses(401, 403, 404, 409, 422))
def payments(
    job_id: JobId, body: PaymentsIn, caller: AddressDep, services: ServicesDep
) -> dict[str, Any]:
    """Record the escrow transactions the consumer's wallet sent: each must have succeeded and
    left the job's escrow for one of its grants held on chain."""
    job = _own_job(services, job_id, caller)
    pending = {e.key: e for e in services.jobs.outbox(job.job_id, OutboxAction.ESCROW)}
    job_bytes = bytes.fromhex(job.job_id[2:])
    confirmed = []
    for i, raw in enumerate(body.tx_hashes):
        tx_hash = hash32(raw, f"tx_hashes[{i}]")
        try:
            receipt = services.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            raise ApiError(
                409,
                "payment_not_mined",
                f"tx_hashes[{i}] is not a mined transaction on this chain (wait for it, or "
                "check the hash)",
                f"tx_hashes[{i}]",
            ) from None
        if receipt["status"] != 1 or receipt["to"] != services.chain.vault.address:
            raise ApiError(
                409,
                "payment_not_escrow",
                f"tx_hashes[{i}] must be a successful escrow transaction to the RevenueVault",
                f"tx_hashes[{i}]",
            )
        events = services.chain.vault.events.Escrowed().process_receipt(receipt)
        matched = False
        for event in events:
            args = event["args"]
            key = "0x" + bytes(args["grantId"]).hex()
            if bytes(args["jobId"]) != job_bytes or key not in pending:
                continue
            escrow_id = services.chain.escrow_id(job_bytes, bytes.fromhex(key[2:]), job.consumer)
            if services.chain.escrow_of(escrow_id).status != EscrowStatus.HELD:
                continue
            services.jobs.settle(
                job.job_id, OutboxAction.ESCROW, key, OutboxStatus.CONFIRMED, tx_hash
            )
            confirmed.append(key)
            matched = True
        if not matched:
            raise ApiError(
                409,
                "payment_not_escrow",
                f"tx_hashes[{i}] must escrow a grant of this job",
                f"tx_hashes[{i}]",
            )
    return {"job_id": job.job_id, "confirmed": confirmed}


@router.get("/{job_id}", responses=responses(401, 403, 404, 422))
def status(job_id: JobId, caller: AddressDep, services: ServicesDep) -> dict[str, Any]:
    """The job's status (its consumer only): step, failure reason, hashes, record tx."""
    _own_job(services, job_id, caller)
    return job_status(services.jobs, job_id)


@router.get("/{job_id}/result", responses=responses(401, 403, 404, 409, 422))
def result(job_id: JobId, caller: AddressDep, services: ServicesDep) -> dict[str, Any]:
    """The released result and its signed receipt: the grantee (the job's consumer) only."""
    _own_job(services, job_id, caller)
    return job_result(services.jobs, services.results, job_id, caller)

"""The job pipeline end to end on a real anvil, SQLite and PostgreSQL, with the real compute
engine, receipts and settlement weights; the worker runs as a real process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from sqlmodel import Session, select
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.jobs.chain import ZERO_ADDRESS, EscrowStatus
from ledger.jobs.errors import (
    JobAccessDeniedError,
    JobNotReadyError,
    JobRefusedError,
    JobRequestError,
)
from ledger.jobs.queries import job_result, job_status
from ledger.jobs.request import DatasetSpec, build_request, new_job_id
from ledger.provenance.canonical import result_hash as hash_of_result
from ledger.provenance.verify import verify_result
from ledger.store.models.jobs import JobStatus, OutboxAction, OutboxStatus, PipelineJob
from tests.integration.jobs_world import OTHER_KEY, PRICE, World, default_params, make_world


@pytest.fixture()
def world(anvil: Anvil, w3: Web3, tmp_path: Path, database_url: str) -> Iterator[World]:
    made = make_world(w3, anvil.url, tmp_path / "data", database_url)
    try:
        yield made
    finally:
        made.engine.dispose()


@pytest.fixture()
def sqlite_world(anvil: Anvil, w3: Web3, tmp_path: Path) -> Iterator[World]:
    made = make_world(w3, anvil.url, tmp_path / "data", f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        yield made
    finally:
        made.engine.dispose()


def _job_ids(world: World) -> list[str]:
    with Session(world.engine) as session:
        return list(session.exec(select(PipelineJob.job_id)).all())


def _recorded_events(world: World, job_id: str) -> int:
    usage = world.chain.usage
    logs = usage.events.JobRecorded().get_logs(
        from_block=0, argument_filters={"jobId": bytes.fromhex(job_id[2:])}
    )
    return len(logs)


def _check_done(world: World, job_id: str, grant_id: bytes, uses: int) -> PipelineJob:
    """A finished job: recorded once, paid once, result for the grantee only."""
    job = world.store.get(job_id)
    assert job.status == JobStatus.DONE, (job.reason, job.detail)
    job_hash = bytes.fromhex(job_id[2:])
    assert world.chain.receipt_of(job_hash).hex() == job.receipt_hash[2:]
    assert _recorded_events(world, job_id) == 1
    escrow = world.chain.escrow_of(world.chain.escrow_id(job_hash, grant_id, job.consumer))
    assert escrow.status == EscrowStatus.CAPTURED and escrow.amount == PRICE * uses
    (record,) = world.store.outbox(job_id, OutboxAction.RECORD)
    assert record.status == OutboxStatus.CONFIRMED and record.tx_hash == job.record_tx
    released = job_result(world.store, world.results, job_id, world.consumer.address)
    assert hash_of_result(released["result"]) == job.result_hash == released["result_hash"]
    assert released["receipt"]["hash"] == job.receipt_hash
    assert released["receipt"]["receipt"]["result_hash"] == job.result_hash
    assert "mean" in released["result"]
    with pytest.raises(JobAccessDeniedError):
        job_result(world.store, world.results, job_id, Account.from_key(OTHER_KEY).address)
    status = job_status(world.store, job_id)
    assert status["status"] == "done" and status["result_available"]
    assert "result" not in status
    return job


def _check_refunded(world: World, job: PipelineJob, grant_id: bytes) -> None:
    """A failed job: nothing recorded, escrow refunded, no result kept."""
    assert job.status == JobStatus.FAILED
    job_hash = bytes.fromhex(job.job_id[2:])
    assert world.chain.receipt_of(job_hash) == bytes(32)
    assert _recorded_events(world, job.job_id) == 0
    escrow_id = world.chain.escrow_id(job_hash, grant_id, job.consumer)
    assert world.chain.escrow_of(escrow_id).status == EscrowStatus.REFUNDED
    assert not world.results.job_dir(job.job_id).exists()
    with pytest.raises(JobNotReadyError, match=str(job.reason)):
        job_result(world.store, world.results, job.job_id, world.consumer.address)
    status = job_status(world.store, job.job_id)
    assert status["reason"] == job.reason and status["result_hash"] is None


def test_worker_runs_paid_jobs_and_refunds_those_that_cannot_run(world: World) -> None:
    dataset = world.add_dataset("ages", 400)
    ok = world.grant(dataset)
    revoked = world.grant(dataset)
    small = world.grant(dataset, epsilon_budget=400_000)
    done = [world.submit([ok]).job_id for _ in range(3)]
    revoked_job = world.submit([revoked]).job_id
    budget_job = world.submit([small]).job_id
    balance = world.w3.eth.get_balance(world.consumer.address)
    world.revoke(revoked)

    world.run_worker("--batched", "--batch-size", "2", "--threads", "3")

    ok_id = world.chain.grant_id(ok)
    roots = set()
    for job_id in done:
        job = _check_done(world, job_id, ok_id, 1)
        assert job.batched
        receipt = json.loads(world.results.read(job_id, "receipt.json"))
        root = receipt["batch"]["root"]
        anchor = world.chain.usage.functions.anchorOf(
            world.executor.address, bytes.fromhex(root[2:])
        ).call()
        assert anchor[0] == world.executor.address
        roots.add(root)
        released = json.dumps(
            job_result(world.store, world.results, job_id, job.consumer)["result"]
        )
        verdict = verify_result(released.encode(), json.dumps(receipt), world.w3)
        assert verdict.verified and verdict.mode == "batch", verdict.message
    assert len(roots) == 2  # batches of 2 and 1
    assert world.chain.grant_state(ok_id) == (3, 1_500_000)

    job = world.store.get(revoked_job)
    assert (job.reason, job.failed_at_status) == ("revoked", "paid")
    _check_refunded(world, job, world.chain.grant_id(revoked))
    job = world.store.get(budget_job)
    assert job.reason is not None and "budget" in job.reason
    assert job.failed_at_status == "authorized"
    _check_refunded(world, job, world.chain.grant_id(small))
    for grant in (revoked, small):
        assert world.chain.grant_state(world.chain.grant_id(grant)) == (0, 0)
    assert world.w3.eth.get_balance(world.consumer.address) == balance + 2 * PRICE

    (path,) = list(world.data_dir.glob(f"vault/*/datasets/ages/usage/{done[0]}.json"))
    data = json.loads(path.read_text())
    assert sum(data["weights"].values()) == 400 and data["dataset_id"] == dataset
    assert not list(world.data_dir.glob(f"vault/*/datasets/ages/usage/{revoked_job}.json"))


def test_submission_refused_leaves_nothing(world: World) -> None:
    dataset = world.add_dataset("ages", 50)
    revoked = world.grant(dataset)
    world.revoke(revoked)
    balance = world.w3.eth.get_balance(world.consumer.address)
    with pytest.raises(JobRefusedError, match="revoked"):
        world.submit([revoked])
    never_issued = world.grant(dataset, issue=False)
    with pytest.raises(JobRefusedError, match="unknown_grant"):
        world.submit([never_issued])
    live = world.grant(dataset)
    with pytest.raises(JobRequestError, match="pay"):
        world.submit([live], pay=PRICE - 1)
    assert _job_ids(world) == []
    assert world.w3.eth.get_balance(world.consumer.address) == balance


def test_unpaid_and_wrongly_paid_jobs_fail_and_what_was_paid_is_refunded(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    dataset = world.add_dataset("ages", 50)
    grant = world.grant(dataset)
    request = build_request(
        consumer=world.consumer.address,
        grants=(grant,),
        algorithm="dp_mean",
        algorithm_hash=grant.algorithm_hash,
        params=default_params(),
        datasets=(DatasetSpec(dataset, 1),),
    )
    now = datetime.now(UTC)
    jobs = {}
    for case in ("unpaid", "underpaid"):
        job_id = "0x" + new_job_id(request).hex()
        world.store.create(
            PipelineJob(
                job_id=job_id,
                consumer=request.consumer,
                status=JobStatus.AWAITING_PAYMENT,
                request_json=json.dumps(request.to_json()),
                created_at=now,
                updated_at=now,
            )
        )
        jobs[case] = job_id
    grant_id = world.chain.grant_id(grant)
    underpaid = bytes.fromhex(jobs["underpaid"][2:])
    world.chain.escrow(world.consumer, underpaid, grant_id, ZERO_ADDRESS, PRICE - 1)

    world.run_worker("--payment-timeout", "0")

    unpaid = world.store.get(jobs["unpaid"])
    assert (unpaid.status, unpaid.reason) == (JobStatus.FAILED, "payment_missing")
    (skipped,) = world.store.outbox(unpaid.job_id, OutboxAction.REFUND)
    assert skipped.status == OutboxStatus.SKIPPED
    wrong = world.store.get(jobs["underpaid"])
    assert (wrong.status, wrong.reason) == (JobStatus.FAILED, "payment_mismatch")
    escrow_id = world.chain.escrow_id(underpaid, grant_id, world.consumer.address)
    escrow = world.chain.escrow_of(escrow_id)
    assert escrow.status == EscrowStatus.REFUNDED and escrow.amount == PRICE - 1
    for job_id in jobs.values():
        assert _recorded_events(world, job_id) == 0
    assert world.chain.grant_state(grant_id) == (0, 0)

"""The job pipeline end to end on a real anvil, SQLite and PostgreSQL, with the real compute
engine, receipts and settlement weights; the worker runs as a real process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.jobs.chain import EscrowStatus
from ledger.jobs.errors import (
    JobAccessDeniedError,
    JobNotReadyError,
    JobRefusedError,
    JobRequestError,
)
from ledger.jobs.queries import job_result, job_status
from ledger.provenance.canonical import result_hash as hash_of_result
from ledger.store.models.jobs import JobStatus, OutboxAction, OutboxStatus, PipelineJob
from sqlmodel import Session, select
from tests.integration.jobs_world import OTHER_KEY, PRICE, World, default_params, make_world


@pytest.fixture()
def world(anvil: Anvil, w3: Web3, tmp_path: Path, database_url: str) -> Iterator[World]:
    made = make_world(w3, anvil.url, tmp_path / "data", database_url)
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


def test_job_runs_to_a_recorded_result_for_the_grantee_only(world: World) -> None:
    dataset = world.add_dataset("ages", 400)
    grant = world.grant(dataset)
    submitted = world.submit([grant])
    job_id = submitted.job_id
    assert world.store.get(job_id).status == JobStatus.AWAITING_PAYMENT
    grant_id = world.chain.grant_id(grant)
    escrow_id = world.chain.escrow_id(bytes.fromhex(job_id[2:]), grant_id, world.consumer.address)
    assert world.chain.escrow_of(escrow_id).status == EscrowStatus.HELD

    world.run_worker()

    job = world.store.get(job_id)
    assert job.status == JobStatus.DONE, (job.reason, job.detail)
    assert world.chain.receipt_of(bytes.fromhex(job_id[2:])).hex() == job.receipt_hash[2:]
    assert _recorded_events(world, job_id) == 1
    escrow = world.chain.escrow_of(escrow_id)
    assert escrow.status == EscrowStatus.CAPTURED and escrow.amount == PRICE
    uses, spent = world.chain.grant_state(grant_id)
    assert (uses, spent) == (1, 500_000)
    (record,) = world.store.outbox(job_id, OutboxAction.RECORD)
    assert record.status == OutboxStatus.CONFIRMED and record.tx_hash == job.record_tx

    released = job_result(world.store, world.results, job_id, world.consumer.address)
    assert hash_of_result(released["result"]) == job.result_hash == released["result_hash"]
    assert released["receipt"]["hash"] == job.receipt_hash
    assert released["receipt"]["receipt"]["result_hash"] == job.result_hash
    assert set(released["result"]) >= {"mean"}
    other = Account.from_key(OTHER_KEY).address
    with pytest.raises(JobAccessDeniedError):
        job_result(world.store, world.results, job_id, other)
    status = job_status(world.store, job_id)
    assert status["status"] == "done" and status["result_available"]
    assert "result" not in status

    weights = world.data_dir.glob(f"vault/*/datasets/ages/usage/{job_id}.json")
    (path,) = list(weights)
    data = json.loads(path.read_text())
    assert sum(data["weights"].values()) == 400 and data["dataset_id"] == dataset


def test_revoked_grant_fails_records_nothing_and_refunds(world: World) -> None:
    dataset = world.add_dataset("ages", 100)
    grant = world.grant(dataset)
    job_id = world.submit([grant]).job_id
    before = world.w3.eth.get_balance(world.consumer.address)
    world.revoke(grant)

    world.run_worker()

    job = world.store.get(job_id)
    assert job.status == JobStatus.FAILED
    assert job.reason == "revoked" and job.failed_at_status == "paid"
    job_hash = bytes.fromhex(job_id[2:])
    assert world.chain.receipt_of(job_hash) == bytes(32)
    escrow_id = world.chain.escrow_id(job_hash, world.chain.grant_id(grant), job.consumer)
    assert world.chain.escrow_of(escrow_id).status == EscrowStatus.REFUNDED
    assert world.w3.eth.get_balance(world.consumer.address) == before + PRICE
    assert world.chain.grant_state(world.chain.grant_id(grant)) == (0, 0)
    assert not world.results.job_dir(job_id).exists()
    with pytest.raises(JobNotReadyError, match="revoked"):
        job_result(world.store, world.results, job_id, world.consumer.address)
    status = job_status(world.store, job_id)
    assert status["reason"] == "revoked" and status["result_hash"] is None


def test_budget_exhausted_fails_and_refunds(world: World) -> None:
    dataset = world.add_dataset("ages", 100)
    grant = world.grant(dataset, epsilon_budget=400_000)
    job_id = world.submit([grant], default_params()).job_id

    world.run_worker()

    job = world.store.get(job_id)
    assert job.status == JobStatus.FAILED
    assert job.reason is not None and "budget" in job.reason
    assert job.failed_at_status == "authorized"
    job_hash = bytes.fromhex(job_id[2:])
    assert world.chain.receipt_of(job_hash) == bytes(32)
    escrow_id = world.chain.escrow_id(job_hash, world.chain.grant_id(grant), job.consumer)
    assert world.chain.escrow_of(escrow_id).status == EscrowStatus.REFUNDED
    assert world.chain.grant_state(world.chain.grant_id(grant)) == (0, 0)


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


def test_batched_mode_anchors_receipts_and_records_each_job(world: World) -> None:
    dataset = world.add_dataset("ages", 100)
    grant = world.grant(dataset)
    jobs = [world.submit([grant]).job_id for _ in range(3)]

    world.run_worker("--batched", "--batch-size", "2")

    roots = set()
    for job_id in jobs:
        job = world.store.get(job_id)
        assert job.status == JobStatus.DONE and job.batched
        assert _recorded_events(world, job_id) == 1
        receipt = json.loads(world.results.read(job_id, "receipt.json"))
        assert receipt["hash"] == job.receipt_hash
        root = receipt["batch"]["root"]
        anchor = world.chain.usage.functions.anchorOf(
            world.executor.address, bytes.fromhex(root[2:])
        ).call()
        assert anchor[0] == world.executor.address
        roots.add(root)
    assert len(roots) == 2
    assert world.chain.grant_state(world.chain.grant_id(grant)) == (3, 1_500_000)

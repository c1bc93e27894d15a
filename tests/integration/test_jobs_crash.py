"""Crash tests: the worker, a real process, kills itself with SIGKILL at every step boundary
(``LEDGER_JOBS_CRASH_AT``) and is restarted; the job still completes (or fails and is
refunded) exactly once: one record, one capture or refund, one result, nothing lost.

One job walks through every boundary: each run resumes where the previous one died and dies at
the next boundary, so every boundary is both crashed at and recovered from.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.jobs.chain import EscrowStatus
from ledger.jobs.crash import CRASH_POINTS
from ledger.jobs.queries import job_result
from ledger.provenance.canonical import result_hash as hash_of_result
from ledger.store.models.jobs import JobStatus, OutboxAction, OutboxStatus
from tests.integration.jobs_world import PRICE, World, make_world, mock_token

# Where each crash leaves the job in the database (the step's effect may be on chain already).
SUCCESS_PATH = [
    ("paid", JobStatus.PAID),
    ("authorized", JobStatus.AUTHORIZED),
    ("computed:written", JobStatus.AUTHORIZED),
    ("computed", JobStatus.COMPUTED),
    ("receipted", JobStatus.RECEIPTED),
    ("record:intended", JobStatus.RECEIPTED),
    ("record:sent", JobStatus.RECEIPTED),
    ("recorded", JobStatus.RECORDED),
    ("anchored", JobStatus.ANCHORED),
    ("done", JobStatus.DONE),
]
FAILURE_PATH = [
    ("refunding", JobStatus.REFUNDING),
    ("refund:sent", JobStatus.REFUNDING),
    ("failed", JobStatus.FAILED),
]


@pytest.fixture()
def world(anvil: Anvil, w3: Web3, tmp_path: Path) -> Iterator[World]:
    made = make_world(w3, anvil.url, tmp_path / "data", f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        yield made
    finally:
        made.engine.dispose()


@pytest.fixture()
def any_world(anvil: Anvil, w3: Web3, tmp_path: Path, database_url: str) -> Iterator[World]:
    """A world on SQLite and on PostgreSQL."""
    made = make_world(w3, anvil.url, tmp_path / "data", database_url)
    try:
        yield made
    finally:
        made.engine.dispose()


def _events(world: World, event: str, **filters: bytes) -> int:
    contract = world.chain.usage if event == "JobRecorded" else world.chain.vault
    logs = contract.events[event]().get_logs(from_block=0, argument_filters=filters)
    return len(logs)


def test_every_boundary_is_covered() -> None:
    covered = {p for p, _ in SUCCESS_PATH} | {p for p, _ in FAILURE_PATH}
    assert covered == set(CRASH_POINTS)


def test_crash_at_every_step_of_a_job_then_restart_completes_it_exactly_once(
    world: World,
) -> None:
    dataset = world.add_dataset("ages", 300)
    grant = world.grant(dataset)
    job_id = world.submit([grant]).job_id
    job_hash = bytes.fromhex(job_id[2:])
    grant_id = world.chain.grant_id(grant)
    escrow_id = world.chain.escrow_id(job_hash, grant_id, world.consumer.address)
    first_result = b""

    for point, status in SUCCESS_PATH:
        world.run_worker(crash_at=point)
        job = world.store.get(job_id)
        assert job.status == status, point
        landed = world.chain.receipt_of(job_hash)
        if point == "computed:written":
            first_result = world.results.read(job_id)  # written, not yet in the database
            assert job.result_hash is None
        if point == "record:intended":
            assert landed == bytes(32)
            (entry,) = world.store.outbox(job_id, OutboxAction.RECORD)
            assert entry.status == OutboxStatus.INTENDED
        if point == "record:sent":
            # On chain, not yet in the database: the restart must find it, not resend it.
            assert landed.hex() == job.receipt_hash[2:]
            (entry,) = world.store.outbox(job_id, OutboxAction.RECORD)
            assert entry.status == OutboxStatus.INTENDED
        escrow = world.chain.escrow_of(escrow_id).status
        recorded = status in (JobStatus.RECORDED, JobStatus.ANCHORED, JobStatus.DONE)
        assert escrow == (
            EscrowStatus.CAPTURED if recorded or point == "record:sent" else EscrowStatus.HELD
        )

    world.run_worker()

    job = world.store.get(job_id)
    assert job.status == JobStatus.DONE
    assert world.chain.receipt_of(job_hash).hex() == job.receipt_hash[2:]
    assert _events(world, "JobRecorded", jobId=job_hash) == 1
    assert _events(world, "Escrowed", jobId=job_hash) == 1
    assert _events(world, "Captured", escrowId=escrow_id) == 1
    assert world.chain.escrow_of(escrow_id).amount == PRICE
    assert world.chain.grant_state(grant_id) == (1, 500_000)
    released = job_result(world.store, world.results, job_id, world.consumer.address)
    assert hash_of_result(released["result"]) == job.result_hash
    assert released["receipt"]["receipt"]["result_hash"] == job.result_hash
    assert first_result  # the result written before the crash was replaced, never half-kept
    leftovers = [p.name for p in world.results.job_dir(job_id).iterdir()]
    assert sorted(leftovers) == ["receipt.json", "result.json"]


def test_crash_while_failing_then_restart_refunds_exactly_once(world: World) -> None:
    dataset = world.add_dataset("ages", 100)
    grant = world.grant(dataset)
    job_id = world.submit([grant]).job_id
    job_hash = bytes.fromhex(job_id[2:])
    escrow_id = world.chain.escrow_id(job_hash, world.chain.grant_id(grant), world.consumer.address)
    balance = world.w3.eth.get_balance(world.consumer.address)
    world.revoke(grant)

    for point, status in FAILURE_PATH:
        world.run_worker(crash_at=point)
        assert world.store.get(job_id).status == status, point
        refunded = point != "refunding"
        assert (world.chain.escrow_of(escrow_id).status == EscrowStatus.REFUNDED) == refunded

    world.run_worker()

    job = world.store.get(job_id)
    assert job.status == JobStatus.FAILED and job.reason == "revoked"
    assert _events(world, "Refunded", escrowId=escrow_id) == 1
    assert _events(world, "JobRecorded", jobId=job_hash) == 0
    assert world.w3.eth.get_balance(world.consumer.address) == balance + PRICE
    (refund,) = world.store.outbox(job_id, OutboxAction.REFUND)
    assert refund.status == OutboxStatus.CONFIRMED


def test_record_landed_before_a_crash_stands_even_if_the_grant_is_revoked_after(
    any_world: World,
) -> None:
    world = any_world
    dataset = world.add_dataset("ages", 100)
    grant = world.grant(dataset)
    job_id = world.submit([grant]).job_id
    job_hash = bytes.fromhex(job_id[2:])

    world.run_worker(crash_at="record:sent")
    world.revoke(grant)
    world.run_worker()

    job = world.store.get(job_id)
    assert job.status == JobStatus.DONE
    assert _events(world, "JobRecorded", jobId=job_hash) == 1
    escrow_id = world.chain.escrow_id(job_hash, world.chain.grant_id(grant), job.consumer)
    assert world.chain.escrow_of(escrow_id).status == EscrowStatus.CAPTURED


def test_a_recorded_job_never_fails_it_waits_for_the_fault_to_clear(world: World) -> None:
    dataset = world.add_dataset("ages", 100)
    grant = world.grant(dataset)
    job_id = world.submit([grant]).job_id
    world.run_worker(crash_at="anchored")
    (version_dir,) = list(world.data_dir.glob("vault/*/datasets/ages/v1"))
    hidden = version_dir.with_name("v1-away")
    version_dir.rename(hidden)  # the weights step cannot read the dataset now

    world.run_worker(exit_code=1)
    job = world.store.get(job_id)
    assert job.status == JobStatus.ANCHORED and job.reason is None
    escrow_id = world.chain.escrow_id(
        bytes.fromhex(job_id[2:]), world.chain.grant_id(grant), job.consumer
    )
    assert world.chain.escrow_of(escrow_id).status == EscrowStatus.CAPTURED

    hidden.rename(version_dir)
    world.run_worker()
    assert world.store.get(job_id).status == JobStatus.DONE
    assert _events(world, "JobRecorded", jobId=bytes.fromhex(job_id[2:])) == 1


def test_a_job_paid_in_an_erc20_token_is_captured_once(world: World) -> None:
    token = mock_token(world)
    amount = 5 * 10**18
    world.owner.send(token.functions.mint(world.consumer.address, amount))
    dataset = world.add_dataset("ages", 100)
    grant = world.grant(dataset, payment_token=token.address, price_per_use=amount)
    job_id = world.submit([grant]).job_id
    vault = world.chain.vault.address
    assert token.functions.balanceOf(vault).call() == amount

    world.run_worker(crash_at="record:sent")
    world.run_worker()

    job = world.store.get(job_id)
    assert job.status == JobStatus.DONE
    escrow_id = world.chain.escrow_id(
        bytes.fromhex(job_id[2:]), world.chain.grant_id(grant), job.consumer
    )
    escrow = world.chain.escrow_of(escrow_id)
    assert (escrow.status, escrow.token, escrow.amount) == (
        EscrowStatus.CAPTURED,
        token.address,
        amount,
    )
    assert _events(world, "Captured", escrowId=escrow_id) == 1
    assert token.functions.balanceOf(world.consumer.address).call() == 0
    assert (
        world.chain.vault.functions.revenueOf(dataset, token.address).call() == amount * 975 // 1000
    )

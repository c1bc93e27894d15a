"""Several executors: worker processes with their own keys (`WorkerPool`), the rule that a job
is recorded and anchored by the key that signed its receipt, and the pipeline's direct chain
reads answering as the web3 path does. Real anvil, SQLite, real processes."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.client import call
from ledger.errors import ContractRevert
from ledger.jobs.chain import EscrowStatus
from ledger.jobs.errors import JobShareError
from ledger.jobs.pipeline import PipelineOptions
from ledger.jobs.queries import job_result
from ledger.jobs.workers import WorkerPool, WorkerPoolError
from ledger.provenance.verify import verify_result
from ledger.rights.check import JobRequest, check_onchain
from ledger.settings import load_settings
from ledger.store.models.jobs import JobStatus, OutboxAction
from tests.integration.jobs_world import EXECUTOR_KEY, OTHER_KEY, World, make_world

OTHER = Account.from_key(OTHER_KEY).address


@pytest.fixture()
def world(anvil: Anvil, w3: Web3, tmp_path: Path) -> Iterator[World]:
    made = make_world(w3, anvil.url, tmp_path / "data", f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        yield made
    finally:
        made.engine.dispose()


def _allow_other(world: World, dataset_id: int) -> None:
    registry = world.chain.registry
    world.owner.send(registry.functions.setExecutor(dataset_id, OTHER, True))


def _receipt_of(world: World, job_id: str) -> dict[str, object]:
    return dict(json.loads(world.results.read(job_id, "receipt.json")))


def _verify(world: World, job_id: str) -> str:
    job = world.store.get(job_id)
    released = json.dumps(job_result(world.store, world.results, job_id, job.consumer)["result"])
    receipt = world.results.read(job_id, "receipt.json").decode()
    verdict = verify_result(released.encode(), receipt, world.w3)
    assert verdict.verified, verdict.message
    return verdict.mode


def test_worker_pool_splits_jobs_between_executors_and_each_verifies(world: World) -> None:
    dataset = world.add_dataset("ages", 300)
    _allow_other(world, dataset)
    grant = world.grant(dataset, max_uses=20, epsilon_budget=20_000_000)
    jobs = [world.submit([grant]).job_id for _ in range(6)]
    settings = load_settings(
        data_dir=world.data_dir,
        rpc_url=world.url,
        database_url=world.database_url,
        executor_key=EXECUTOR_KEY,
    )
    with WorkerPool(
        settings, [EXECUTOR_KEY, OTHER_KEY], PipelineOptions(batched=True), threads=2
    ) as pool:
        assert pool.executors == [world.executor.address, OTHER]
        assert pool.run_pending(force_anchor=True) > 0
        assert pool.run_pending(force_anchor=True) == 0  # nothing left: each step ran once
    for job_id in jobs:
        job = world.store.get(job_id)
        assert job.status == JobStatus.DONE, (job.reason, job.detail)
        receipt = _receipt_of(world, job_id)
        expected = pool.executors[int(job_id[2:], 16) % 2]
        assert receipt["receipt"]["executor"] == expected  # type: ignore[index]
        assert _verify(world, job_id) == "batch"
    assert world.chain.grant_state(world.chain.grant_id(grant))[0] == len(jobs)


def test_a_job_receipted_by_one_key_is_left_alone_by_another(world: World) -> None:
    dataset = world.add_dataset("ages", 300)
    _allow_other(world, dataset)
    job_id = world.submit([world.grant(dataset)]).job_id
    world.run_worker(crash_at="receipted")
    assert world.store.get(job_id).status == JobStatus.RECEIPTED

    world.run_worker(key=OTHER_KEY)
    job = world.store.get(job_id)
    assert job.status == JobStatus.RECEIPTED
    assert world.chain.receipt_of(bytes.fromhex(job_id[2:])) == bytes(32)
    assert world.store.outbox(job_id, OutboxAction.RECORD) == []

    world.run_worker()
    job = world.store.get(job_id)
    assert job.status == JobStatus.DONE, (job.reason, job.detail)
    assert _receipt_of(world, job_id)["receipt"]["executor"] == world.executor.address  # type: ignore[index]
    assert _verify(world, job_id) == "job"


def test_worker_share_and_keys_are_checked(world: World) -> None:
    settings = load_settings(
        data_dir=world.data_dir,
        rpc_url=world.url,
        database_url=world.database_url,
        executor_key=EXECUTOR_KEY,
    )
    with pytest.raises(WorkerPoolError, match="64 hex digits") as bad:
        WorkerPool(settings, [EXECUTOR_KEY, "0x1234"], PipelineOptions())
    assert bad.value.index == 1 and "0x1234" not in str(bad.value)
    with pytest.raises(WorkerPoolError, match="distinct"):
        WorkerPool(settings, [OTHER_KEY, OTHER_KEY.upper().replace("0X", "0x")], PipelineOptions())
    with pytest.raises(WorkerPoolError, match="no executor key"):
        WorkerPool(settings, [], PipelineOptions())
    error = WorkerPoolError(1, "the process died")
    assert pickle.loads(pickle.dumps(error)).index == 1
    from ledger.jobs.service import open_context, open_pipeline

    context = open_context(settings)
    try:
        pipeline = open_pipeline(context, PipelineOptions(), with_weights=False)
        for share in ((2, 2), (0, 0), (-1, 3)):
            with pytest.raises(JobShareError, match="share") as caught:
                pipeline.run_pending(share=share)
            assert isinstance(caught.value, ValueError)
            assert pickle.loads(pickle.dumps(caught.value)).count == share[1]
    finally:
        context.close()


def test_direct_reads_answer_as_the_web3_path(world: World) -> None:
    chain = world.chain
    dataset = world.add_dataset("ages", 300)
    grant = world.grant(dataset)
    revoked = world.grant(dataset)
    world.revoke(revoked)
    job_id = bytes.fromhex(world.submit([grant]).job_id[2:])
    grant_id = chain.grant_id(grant)

    assert chain.receipt_of(job_id) == bytes(32)
    escrow = chain.escrow_of(chain.escrow_id(job_id, grant_id, world.consumer.address))
    assert escrow.status == EscrowStatus.HELD and escrow.payer == world.consumer.address
    missing = chain.escrow_of(chain.escrow_id(job_id, bytes(32), world.consumer.address))
    assert missing.status == EscrowStatus.NONE
    assert chain.head_version(dataset) == 1
    assert chain.grant_state(grant_id) == (0, 0)
    assert chain.commitment_of(dataset, 1) == bytes(
        call(chain.registry.functions.versionOf(dataset, 1))[0]
    )
    assert abs(chain.now() - world.w3.eth.get_block("latest")["timestamp"]) <= 1
    # A revert takes the web3 path: the same typed error.
    with pytest.raises(ContractRevert) as direct:
        chain.head_version(10_000)
    with pytest.raises(ContractRevert) as web3_path:
        call(chain.registry.functions.headOf(10_000))
    assert direct.value.error == web3_path.value.error == "DataRegistryUnknownDataset"

    for terms, allowed in ((grant, True), (revoked, False)):
        job = JobRequest(
            dataset_id=dataset,
            consumer=world.consumer.address,
            algorithm_hash=terms.algorithm_hash,
            purpose=terms.purpose,
            uses=1,
            epsilon=0,
            executor=world.executor.address,
            at=chain.now(),
        )
        decision = chain.check(terms, job)
        assert decision == check_onchain(chain.grants, chain.registry, terms, job)
        assert decision.allowed is allowed
        batched, spent = chain.check_with_state(terms, job)
        assert batched == decision
        assert spent == (chain.grant_state(chain.grant_id(terms))[1] if allowed else 0)
    other = JobRequest(
        dataset_id=dataset,
        consumer=world.consumer.address,
        algorithm_hash=grant.algorithm_hash,
        purpose=grant.purpose,
        uses=1,
        epsilon=0,
        executor=OTHER,
        at=chain.now(),
    )
    decision = chain.check(grant, other)
    assert not decision.allowed and decision.reason is not None
    assert decision.reason.value == "executor_not_allowed"


def test_worker_cli_refuses_an_extra_executor_key_that_is_not_set(world: World) -> None:
    proc = world.cli(
        "job", "worker", "--once", "--extra-executor-key-env", "LEDGER_TEST_NO_SUCH_KEY", ok=False
    )
    output = proc.stdout + proc.stderr
    assert "LEDGER_TEST_NO_SUCH_KEY (executor key)" in output
    assert "64 hex digits" in output

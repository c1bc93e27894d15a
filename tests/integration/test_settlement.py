"""Settlement against a real anvil and real databases: captured revenue set up with the contracts,
indexed, weighted by vault files written here, published, claimed; reruns, crashes and errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.compiler import compile_contracts, foundry_settings
from ledger.chain.deploy import Deployment
from ledger.chain.sender import TxSender
from ledger.rights.typed_data import grant_as_tuple
from ledger.settings import ANVIL_DEV_KEYS
from ledger.settlement import ETH, Settlement, VaultIndex, record_weights
from ledger.settlement.errors import (
    EpochNotFinalError,
    EpochRangeError,
    NothingToClaimError,
    UnknownEpochError,
    WeightsError,
)
from ledger.store.models.settlement import EpochStatus, SettlementEntitlement, SettlementEpoch
from tests.integration.chain import (
    FEE_BPS,
    LedgerContracts,
    dev_accounts,
    local_account,
    rpc,
    transact,
)
from tests.integration.indexing import (
    ALGO,
    PRICE,
    PURPOSE,
    deploy_for_index,
    make_grant,
    open_index,
    register,
)

BPS = 10_000


def pseudonym(name: str) -> str:
    return "0x" + keccak(text=f"contributor:{name}").hex()


@dataclass
class World:
    """The chain after the module's setup: two datasets of one owner, paid jobs recorded."""

    w3: Web3
    deployment: Deployment
    ledger: LedgerContracts
    owner: LocalAccount
    consumer: ChecksumAddress
    executor: ChecksumAddress
    payees: dict[str, ChecksumAddress]
    datasets: dict[str, int]
    grants: dict[str, Any]
    jobs: list[tuple[str, dict[str, dict[str, int]]]]
    snapshot: str
    nonce: int = 10


def record_job(world: World, label: str, uses: dict[str, int]) -> str:
    """Escrow and record a job using the grants named in `uses` (dataset name -> uses)."""
    vault, usage = world.ledger.vault, world.ledger.usage
    job = keccak(text=f"job:{label}")
    grant_uses = []
    for name, count in uses.items():
        grant = world.grants[name]
        grant_id = world.ledger.grants.functions.grantId(grant_as_tuple(grant)).call()
        fn = vault.functions.escrow(job, grant_id, ETH, PRICE * count)
        transact(fn, world.consumer, value=PRICE * count)
        grant_uses.append((grant_as_tuple(grant), 1, count, 0))
    job_tuple = (job, world.consumer, ALGO, PURPOSE, keccak(text=f"receipt:{label}"))
    transact(usage.functions.recordUsage(job_tuple, grant_uses), world.executor)
    return "0x" + job.hex()


def build_world(w3: Web3, deployment: Deployment, ledger: LedgerContracts) -> World:
    """Two datasets of one owner (70 % and 60 % owner shares), one grant each, and two paid
    jobs: job a uses dataset one once, job b uses dataset one twice and dataset two once."""
    owner = local_account(w3, "settle:owner")
    accounts = dev_accounts(w3)
    consumer, executor = accounts[2], accounts[3]
    payees = {
        "alice": local_account(w3, "settle:alice").address,
        "bob": local_account(w3, "settle:bob").address,
        "carol": local_account(w3, "settle:carol").address,
    }
    datasets = {"one": register(ledger, owner.address, "one")}
    datasets["two"] = register(ledger, owner.address, "two")
    transact(ledger.registry.functions.setRevenueSplit(datasets["two"], 6000), owner.address)
    grants = {}
    for nonce, name in enumerate(("one", "two"), start=1):
        fn = ledger.registry.functions.setExecutor(datasets[name], executor, True)
        transact(fn, owner.address)
        grants[name] = make_grant(w3, datasets[name], owner.address, consumer, nonce)
        transact(ledger.grants.functions.issue(grant_as_tuple(grants[name])), owner.address)
    world = World(
        w3, deployment, ledger, owner, consumer, executor, payees, datasets, grants, [], ""
    )
    job_a = record_job(world, "a", {"one": 1})
    job_b = record_job(world, "b", {"one": 2, "two": 1})
    world.jobs = [
        (job_a, {"one": {pseudonym("alice"): 2, pseudonym("bob"): 1}}),
        (
            job_b,
            {
                "one": {pseudonym("alice"): 1, pseudonym("carol"): 2},
                "two": {pseudonym("bob"): 5},
            },
        ),
    ]
    rpc(w3, "evm_mine")
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployment, ledger = deploy_for_index(w3, tmp_path_factory.mktemp("deployments"))
        world = build_world(w3, deployment, ledger)
        world.snapshot = rpc(w3, "evm_snapshot")
        yield world


@pytest.fixture
def fresh(world: World) -> Iterator[World]:
    """The world as the module set it up (the chain reverted after each test)."""
    yield world
    assert rpc(world.w3, "evm_revert", world.snapshot)
    world.snapshot = rpc(world.w3, "evm_snapshot")


def write_vault(root: Path, world: World, *, carol_payout: bool = False, version: int = 1) -> Path:
    """The owner's vault as the vault module lays it out: registration, contributor tables and
    the weights of every job recorded so far."""
    base = root / "vault" / world.owner.address / "datasets"
    for name, dataset_id in world.datasets.items():
        directory = base / name
        (directory / f"v{version}").mkdir(parents=True, exist_ok=True)
        (directory / "registration.json").write_text(f'{{"dataset_id": {dataset_id}}}')
        people = ["alice", "bob", "carol"]
        payouts = [
            world.payees["alice"],
            world.payees["bob"],
            world.payees["carol"] if carol_payout else "",
        ]
        table = pa.table(
            {
                "contributor_id": [pseudonym(p) for p in people],
                "kind": ["patient"] * 3,
                "payout": payouts,
                "rows": [10, 10, 10],
            }
        )
        pq.write_table(table, directory / f"v{version}" / "contributors.parquet")
    for job, by_dataset in world.jobs:
        for name, weights in by_dataset.items():
            record_weights(
                base / name,
                job_id=job,
                dataset_id=world.datasets[name],
                version=1,
                weights=weights,
            )
    return root


def settlement(world: World, data_dir: Path, engine: Engine) -> Settlement:
    return Settlement(
        world.w3,
        world.deployment,
        engine,
        vaults=VaultIndex(data_dir),
        out_dir=data_dir / "settlement",
        sender=TxSender(world.w3, ANVIL_DEV_KEYS[0]),
    )


def index(world: World, url: str) -> Engine:
    indexer, engine = open_index(world.w3, world.deployment, url)
    indexer.run_once()
    return engine


def expected_entitlements(world: World, *, carol_paid: bool) -> tuple[dict[str, int], int]:
    """What each payee is due after the module's two jobs, by hand: net = price - 2.5 % fee;
    the owner takes 70 % (dataset one) or 60 % (dataset two); the pool goes by rows used."""
    net = PRICE - PRICE * FEE_BPS // BPS
    due: dict[str, int] = {world.owner.address: 0}
    for payee in world.payees.values():
        due[payee] = 0
    held = 0

    def split(units: int, owner_bps: int, weights: dict[str, int]) -> None:
        nonlocal held
        amount = net * units
        owner = amount * owner_bps // BPS
        due[world.owner.address] += owner
        pool = amount - owner
        whole = sum(weights.values())
        for person, rows in weights.items():
            share = pool * rows // whole
            assert pool * rows % whole == 0, "the test's numbers divide exactly"
            if person == "carol" and not carol_paid:
                held += share
            else:
                due[world.payees[person]] += share

    split(1, 7000, {"alice": 2, "bob": 1})
    split(2, 7000, {"alice": 1, "carol": 2})
    split(1, 6000, {"bob": 5})
    return {a: v for a, v in due.items() if v}, held


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_epoch_published_claimed_and_rerun_is_a_no_op(
    fresh: World, database_url: str, tmp_path: Path
) -> None:
    world = fresh
    data_dir = write_vault(tmp_path, world)
    engine = index(world, database_url)
    service = settlement(world, data_dir, engine)

    (outcome,) = service.run(ETH)
    due, held = expected_entitlements(world, carol_paid=False)
    assert outcome.sent and outcome.status == EpochStatus.PUBLISHED and outcome.epoch == 1
    assert outcome.total == sum(due.values())
    assert outcome.held_total == held > 0
    assert outcome.distributable == outcome.total + held == 4 * (PRICE - PRICE * FEE_BPS // BPS)
    distribution = world.ledger.vault.functions.distributionOf(ETH).call()
    assert "0x" + distribution[0].hex() == outcome.root
    assert distribution[1] == outcome.total and distribution[3] == 1
    with Session(engine) as session:
        rows = session.exec(select(SettlementEntitlement)).all()
    assert {r.account: r.cumulative for r in rows} == due

    nonce = world.w3.eth.get_transaction_count(service.sender.address)  # type: ignore[union-attr]
    assert service.run(ETH) == []
    assert world.w3.eth.get_transaction_count(service.sender.address) == nonce  # type: ignore[union-attr]
    (again,) = service.run(ETH, epoch=1)
    assert not again.sent and again.root == outcome.root

    alice = world.payees["alice"]
    proof = service.proof(ETH, alice)
    assert proof.cumulative == due[alice] and proof.claimed == 0 and proof.proof
    before = world.w3.eth.get_balance(alice)
    claimer = TxSender(world.w3, ANVIL_DEV_KEYS[2])  # anyone may send; alice is paid
    claimed = service.claim(ETH, alice, claimer)
    assert claimed.amount == due[alice]
    assert world.w3.eth.get_balance(alice) - before == due[alice]
    with pytest.raises(NothingToClaimError, match="nothing to claim") as info:
        service.claim(ETH, alice, claimer)
    assert info.value.claimed == due[alice]

    report = service.verify(ETH, 1)
    assert report.ok and report.differences == []
    engine.dispose()


def test_second_epoch_releases_held_and_pays_the_difference(fresh: World, tmp_path: Path) -> None:
    world = fresh
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    data_dir = write_vault(tmp_path, world)
    engine = index(world, url)
    service = settlement(world, data_dir, engine)
    (first,) = service.run(ETH)
    carol = world.payees["carol"]
    first_due, held = expected_entitlements(world, carol_paid=False)
    assert carol not in first_due

    # Carol names a payout address in version 2 of both datasets; a new job runs on one.
    for name, dataset_id in world.datasets.items():
        version = tuple(keccak(text=f"{name}-v2:{p}") for p in ("r", "c", "s", "m"))
        fn = world.ledger.registry.functions.publishVersion(dataset_id, version, "ipfs://v2")
        transact(fn, world.owner.address)
    job_c = record_job(world, "c", {"one": 1})
    world.jobs.append((job_c, {"one": {pseudonym("bob"): 1}}))
    write_vault(tmp_path, world, carol_payout=True, version=2)
    rpc(world.w3, "evm_mine")
    index(world, url).dispose()

    (second,) = service.run(ETH)
    assert second.epoch == 2 and second.from_block == first.to_block + 1
    assert second.held_total == 0
    net = PRICE - PRICE * FEE_BPS // BPS
    assert second.total == first.total + held + net
    proof = service.proof(ETH, carol)
    assert proof.epoch == 2 and proof.cumulative == held
    before = world.w3.eth.get_balance(carol)
    service.claim(ETH, carol, TxSender(world.w3, ANVIL_DEV_KEYS[2]))
    assert world.w3.eth.get_balance(carol) - before == held
    assert service.verify(ETH, 2).ok and service.verify(ETH, 1).ok
    world.jobs.pop()
    engine.dispose()


def test_crash_between_store_and_send_then_rerun_publishes_once(
    fresh: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = fresh
    data_dir = write_vault(tmp_path, world)
    engine = index(world, f"sqlite:///{tmp_path / 'ledger.db'}")
    crashing = settlement(world, data_dir, engine)

    def crash(*_: object) -> None:
        raise RuntimeError("killed before sending")

    monkeypatch.setattr(crashing.publisher, "_send", crash)
    with pytest.raises(RuntimeError, match="killed"):
        crashing.run(ETH)
    assert crashing.epoch(ETH, 1).status == EpochStatus.COMPUTED
    assert world.ledger.vault.functions.distributionOf(ETH).call()[3] == 0

    (outcome,) = settlement(world, data_dir, engine).run(ETH)
    assert outcome.sent and outcome.epoch == 1
    assert world.ledger.vault.functions.distributionOf(ETH).call()[3] == 1
    engine.dispose()


def test_crash_after_send_before_marking_then_rerun_sends_nothing(
    fresh: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = fresh
    data_dir = write_vault(tmp_path, world)
    engine = index(world, f"sqlite:///{tmp_path / 'ledger.db'}")
    crashing = settlement(world, data_dir, engine)

    def crash(*_: object) -> None:
        raise RuntimeError("killed after sending")

    monkeypatch.setattr(crashing.publisher, "_mark_published", crash)
    with pytest.raises(RuntimeError, match="killed"):
        crashing.run(ETH)
    assert world.ledger.vault.functions.distributionOf(ETH).call()[3] == 1
    assert crashing.epoch(ETH, 1).status == EpochStatus.COMPUTED

    rerun = settlement(world, data_dir, engine)
    settler = rerun.sender.address  # type: ignore[union-attr]
    nonce = world.w3.eth.get_transaction_count(settler)
    (outcome,) = rerun.run(ETH)
    assert not outcome.sent and outcome.status == EpochStatus.PUBLISHED
    assert outcome.tx_hash is not None and outcome.tx_hash.startswith("0x")
    assert world.w3.eth.get_transaction_count(settler) == nonce
    assert world.ledger.vault.functions.distributionOf(ETH).call()[3] == 1
    engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_bad_epochs_and_missing_weights_publish_nothing(
    fresh: World, database_url: str, tmp_path: Path
) -> None:
    world = fresh
    data_dir = write_vault(tmp_path, world)
    job_a = world.jobs[0][0]
    weights = data_dir / "vault" / world.owner.address / "datasets" / "one" / "usage"
    (weights / f"{job_a}.json").rename(tmp_path / "aside.json")
    engine = index(world, database_url)
    service = settlement(world, data_dir, engine)

    def nothing_stored() -> None:
        with Session(engine) as session:
            assert session.exec(select(func.count()).select_from(SettlementEpoch)).one() == 0
            count = select(func.count()).select_from(SettlementEntitlement)
            assert session.exec(count).one() == 0
        assert world.ledger.vault.functions.distributionOf(ETH).call()[3] == 0
        assert not (data_dir / "settlement").exists()

    with pytest.raises(WeightsError, match=f"weights of job {job_a}.*no weights file"):
        service.run(ETH)
    nothing_stored()
    (tmp_path / "aside.json").rename(weights / f"{job_a}.json")

    head = world.w3.eth.block_number
    with pytest.raises(EpochNotFinalError, match=f"to_block {head + 5} is not final"):
        service.run(ETH, to_block=head + 5)
    with pytest.raises(UnknownEpochError, match="the next epoch to compute is 1"):
        service.run(ETH, epoch=3)
    with pytest.raises(EpochRangeError, match="from_block"):
        service.run(ETH, from_block=world.deployment.deploy_block + 1)
    with pytest.raises(UnknownEpochError, match="unknown epoch"):
        service.verify(ETH, 1)
    nothing_stored()

    (first,) = service.run(ETH)
    overlap = f"overlaps epoch 1 .*it must be {first.to_block + 1}"
    with pytest.raises(EpochRangeError, match=overlap):
        service.run(ETH, from_block=first.to_block)
    with pytest.raises(EpochRangeError, match="an epoch's range never changes"):
        service.run(ETH, epoch=1, to_block=first.to_block - 1)
    assert world.ledger.vault.functions.distributionOf(ETH).call()[3] == 1
    engine.dispose()


def test_verify_reports_a_mismatch_when_the_vault_weights_changed(
    fresh: World, tmp_path: Path
) -> None:
    world = fresh
    data_dir = write_vault(tmp_path, world)
    engine = index(world, f"sqlite:///{tmp_path / 'ledger.db'}")
    service = settlement(world, data_dir, engine)
    (outcome,) = service.run(ETH)
    assert service.verify(ETH, 1).ok

    # Someone edits a recorded weights file behind the store's back: bob now "used" 2 rows.
    job_a = world.jobs[0][0]
    path = data_dir / "vault" / world.owner.address / "datasets" / "one" / "usage" / f"{job_a}.json"
    edited = json.loads(path.read_text())
    edited["weights"][pseudonym("bob")] = 2
    path.write_text(json.dumps(edited))

    report = service.verify(ETH, 1)
    assert not report.ok
    assert report.published_root == report.stored_root == outcome.root
    assert report.recomputed_root != outcome.root
    changed = {d["account"] for d in report.differences}
    assert changed == {world.payees["alice"], world.payees["bob"]}
    assert report.as_dict()["ok"] is False
    engine.dispose()


def mock_token_artifact() -> tuple[Any, str]:
    """ABI and bytecode of ``MockToken`` (contracts/test/utils/Mocks.sol), compiled once and
    cached under tests/artifacts/ (not committed), keyed by the source and the settings."""
    root = Path(__file__).resolve().parents[2]
    source = root / "contracts" / "test" / "utils" / "Mocks.sol"
    config = foundry_settings(root / "foundry.toml")
    key = hashlib.sha256(source.read_bytes() + json.dumps(config, sort_keys=True).encode())
    cache = root / "tests" / "artifacts" / f"MockToken-{key.hexdigest()[:16]}.json"
    if not cache.exists():
        result = compile_contracts([source], root=root, settings=config, solc=root / "scripts/solc")
        token = result.contracts["MockToken"]
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"abi": token.abi, "bytecode": token.bytecode}))
    data = json.loads(cache.read_text())
    return data["abi"], data["bytecode"]


def test_erc20_revenue_is_settled_and_claimed_in_the_token(fresh: World, tmp_path: Path) -> None:
    world = fresh
    w3 = world.w3
    abi, bytecode = mock_token_artifact()
    factory = w3.eth.contract(abi=abi, bytecode=bytecode)
    tx = factory.constructor().transact({"from": world.consumer})
    token = w3.eth.contract(
        address=w3.eth.wait_for_transaction_receipt(tx)["contractAddress"], abi=abi
    )
    price = 3 * 10**18
    transact(token.functions.mint(world.consumer, price), world.consumer)
    transact(token.functions.approve(world.ledger.vault.address, price), world.consumer)
    grant = make_grant(w3, world.datasets["one"], world.owner.address, world.consumer, 7)
    grant = replace(grant, payment_token=token.address, price_per_use=price)
    transact(world.ledger.grants.functions.issue(grant_as_tuple(grant)), world.owner.address)
    world.grants["erc20"] = grant
    job = keccak(text="job:erc20")
    grant_id = world.ledger.grants.functions.grantId(grant_as_tuple(grant)).call()
    escrow = world.ledger.vault.functions.escrow(job, grant_id, token.address, price)
    transact(escrow, world.consumer)
    job_tuple = (job, world.consumer, ALGO, PURPOSE, keccak(text="receipt:erc20"))
    record = world.ledger.usage.functions.recordUsage(job_tuple, [(grant_as_tuple(grant), 1, 1, 0)])
    transact(record, world.executor)
    rpc(w3, "evm_mine")
    world.jobs.append(("0x" + job.hex(), {"one": {pseudonym("alice"): 1, pseudonym("carol"): 1}}))
    try:
        data_dir = write_vault(tmp_path, world)
    finally:
        world.jobs.pop()
        del world.grants["erc20"]
    engine = index(world, f"sqlite:///{tmp_path / 'ledger.db'}")
    service = settlement(world, data_dir, engine)
    assert token.address in service.tokens()

    (outcome,) = service.run(token.address)
    net = price - price * FEE_BPS // BPS
    owner = net * 7000 // BPS
    half = (net - owner) // 2
    assert outcome.epoch == 1 and outcome.distributable == net
    assert outcome.total == owner + half and outcome.held_total == net - owner - half
    assert world.ledger.vault.functions.distributionOf(ETH).call()[3] == 0

    alice = world.payees["alice"]
    claimed = service.claim(token.address, alice, TxSender(w3, ANVIL_DEV_KEYS[2]))
    assert claimed.amount == half == token.functions.balanceOf(alice).call()
    engine.dispose()

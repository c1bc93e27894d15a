"""Helpers for indexer tests: a deployment made the way ``ledger deploy`` makes it, a scenario
that sends one of every kind of transaction, and ways to read the index back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from sqlalchemy import Engine, select
from sqlmodel import SQLModel
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger.chain.deploy import Deployment, contracts_of, deploy
from ledger.chain.sender import TxSender
from ledger.indexer import Indexer, IndexerOptions, ProgressCallback
from ledger.indexer.state import table_of
from ledger.rights.typed_data import Grant, grant_as_tuple, grant_typed_data
from ledger.settings import ANVIL_DEV_KEYS
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade
from ledger.store.models import DERIVED_TABLES, ChainEvent
from tests.integration.chain import LedgerContracts, dev_accounts, local_account, rpc, transact

__all__ = [
    "ALGO",
    "PURPOSE",
    "PRICE",
    "Scenario",
    "ZERO_ADDRESS",
    "deploy_for_index",
    "drive_every_event",
    "index_rows",
    "make_grant",
    "open_index",
    "register",
]

ALGO = keccak(text="algorithm:dp-mean:v1")
PURPOSE = keccak(text="research.oncology")
ZERO_ADDRESS = Web3.to_checksum_address("0x" + "00" * 20)
PRICE = 10**16


def deploy_for_index(w3: Web3, deployments_dir: Path) -> tuple[Deployment, LedgerContracts]:
    """Deploy as ``ledger deploy`` does (anvil's first key is admin, settler and refunder)."""
    deployment, _ = deploy(w3, TxSender(w3, ANVIL_DEV_KEYS[0]), deployments_dir)
    contracts = contracts_of(w3, deployment)
    return deployment, LedgerContracts(
        w3,
        deployment.deployer,
        contracts["DataRegistry"],
        contracts["AccessGrants"],
        contracts["RevenueVault"],
        contracts["UsageLedger"],
    )


def open_index(
    w3: Web3,
    deployment: Deployment,
    url: str,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> tuple[Indexer, Engine]:
    """A migrated database and an indexer on it (the caller disposes of the engine)."""
    upgrade(url)
    engine = open_engine(url)
    indexer = Indexer(w3, deployment, engine, options=IndexerOptions(**options), progress=progress)
    return indexer, engine


def index_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every raw event and derived row, by table, in key order: what two indexes of the same
    chain must agree on."""
    result: dict[str, list[dict[str, Any]]] = {}
    models: tuple[type[SQLModel], ...] = (ChainEvent, *DERIVED_TABLES)
    with engine.connect() as connection:
        for model in models:
            table = table_of(model)
            rows = connection.execute(select(table).order_by(*table.primary_key.columns))
            result[table.name] = [dict(row) for row in rows.mappings()]
    return result


def register(ledger: LedgerContracts, owner: ChecksumAddress, seed: str) -> int:
    version = tuple(keccak(text=f"{seed}:{part}") for part in ("rows", "contrib", "schema", "meta"))
    receipt = transact(ledger.registry.functions.register(version, 7000, f"ipfs://{seed}"), owner)
    (event,) = ledger.registry.events.DatasetRegistered().process_receipt(receipt, DISCARD)
    return int(event["args"]["datasetId"])


def make_grant(
    w3: Web3, dataset_id: int, grantor: ChecksumAddress, grantee: ChecksumAddress, nonce: int
) -> Grant:
    now = int(w3.eth.get_block("latest")["timestamp"])
    return Grant(
        dataset_id=dataset_id,
        grantor=grantor,
        grantee=grantee,
        algorithm_hash=ALGO,
        purpose=PURPOSE,
        valid_from=now - 60,
        valid_until=now + 30 * 86_400,
        max_uses=10,
        epsilon_budget=1_000_000,
        payment_token=ZERO_ADDRESS,
        price_per_use=PRICE,
        nonce=nonce,
        deadline=now + 3_600,
    )


def _event(contract: Contract, name: str, receipt: TxReceipt) -> dict[str, Any]:
    (event,) = contract.events[name]().process_receipt(receipt, DISCARD)
    return dict(event["args"])


@dataclass
class Scenario:
    """What `drive_every_event` did, for the assertions."""

    owner: LocalAccount
    owner2: LocalAccount
    consumer: ChecksumAddress
    executor: ChecksumAddress
    other: ChecksumAddress
    datasets: dict[str, int]
    grants: dict[str, str]
    escrows: dict[str, str]
    job_id: str
    anchor_root: str
    claim: int
    catalog: dict[str, bool]


def drive_every_event(ledger: LedgerContracts) -> Scenario:
    """Send one of every transaction the product uses, so that every mapped event is emitted:
    register, publishVersion, setRevenueSplit, setExecutor (on and off), issue, issueWithSig,
    escrow, recordUsage, refund, revoke, invalidateNonces, anchorBatch, publishEpoch, claim,
    transferFrom, setCatalogAlgorithm (one algorithm listed, another listed then delisted)."""
    w3 = ledger.w3
    owner = local_account(w3, "index:owner")
    owner2 = local_account(w3, "index:owner2")
    accounts = dev_accounts(w3)
    consumer, executor, other, relayer = accounts[2], accounts[3], accounts[4], accounts[5]
    settler = ledger.admin
    registry, grants, vault, usage = ledger.registry, ledger.grants, ledger.vault, ledger.usage

    datasets = {
        "one": register(ledger, owner.address, "one"),
        "two": register(ledger, owner.address, "two"),
        "three": register(ledger, owner2.address, "three"),
    }
    v2 = tuple(keccak(text=f"one-v2:{part}") for part in ("rows", "contrib", "schema", "meta"))
    transact(registry.functions.publishVersion(datasets["one"], v2, "ipfs://one-v2"), owner.address)
    transact(registry.functions.setRevenueSplit(datasets["one"], 6000), owner.address)
    for dataset in ("one", "two"):
        transact(registry.functions.setExecutor(datasets[dataset], executor, True), owner.address)
    transact(registry.functions.setExecutor(datasets["two"], other, True), owner.address)
    transact(registry.functions.setExecutor(datasets["two"], other, False), owner.address)

    direct = make_grant(w3, datasets["one"], owner.address, consumer, 1)
    signed = make_grant(w3, datasets["one"], owner.address, consumer, 2)
    by_nonce = make_grant(w3, datasets["three"], owner2.address, consumer, 5)
    ids: dict[str, str] = {}
    receipt = transact(grants.functions.issue(grant_as_tuple(direct)), owner.address)
    ids["direct"] = "0x" + _event(grants, "GrantIssued", receipt)["grantId"].hex()
    typed = grant_typed_data(signed, w3.eth.chain_id, grants.address)
    signature = Account.sign_typed_data(owner.key, full_message=typed).signature
    fn = grants.functions.issueWithSig(grant_as_tuple(signed), bytes(signature))
    ids["signed"] = "0x" + _event(grants, "GrantIssued", transact(fn, relayer))["grantId"].hex()
    receipt = transact(grants.functions.issue(grant_as_tuple(by_nonce)), owner2.address)
    ids["by_nonce"] = "0x" + _event(grants, "GrantIssued", receipt)["grantId"].hex()

    job = keccak(text="job-1")
    escrows: dict[str, str] = {}
    fn = vault.functions.escrow(job, bytes.fromhex(ids["direct"][2:]), ZERO_ADDRESS, 2 * PRICE)
    receipt = transact(fn, consumer, value=2 * PRICE)
    escrows["captured"] = "0x" + _event(vault, "Escrowed", receipt)["escrowId"].hex()
    job_tuple = (job, consumer, ALGO, PURPOSE, keccak(text="receipt-1"))
    use = (grant_as_tuple(direct), 1, 2, 250_000)
    transact(usage.functions.recordUsage(job_tuple, [use]), executor)

    fn = vault.functions.escrow(
        keccak(text="job-2"), bytes.fromhex(ids["direct"][2:]), ZERO_ADDRESS, PRICE
    )
    receipt = transact(fn, consumer, value=PRICE)
    escrows["refunded"] = "0x" + _event(vault, "Escrowed", receipt)["escrowId"].hex()
    transact(vault.functions.refund(bytes.fromhex(escrows["refunded"][2:])), settler)

    transact(grants.functions.revoke(grant_as_tuple(signed)), owner.address)
    transact(grants.functions.invalidateNonces(10), owner2.address)

    root = keccak(text="receipts-batch-1")
    transact(usage.functions.anchorBatch(root, 7), executor)

    claim = PRICE  # a one-leaf tree: the root is the leaf and the proof is empty
    leaf = keccak(keccak(encode(["address", "uint256"], [other, claim])))
    transact(vault.functions.publishEpoch(ZERO_ADDRESS, 1, leaf, claim), settler)
    transact(vault.functions.claim(ZERO_ADDRESS, other, claim, []), other)

    transact(registry.functions.transferFrom(owner.address, other, datasets["two"]), owner.address)

    listed, delisted = keccak(text="algorithm:dp-histogram:v1"), keccak(text="algorithm:retired")
    for algorithm, value in ((listed, True), (delisted, True), (delisted, False)):
        transact(grants.functions.setCatalogAlgorithm(algorithm, value), ledger.admin)
    rpc(w3, "evm_mine")
    return Scenario(
        owner=owner,
        owner2=owner2,
        consumer=consumer,
        executor=executor,
        other=other,
        datasets=datasets,
        grants=ids,
        escrows=escrows,
        job_id="0x" + job.hex(),
        anchor_root="0x" + root.hex(),
        claim=claim,
        catalog={"0x" + listed.hex(): True, "0x" + delisted.hex(): False},
    )

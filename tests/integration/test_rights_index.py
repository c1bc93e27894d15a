"""The grant check from the index gives the chain's answer, on SQLite and PostgreSQL: every
reason, after revocations, nonce invalidation, consumption and a transfer of the dataset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account
from sqlmodel import Session
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import contracts_of, deploy
from ledger.chain.sender import TxSender
from ledger.indexer import Indexer, IndexerOptions
from ledger.rights.check import ANY_CATALOG_ALGORITHM, JobRequest, Reason, check_onchain
from ledger.rights.index import check_from_index
from ledger.rights.typed_data import Grant, grant_as_tuple
from ledger.settings import ANVIL_DEV_KEYS
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade

ALGO = Web3.keccak(text="algorithm:cohort-count:v1")
OTHER_ALGO = Web3.keccak(text="algorithm:unlisted:v1")
PURPOSE = Web3.keccak(text="public-health.surveillance")
ZERO = Web3.to_checksum_address("0x" + "00" * 20)


@pytest.fixture()
def node() -> Iterator[Anvil]:
    with Anvil() as anvil:
        yield anvil


def test_index_answers_as_the_chain_does(node: Anvil, database_url: str, tmp_path: Path) -> None:
    w3 = Web3(Web3.HTTPProvider(node.url))
    operator = TxSender(w3, ANVIL_DEV_KEYS[0])
    owner = TxSender(w3, ANVIL_DEV_KEYS[1])
    consumer = Account.from_key(ANVIL_DEV_KEYS[2]).address
    deployment, _ = deploy(w3, operator, tmp_path)
    contracts = contracts_of(w3, deployment)
    registry, grants = contracts["DataRegistry"], contracts["AccessGrants"]
    for n in (1, 2):
        version = tuple(Web3.keccak(text=f"ds{n}-{i}") for i in range(4))
        owner.send(registry.functions.register(version, 7000, f"ipfs://ds{n}"))
        owner.send(registry.functions.setExecutor(n, operator.address, True))
    operator.send(grants.functions.setCatalogAlgorithm(ALGO, True))
    now = int(w3.eth.get_block("latest")["timestamp"])
    base = Grant(
        dataset_id=1,
        grantor=owner.address,
        grantee=consumer,
        algorithm_hash=ALGO,
        purpose=PURPOSE,
        valid_from=now,
        valid_until=now + 86_400,
        max_uses=2,
        epsilon_budget=1_000_000,
        payment_token=ZERO,
        price_per_use=0,
        nonce=1,
        deadline=now + 3600,
    )
    made = {
        "live": base,
        "revoked": replace(base, nonce=2),
        "later": replace(base, nonce=3, valid_from=now + 10_000),
        "catalog": replace(base, nonce=4, algorithm_hash=ANY_CATALOG_ALGORITHM),
        "invalidated": replace(base, nonce=0),
        "sold": replace(base, nonce=5, dataset_id=2),
        "used": replace(base, nonce=6, max_uses=1),
    }
    for grant in made.values():
        owner.send(grants.functions.issue(grant_as_tuple(grant)))
    owner.send(grants.functions.revoke(grant_as_tuple(made["revoked"])))
    usage = contracts["UsageLedger"]
    job_tuple = (Web3.keccak(text="job-1"), consumer, ALGO, PURPOSE, Web3.keccak(text="receipt"))
    operator.send(usage.functions.recordUsage(job_tuple, [(grant_as_tuple(made["used"]), 1, 1, 0)]))
    buyer = Account.from_key(ANVIL_DEV_KEYS[3]).address
    owner.send(registry.functions.transferFrom(owner.address, buyer, 2))
    # The transfer also ends the executor's approval; the new owner gives it again.
    TxSender(w3, ANVIL_DEV_KEYS[3]).send(registry.functions.setExecutor(2, operator.address, True))
    # The owner invalidates every nonce below 1: "invalidated" (nonce 0) dies, the rest live.
    owner.send(grants.functions.invalidateNonces(1))

    engine = open_engine(database_url)
    upgrade(database_url)
    Indexer(w3, deployment, engine, options=IndexerOptions(confirmations=1)).run_once()
    at = int(w3.eth.get_block("latest")["timestamp"])

    def job(grant: Grant, **changes: object) -> JobRequest:
        request = JobRequest(
            dataset_id=grant.dataset_id,
            consumer=consumer,
            algorithm_hash=ALGO,
            purpose=PURPOSE,
            uses=1,
            epsilon=10_000,
            executor=operator.address,
            at=at,
        )
        return replace(request, **changes)  # type: ignore[arg-type]

    cases = [
        ("live", {}, None),
        ("revoked", {}, Reason.REVOKED),
        ("later", {}, Reason.NOT_YET_VALID),
        ("catalog", {}, None),
        ("catalog", {"algorithm_hash": OTHER_ALGO}, Reason.WRONG_ALGORITHM),
        ("invalidated", {}, Reason.REVOKED),
        ("sold", {}, Reason.OWNER_CHANGED),
        ("used", {}, Reason.USES_EXCEEDED),
        ("live", {"uses": 3}, Reason.USES_EXCEEDED),
        ("live", {"epsilon": 1_000_001}, Reason.BUDGET_EXCEEDED),
        ("live", {"consumer": buyer}, Reason.WRONG_GRANTEE),
        ("live", {"algorithm_hash": OTHER_ALGO}, Reason.WRONG_ALGORITHM),
        ("live", {"purpose": Web3.keccak(text="marketing")}, Reason.WRONG_PURPOSE),
        ("live", {"executor": buyer}, Reason.EXECUTOR_NOT_ALLOWED),
        ("live", {"at": now + 2 * 86_400}, Reason.EXPIRED),
        # Boundaries: both ends of the window count, and a grant can be used up exactly.
        ("live", {"at": now}, None),
        ("live", {"at": now + 86_400}, None),
        ("live", {"at": now - 1}, Reason.NOT_YET_VALID),
        ("live", {"at": now + 86_400 + 1}, Reason.EXPIRED),
        ("live", {"uses": 2}, None),
        ("live", {"epsilon": 1_000_000}, None),
        ("live", {"dataset_id": 2}, Reason.WRONG_DATASET),
    ]
    with Session(engine) as session:
        for name, changes, expected in cases:
            grant = made[name]
            request = job(grant, **changes)
            grant_id = "0x" + bytes(grants.functions.grantId(grant_as_tuple(grant)).call()).hex()
            from_index = check_from_index(session, grant_id, request)
            assert from_index.reason == expected, (name, changes, from_index)
            if "at" not in changes:  # the chain judges at its own time
                assert check_onchain(grants, registry, grant, request).reason == expected
        unknown = check_from_index(session, "0x" + "ab" * 32, job(base))
        assert unknown.reason == Reason.UNKNOWN_GRANT
    engine.dispose()

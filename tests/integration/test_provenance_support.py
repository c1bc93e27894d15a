"""Helpers for the provenance tests (this module holds no tests): a deployment with two datasets
of two owners and two allowed executors, and recorded jobs set up directly with the contracts
(grant, escrow, receipt, ``recordUsage``) since the job pipeline is not involved here."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3 import Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger.provenance.canonical import parameters_hash, result_hash
from ledger.provenance.receipt import Receipt, SignedReceipt, job_tuple, sign_receipt
from ledger.rights.typed_data import Grant, grant_as_tuple
from tests.integration.chain import (
    LedgerContracts,
    dev_accounts,
    local_account,
    register_dataset,
    transact,
)

__all__ = ["ALGO", "PRICE", "PURPOSE", "World", "grant_for", "make_world", "signed_job"]

ALGO = keccak(text="algorithm:dp-mean:v1")
PURPOSE = keccak(text="research.oncology")
PRICE = 10**15
ZERO_ADDRESS = Web3.to_checksum_address("0x" + "00" * 20)
_JOBS = itertools.count(1)
_NONCES = itertools.count(1)


@dataclass
class World:
    """Deployed contracts, two owners with one dataset each, a consumer, two executors."""

    contracts: LedgerContracts
    owners: list[LocalAccount]
    consumer: ChecksumAddress
    executor: LocalAccount
    other_executor: LocalAccount
    datasets: list[int]
    grants: dict[int, tuple[Grant, str]] = field(default_factory=dict)
    commitments: dict[tuple[int, int], str] = field(default_factory=dict)
    chain_id: int = 0

    @property
    def w3(self) -> Web3:
        return self.contracts.w3

    @property
    def addresses(self) -> dict[str, str]:
        c = self.contracts
        return {
            "registry": c.registry.address,
            "grants": c.grants.address,
            "usage_ledger": c.usage.address,
            "vault": c.vault.address,
        }


def make_world(contracts: LedgerContracts, seed: str) -> World:
    """Two datasets (one per owner), both executors allowed on both, one grant per dataset."""
    w3 = contracts.w3
    owners = [local_account(w3, f"{seed}:owner{i}") for i in range(2)]
    executor = local_account(w3, f"{seed}:executor")
    other = local_account(w3, f"{seed}:other-executor")
    consumer = dev_accounts(w3)[2]
    datasets = [
        register_dataset(contracts, o.address, f"{seed}:data{i}") for i, o in enumerate(owners)
    ]
    for owner, dataset_id in zip(owners, datasets, strict=True):
        for ex in (executor, other):
            transact(
                contracts.registry.functions.setExecutor(dataset_id, ex.address, True),
                owner.address,
            )
    world = World(contracts, owners, consumer, executor, other, datasets, chain_id=w3.eth.chain_id)
    for owner, dataset_id in zip(owners, datasets, strict=True):
        world.grants[dataset_id] = grant_for(world, dataset_id, owner)
    return world


def grant_for(world: World, dataset_id: int, owner: LocalAccount) -> tuple[Grant, str]:
    """Issue a grant on `dataset_id` to the consumer (20 uses, price PRICE in ETH)."""
    now = int(world.w3.eth.get_block("latest")["timestamp"])
    grant = Grant(
        dataset_id=dataset_id,
        grantor=owner.address,
        grantee=world.consumer,
        algorithm_hash=ALGO,
        purpose=PURPOSE,
        valid_from=now - 60,
        valid_until=now + 30 * 86_400,
        max_uses=20,
        epsilon_budget=10_000_000,
        payment_token=ZERO_ADDRESS,
        price_per_use=PRICE,
        nonce=next(_NONCES),
        deadline=now + 3_600,
    )
    receipt = transact(world.contracts.grants.functions.issue(grant_as_tuple(grant)), owner.address)
    (event,) = world.contracts.grants.events.GrantIssued().process_receipt(receipt, DISCARD)
    return grant, "0x" + bytes(event["args"]["grantId"]).hex()


def signed_job(
    world: World,
    dataset_ids: list[int],
    *,
    result: Any,
    executor: LocalAccount | None = None,
    previous: dict[int, str | None] | None = None,
    epsilon: int = 250_000,
    versions: dict[int, int] | None = None,
    **changes: Any,
) -> SignedReceipt:
    """A signed receipt of a new job on `dataset_ids` (nothing sent yet); `changes` override
    receipt fields (e.g. ``chain_id``)."""
    executor = executor or world.executor
    job_id = keccak(text=f"provenance-job-{next(_JOBS)}-{id(world)}")
    previous = previous or {}
    entries = []
    for dataset_id in dataset_ids:
        grant, grant_id = world.grants[dataset_id]
        version = (versions or {}).get(dataset_id, 1)
        if (dataset_id, version) not in world.commitments:
            stored = world.contracts.registry.functions.versionOf(dataset_id, version).call()
            world.commitments[dataset_id, version] = "0x" + bytes(stored[0]).hex()
        entries.append(
            {
                "dataset_id": dataset_id,
                "version": version,
                "commitment": world.commitments[dataset_id, version],
                "grant_id": grant_id,
                "uses": 1,
                "epsilon_spent": epsilon,
                "previous_receipt": previous.get(dataset_id),
            }
        )
    now = datetime.now(UTC).replace(microsecond=0)
    fields: dict[str, Any] = {
        "job_id": "0x" + job_id.hex(),
        "chain_id": world.chain_id,
        "contracts": world.addresses,
        "consumer": world.consumer,
        "purpose": "0x" + PURPOSE.hex(),
        "executor": executor.address,
        "algorithm_hash": "0x" + ALGO.hex(),
        "runtime_hash": "0x" + keccak(text="runtime:python3.11").hex(),
        "parameters_hash": parameters_hash({"column": "age", "epsilon": 0.25}),
        "result_hash": result_hash(result),
        "suppression_k": 10,
        "requested_at": now - timedelta(seconds=3),
        "completed_at": now,
        "datasets": entries,
    }
    fields.update(changes)
    return sign_receipt(Receipt.of(**fields), executor.key.to_0x_hex())


def record(
    world: World, signed: SignedReceipt, *, recorder: LocalAccount | None = None
) -> TxReceipt:
    """Escrow each grant's price from the consumer, then ``recordUsage`` from `recorder`
    (default: the receipt's executor) with the receipt hash."""
    recorder = recorder or world.executor
    receipt = signed.receipt
    job_id = bytes.fromhex(receipt.job_id[2:])
    uses = []
    for entry in receipt.datasets:
        grant, grant_id = world.grants[entry.dataset_id]
        fn = world.contracts.vault.functions.escrow(
            job_id, bytes.fromhex(grant_id[2:]), ZERO_ADDRESS, PRICE * entry.uses
        )
        transact(fn, world.consumer, value=PRICE * entry.uses)
        uses.append((grant_as_tuple(grant), entry.version, entry.uses, entry.epsilon_spent))
    fn = world.contracts.usage.functions.recordUsage(job_tuple(signed), uses)
    return transact(fn, recorder.address)


def result_bytes(result: Any) -> bytes:
    """A result file as a service would write it (indented, keys in insertion order)."""
    return json.dumps(result, indent=2).encode()

"""Grant checks against a real anvil: signatures as the contract sees them, and the same
decision from the pure rules (fed by chain reads) and from the contract's own check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import contracts_of, deploy
from ledger.chain.sender import TxSender
from ledger.rights.check import JobRequest, Reason, check_onchain, decide, status_onchain
from ledger.rights.signatures import verify_grant_signature
from ledger.rights.typed_data import Grant, grant_as_tuple, grant_typed_data
from ledger.settings import ANVIL_DEV_KEYS
from tests.integration.chain import deploy as deploy_contract
from tests.integration.chain import mock_wallet_artifact

OWNER_KEY, CONSUMER_KEY = ANVIL_DEV_KEYS[1], ANVIL_DEV_KEYS[2]
ALGO = Web3.keccak(text="algorithm:dp-mean:v1")
PURPOSE = Web3.keccak(text="research.oncology")
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class Chain:
    def __init__(self, w3: Web3, contracts: dict[str, Contract], operator: TxSender) -> None:
        self.w3 = w3
        self.registry = contracts["DataRegistry"]
        self.grants = contracts["AccessGrants"]
        self.operator = operator
        self.owner = TxSender(w3, OWNER_KEY)
        self.nonce = 0

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def grant(self, dataset_id: int, **changes: object) -> Grant:
        now = self.now()
        terms = Grant(
            dataset_id=dataset_id,
            grantor=self.owner.address,
            grantee=Account.from_key(CONSUMER_KEY).address,
            algorithm_hash=ALGO,
            purpose=PURPOSE,
            valid_from=now,
            valid_until=now + 30 * 86_400,
            max_uses=3,
            epsilon_budget=1_000_000,
            payment_token=Web3.to_checksum_address("0x" + "00" * 20),
            price_per_use=0,
            nonce=self.nonce,
            deadline=now + 3600,
        )
        self.nonce += 1
        return replace(terms, **changes)  # type: ignore[arg-type]

    def sign(self, grant: Grant, key: str = OWNER_KEY, chain_id: int | None = None) -> bytes:
        data = grant_typed_data(grant, chain_id or self.w3.eth.chain_id, self.grants.address)
        return bytes(Account.sign_typed_data(key, full_message=data).signature)

    def job(self, grant: Grant, **changes: object) -> JobRequest:
        base = JobRequest(
            dataset_id=grant.dataset_id,
            consumer=grant.grantee,
            algorithm_hash=ALGO,
            purpose=PURPOSE,
            uses=1,
            epsilon=100_000,
            executor=self.operator.address,
            at=self.now(),
        )
        return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        operator = TxSender(w3, ANVIL_DEV_KEYS[0])
        deployment, _ = deploy(w3, operator, tmp_path_factory.mktemp("deployments"))
        yield Chain(w3, contracts_of(w3, deployment), operator)


def register(chain: Chain) -> int:
    version = tuple(Web3.keccak(text=f"v{chain.now()}-{i}-{chain.nonce}") for i in range(4))
    chain.owner.send(chain.registry.functions.register(version, 7000, "ipfs://m"))
    dataset_id = int(chain.registry.functions.datasetCount().call())
    chain.owner.send(chain.registry.functions.setExecutor(dataset_id, chain.operator.address, True))
    return dataset_id


def both(chain: Chain, grant: Grant, job: JobRequest) -> tuple[Reason | None, Reason | None]:
    """The reason from the pure rules over chain reads, and from the contract's own check."""
    pure = decide(grant, status_onchain(chain.grants, chain.registry, grant, job), job)
    onchain = check_onchain(chain.grants, chain.registry, grant, job)
    return pure.reason, onchain.reason


def test_signatures_checked_as_the_contract_does(chain: Chain) -> None:
    dataset_id = register(chain)
    grant = chain.grant(dataset_id)
    good = chain.sign(grant)
    chain_id = chain.w3.eth.chain_id
    assert verify_grant_signature(chain.w3, grant, good, chain_id, chain.grants.address)
    s = int.from_bytes(good[32:64], "big")
    high_s = good[:32] + (N - s).to_bytes(32, "big") + bytes([55 - good[64]])
    refused = [
        high_s,
        chain.sign(grant, key=CONSUMER_KEY),
        chain.sign(grant, chain_id=chain_id + 1),
        good[:64],
    ]
    for signature in refused:
        assert not verify_grant_signature(
            chain.w3, grant, signature, chain_id, chain.grants.address
        )
    other_contract = chain.registry.address
    assert not verify_grant_signature(chain.w3, grant, good, chain_id, other_contract)
    # The contract agrees: the good one issues the grant.
    chain.operator.send(chain.grants.functions.issueWithSig(grant_as_tuple(grant), good))


def test_allowed_and_each_refusal_agree_with_the_contract(chain: Chain) -> None:
    dataset_id = register(chain)
    grant = chain.grant(dataset_id)
    assert both(chain, grant, chain.job(grant)) == (Reason.UNKNOWN_GRANT, Reason.UNKNOWN_GRANT)
    chain.owner.send(chain.grants.functions.issue(grant_as_tuple(grant)))
    assert both(chain, grant, chain.job(grant)) == (None, None)
    cases = {
        Reason.WRONG_GRANTEE: chain.job(grant, consumer=chain.owner.address),
        Reason.WRONG_ALGORITHM: chain.job(grant, algorithm_hash=Web3.keccak(text="other")),
        Reason.WRONG_PURPOSE: chain.job(grant, purpose=Web3.keccak(text="marketing")),
        Reason.USES_EXCEEDED: chain.job(grant, uses=4),
        Reason.BUDGET_EXCEEDED: chain.job(grant, epsilon=1_000_001),
        Reason.INVALID_USES: chain.job(grant, uses=0),
        Reason.EXECUTOR_NOT_ALLOWED: chain.job(grant, executor=chain.owner.address),
    }
    for reason, job in cases.items():
        assert both(chain, grant, job) == (reason, reason), reason
    chain.owner.send(chain.grants.functions.revoke(grant_as_tuple(grant)))
    assert both(chain, grant, chain.job(grant)) == (Reason.REVOKED, Reason.REVOKED)


def test_window_nonces_and_transfer(chain: Chain) -> None:
    dataset_id = register(chain)
    later = chain.grant(dataset_id, valid_from=chain.now() + 1000)
    chain.owner.send(chain.grants.functions.issue(grant_as_tuple(later)))
    assert both(chain, later, chain.job(later)) == (Reason.NOT_YET_VALID, Reason.NOT_YET_VALID)
    short = chain.grant(dataset_id, valid_until=chain.now() + 5)
    chain.owner.send(chain.grants.functions.issue(grant_as_tuple(short)))
    chain.w3.provider.make_request("evm_increaseTime", [100])  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    job = chain.job(short)
    assert both(chain, short, job) == (Reason.EXPIRED, Reason.EXPIRED)

    live = chain.grant(dataset_id)
    chain.owner.send(chain.grants.functions.issue(grant_as_tuple(live)))
    assert both(chain, live, chain.job(live)) == (None, None)
    chain.owner.send(chain.grants.functions.invalidateNonces(live.nonce + 1))
    assert both(chain, live, chain.job(live)) == (Reason.REVOKED, Reason.REVOKED)

    fresh = chain.grant(dataset_id, nonce=live.nonce + 1)
    chain.owner.send(chain.grants.functions.issue(grant_as_tuple(fresh)))
    buyer = Account.from_key(ANVIL_DEV_KEYS[3]).address
    chain.owner.send(chain.registry.functions.transferFrom(chain.owner.address, buyer, dataset_id))
    # The executor's approval lapsed with the transfer: the chain refuses on that first.
    lapsed = (Reason.EXECUTOR_NOT_ALLOWED, Reason.EXECUTOR_NOT_ALLOWED)
    assert both(chain, fresh, chain.job(fresh)) == lapsed
    new_owner = TxSender(chain.w3, ANVIL_DEV_KEYS[3])
    new_owner.send(chain.registry.functions.setExecutor(dataset_id, chain.operator.address, True))
    assert both(chain, fresh, chain.job(fresh)) == (Reason.OWNER_CHANGED, Reason.OWNER_CHANGED)


def test_contract_wallet_signatures_checked_by_erc1271(chain: Chain) -> None:
    abi, bytecode = mock_wallet_artifact()
    wallet = deploy_contract(
        chain.w3, abi, bytecode, chain.owner.address, sender=chain.operator.address
    )
    grant = chain.grant(1, grantor=wallet.address)
    chain_id = chain.w3.eth.chain_id
    signed_by_key = chain.sign(grant)
    assert verify_grant_signature(chain.w3, grant, signed_by_key, chain_id, chain.grants.address)
    stranger = chain.sign(grant, key=CONSUMER_KEY)
    assert not verify_grant_signature(chain.w3, grant, stranger, chain_id, chain.grants.address)

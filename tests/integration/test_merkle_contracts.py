"""ledger.merkle trees against the contracts on a real anvil: a dataset committed to our root
verifies every row and refuses tampered ones (`DataRegistry.verifyRecord`), and a RevenueVault
epoch published with our root pays claims with our proofs exactly (`RevenueVault.claim`)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_abi.abi import encode
from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from ledger.chain.anvil import Anvil
from ledger.chain.deploy import contracts_of, deploy
from ledger.chain.sender import TxSender
from ledger.merkle import StandardMerkleTree
from ledger.rights.typed_data import Grant, grant_as_tuple
from ledger.settings import ANVIL_DEV_KEYS
from tests.integration.chain import custom_error_args

pytestmark = pytest.mark.integration

OWNER_KEY, CONSUMER_KEY = ANVIL_DEV_KEYS[1], ANVIL_DEV_KEYS[2]
ETH = Web3.to_checksum_address("0x" + "00" * 20)
ALGO = Web3.keccak(text="algorithm:dp-mean:v1")
PURPOSE = Web3.keccak(text="research.oncology")
ROW_TYPES = ["uint256", "address", "string", "bytes32", "int64"]
CLAIM_TYPES = ["address", "uint256"]
FEE_BPS = 250


@dataclass
class Chain:
    w3: Web3
    registry: Contract
    grants: Contract
    vault: Contract
    usage: Contract
    operator: TxSender
    owner: TxSender
    consumer: TxSender

    def register(self, commitment: bytes, seed: str) -> int:
        version = (commitment, *(Web3.keccak(text=f"{seed}:{part}") for part in ("c", "s", "m")))
        self.owner.send(self.registry.functions.register(version, 7000, f"ipfs://{seed}"))
        return int(self.registry.functions.datasetCount().call())


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        operator = TxSender(w3, ANVIL_DEV_KEYS[0])
        deployment, _ = deploy(w3, operator, tmp_path_factory.mktemp("deployments"))
        contracts = contracts_of(w3, deployment)
        yield Chain(
            w3,
            contracts["DataRegistry"],
            contracts["AccessGrants"],
            contracts["RevenueVault"],
            contracts["UsageLedger"],
            operator,
            TxSender(w3, OWNER_KEY),
            TxSender(w3, CONSUMER_KEY),
        )


def _rows(n: int) -> list[list[object]]:
    rng = random.Random(n)
    return [
        [
            i,
            Web3.to_checksum_address("0x" + rng.randbytes(20).hex()),
            f"patient-{i}-" + "x" * rng.randint(0, 50),
            rng.randbytes(32),
            rng.randint(-(2**63), 2**63 - 1),
        ]
        for i in range(n)
    ]


def test_verify_record_accepts_every_row_and_refuses_tampered_ones(chain: Chain) -> None:
    rows = _rows(13)
    tree = StandardMerkleTree.of(rows, ROW_TYPES)
    dataset_id = chain.register(bytes.fromhex(tree.root[2:]), "records")
    verify_record = chain.registry.functions.verifyRecord
    for i, row in enumerate(rows):
        encoded = encode(ROW_TYPES, row)
        assert verify_record(dataset_id, 1, encoded, tree.proof(i)).call(), f"row {i}"
    tampered = [rows[4][0], rows[4][1], rows[4][2] + "!", rows[4][3], rows[4][4]]
    assert not verify_record(dataset_id, 1, encode(ROW_TYPES, tampered), tree.proof(4)).call()
    assert not verify_record(dataset_id, 1, encode(ROW_TYPES, rows[4]), tree.proof(5)).call()
    # Every proof from the bulk walk is accepted too.
    for i, proof in tree.iter_proofs():
        assert verify_record(dataset_id, 1, encode(ROW_TYPES, rows[i]), proof).call()


def _capture_revenue(chain: Chain, uses: int, price: int) -> int:
    """Register a dataset, let the operator execute on it, issue a grant priced `price` per use,
    escrow `uses` uses as the consumer and record the job; returns the vault's captured net."""
    dataset_id = chain.register(Web3.keccak(text="claims-rows"), "claims")
    chain.owner.send(chain.registry.functions.setExecutor(dataset_id, chain.operator.address, True))
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    grant = grant_as_tuple(
        Grant(
            dataset_id=dataset_id,
            grantor=chain.owner.address,
            grantee=chain.consumer.address,
            algorithm_hash=ALGO,
            purpose=PURPOSE,
            valid_from=now,
            valid_until=now + 30 * 86_400,
            max_uses=10,
            epsilon_budget=1_000_000,
            payment_token=ETH,
            price_per_use=price,
            nonce=0,
            deadline=now + 3600,
        )
    )
    chain.owner.send(chain.grants.functions.issue(grant))
    grant_id = chain.grants.functions.grantId(grant).call()
    job_id = Web3.keccak(text="merkle-claims-job")
    amount = price * uses
    chain.consumer.send(chain.vault.functions.escrow(job_id, grant_id, ETH, amount), value=amount)
    job = (job_id, chain.consumer.address, ALGO, PURPOSE, Web3.keccak(text="receipt"))
    chain.operator.send(chain.usage.functions.recordUsage(job, [(grant, 1, uses, 100_000)]))
    net, fees = chain.vault.functions.tokenTotals(ETH).call()
    assert (net, fees) == (amount - amount * FEE_BPS // 10_000, amount * FEE_BPS // 10_000)
    return int(net)


def _claim_all(chain: Chain, tree: StandardMerkleTree, paid: dict[str, int]) -> None:
    """Claim every leaf of `tree` and check each account receives exactly what is new."""
    for i, proof in tree.iter_proofs():
        account, cumulative = tree.at(i)
        before = chain.w3.eth.get_balance(account)
        chain.operator.send(chain.vault.functions.claim(ETH, account, cumulative, proof))
        assert chain.w3.eth.get_balance(account) - before == cumulative - paid.get(account, 0)
        assert chain.vault.functions.claimedOf(ETH, account).call() == cumulative
        paid[account] = cumulative


def test_claims_with_our_proofs_pay_exactly_the_cumulative_amounts(chain: Chain) -> None:
    net = _capture_revenue(chain, uses=4, price=10**18)
    rng = random.Random(7)
    accounts = [Account.from_key(Web3.keccak(text=f"claimant-{i}")).address for i in range(9)]
    first = {a: rng.randint(1, net // 20) for a in accounts}
    tree = StandardMerkleTree.of([[a, c] for a, c in first.items()], CLAIM_TYPES)
    chain.operator.send(chain.vault.functions.publishEpoch(ETH, 1, tree.root, sum(first.values())))
    account, cumulative = accounts[2], first[accounts[2]]
    proof = tree.proof_of([account, cumulative])
    assert custom_error_args(
        chain.vault.functions.claim(ETH, account, cumulative + 1, proof),
        chain.operator.address,
        "RevenueVaultInvalidProof(address,address,uint256)",
    ) == (ETH, account, cumulative + 1)
    paid: dict[str, int] = {}
    _claim_all(chain, tree, paid)
    _, published, claimed, _ = chain.vault.functions.distributionOf(ETH).call()
    assert published == claimed == sum(first.values())

    # Epoch 2: cumulative amounts grow; a claim pays only the difference.
    second = {a: c + rng.randint(0, net // 20) for a, c in first.items()}
    second_tree = StandardMerkleTree.of([[a, c] for a, c in second.items()], CLAIM_TYPES)
    total = sum(second.values())
    assert total <= net
    chain.operator.send(chain.vault.functions.publishEpoch(ETH, 2, second_tree.root, total))
    _claim_all(chain, second_tree, paid)
    assert paid == second

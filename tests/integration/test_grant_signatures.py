"""EIP-712 grants: the typed data Python builds is what AccessGrants verifies.

Signatures made from the ``eth_signTypedData_v4`` JSON (by eth-account, by anvil as a wallet, by an
ERC-1271 contract wallet's key) are accepted by ``issueWithSig``; replays on another chain or
deployment, expired deadlines, reused nonces, malleable (high-s) signatures and wrong signers are
refused with the contract's custom error and its arguments.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.constants import SECPK1_N
from eth_keys.datatypes import Signature
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3 import Web3
from web3.logs import DISCARD

from ledger.chain.anvil import Anvil
from ledger.rights.typed_data import (
    GRANT_TYPE,
    Grant,
    grant_as_tuple,
    grant_digest,
    grant_typed_data,
)
from tests.integration.chain import (
    LedgerContracts,
    custom_error_args,
    deploy,
    deploy_artifact,
    deploy_ledger,
    dev_accounts,
    local_account,
    mock_wallet_artifact,
    register_dataset,
    rpc,
    transact,
)

pytestmark = pytest.mark.integration

ALGO = keccak(text="algorithm:dp-mean:v1")
PURPOSE = keccak(text="research.oncology")
ZERO_ADDRESS = Web3.to_checksum_address("0x" + "00" * 20)
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ACTIVE = 1  # IAccessGrants.Status.Active

INVALID_SIGNATURE = "AccessGrantsInvalidSignature(address,bytes32)"
EXPIRED_DEADLINE = "AccessGrantsExpiredDeadline(uint256,uint256)"
NONCE_USED = "AccessGrantsNonceUsed(address,uint256)"


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def owner(w3: Web3) -> LocalAccount:
    """A dataset owner whose key we hold (eth-account signs for it)."""
    return local_account(w3, "owner")


@pytest.fixture(scope="module")
def stranger(w3: Web3) -> LocalAccount:
    """Someone who owns nothing."""
    return local_account(w3, "stranger")


@pytest.fixture(scope="module", autouse=True)
def dataset(ledger: LedgerContracts, owner: LocalAccount) -> int:
    """The owner's dataset; registered first, so it has the same id on every fresh chain."""
    return register_dataset(ledger, owner.address, "dataset")


@pytest.fixture(scope="module")
def relayer(w3: Web3) -> ChecksumAddress:
    """Sends signed grants on the grantor's behalf."""
    return dev_accounts(w3)[3]


@pytest.fixture(scope="module")
def consumer(w3: Web3) -> ChecksumAddress:
    return dev_accounts(w3)[4]


@pytest.fixture(scope="module")
def nonces() -> Iterator[int]:
    """Fresh grant nonces for the module."""
    return itertools.count(1)


@pytest.fixture(scope="module")
def other_chain(
    ledger: LedgerContracts, owner: LocalAccount, dataset: int
) -> Iterator[LedgerContracts]:
    """A second anvil (chain id 31338) with the same deployment: same deployer and nonces, hence
    the same addresses; the owner's dataset has the same id there too."""
    with Anvil(chain_id=31338) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer, admin = dev_accounts(w3)[:2]
        contracts = deploy_ledger(w3, deployer=deployer, admin=admin)
        local_account(w3, "owner")
        assert register_dataset(contracts, owner.address, "dataset") == dataset
        yield contracts


# --- helpers -------------------------------------------------------------------------------------


def make_grant(
    ledger: LedgerContracts,
    dataset_id: int,
    grantor: ChecksumAddress,
    grantee: ChecksumAddress,
    nonce: int,
    /,
    **changes: Any,
) -> Grant:
    """The default terms of LedgerTestBase._terms, relative to the chain's clock."""
    now = ledger.w3.eth.get_block("latest")["timestamp"]
    grant = Grant(
        dataset_id=dataset_id,
        grantor=grantor,
        grantee=grantee,
        algorithm_hash=ALGO,
        purpose=PURPOSE,
        valid_from=now,
        valid_until=now + 30 * 86_400,
        max_uses=10,
        epsilon_budget=1_000_000,
        payment_token=ZERO_ADDRESS,
        price_per_use=10**16,
        nonce=nonce,
        deadline=now + 3600,
    )
    return dataclasses.replace(grant, **changes)


def typed_data(ledger: LedgerContracts, grant: Grant) -> dict[str, Any]:
    return grant_typed_data(grant, ledger.w3.eth.chain_id, ledger.grants.address)


def sign(ledger: LedgerContracts, key: bytes, grant: Grant) -> bytes:
    """What a wallet holding `key` returns for the grant's eth_signTypedData_v4 JSON."""
    signed = Account.sign_typed_data(key, full_message=typed_data(ledger, grant))
    return bytes(signed.signature)


def issue_with_sig(
    ledger: LedgerContracts, grant: Grant, signature: bytes, relayer: ChecksumAddress
) -> bytes:
    """Relay a signed grant; check it is issued under the digest Python computes; return its id."""
    expected = grant_digest(grant, ledger.w3.eth.chain_id, ledger.grants.address)
    fn = ledger.grants.functions.issueWithSig(grant_as_tuple(grant), signature)
    assert fn.call({"from": relayer}) == expected
    receipt = transact(fn, relayer)
    (event,) = ledger.grants.events.GrantIssued().process_receipt(receipt, DISCARD)
    assert event["args"]["grantId"] == expected
    assert event["args"]["relayed"] is True
    assert ledger.grants.functions.stateOf(expected).call()[-1] == ACTIVE
    return expected


def refusal(
    ledger: LedgerContracts,
    grant: Grant,
    signature: bytes,
    relayer: ChecksumAddress,
    error: str,
) -> tuple[Any, ...]:
    """The arguments of custom error `error` with which ``issueWithSig`` refuses the grant."""
    fn = ledger.grants.functions.issueWithSig(grant_as_tuple(grant), signature)
    return custom_error_args(fn, relayer, error)


# --- the typed data is the contract's ------------------------------------------------------------


def test_domain_and_type_hash_match_the_contract(ledger: LedgerContracts) -> None:
    grant = make_grant(ledger, 1, ZERO_ADDRESS, ZERO_ADDRESS, 0)
    data = typed_data(ledger, grant)
    # ERC-5267: the contract describes its own domain.
    _, name, version, chain_id, contract, salt, extensions = (
        ledger.grants.functions.eip712Domain().call()
    )
    assert data["domain"] == {
        "name": name,
        "version": version,
        "chainId": chain_id,
        "verifyingContract": contract,
    }
    assert salt == bytes(32) and extensions == []
    signable = encode_typed_data(full_message=data)
    assert signable.header == ledger.grants.functions.DOMAIN_SEPARATOR().call()
    encoded_type = "Grant(" + ",".join(f"{t} {n}" for n, t in GRANT_TYPE) + ")"
    assert keccak(text=encoded_type) == ledger.grants.functions.GRANT_TYPEHASH().call()


EXTREMES: dict[str, dict[str, Any]] = {
    "zeros": {
        "dataset_id": 0,
        "valid_from": 0,
        "valid_until": 0,
        "max_uses": 0,
        "epsilon_budget": 0,
        "price_per_use": 0,
        "nonce": 0,
        "deadline": 0,
        "algorithm_hash": bytes(32),
        "purpose": bytes(32),
    },
    "maxima": {
        "dataset_id": 2**256 - 1,
        "valid_from": 2**64 - 1,
        "valid_until": 2**64 - 1,
        "max_uses": 2**32 - 1,
        "epsilon_budget": 2**64 - 1,
        "price_per_use": 2**256 - 1,
        "nonce": 2**256 - 1,
        "deadline": 2**256 - 1,
        "algorithm_hash": b"\xff" * 32,
        "purpose": b"\xff" * 32,
    },
    "beyond_js_safe_integers": {
        "dataset_id": 2**53 + 1,
        "epsilon_budget": 2**53 + 1,
        "price_per_use": 2**96 - 1,
        "nonce": 2**200 + 7,
    },
    "defaults": {},
}


@pytest.mark.parametrize("case", EXTREMES, ids=list(EXTREMES))
def test_grant_id_is_the_eth_account_digest_of_the_json(
    ledger: LedgerContracts, owner: LocalAccount, consumer: ChecksumAddress, case: str
) -> None:
    grant = make_grant(ledger, 1, owner.address, consumer, 5, **EXTREMES[case])
    # Through JSON text and back, as the wallet receives it.
    data = json.loads(json.dumps(typed_data(ledger, grant)))
    signable = encode_typed_data(full_message=data)
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    on_chain = ledger.grants.functions.grantId(grant_as_tuple(grant)).call()
    assert on_chain == digest == grant_digest(grant, ledger.w3.eth.chain_id, ledger.grants.address)


# --- accepted signatures -------------------------------------------------------------------------


def test_eth_account_signature_is_accepted(
    ledger: LedgerContracts,
    owner: LocalAccount,
    consumer: ChecksumAddress,
    relayer: ChecksumAddress,
    dataset: int,
    nonces: Iterator[int],
) -> None:
    grant = make_grant(ledger, dataset, owner.address, consumer, next(nonces))
    grant_id = issue_with_sig(ledger, grant, sign(ledger, owner.key, grant), relayer)
    assert ledger.grants.functions.isNonceUsed(owner.address, grant.nonce).call()
    assert grant_id == ledger.grants.functions.grantId(grant_as_tuple(grant)).call()


def test_anvil_eth_sign_typed_data_v4_signature_is_accepted(
    ledger: LedgerContracts,
    consumer: ChecksumAddress,
    relayer: ChecksumAddress,
    nonces: Iterator[int],
) -> None:
    signer = dev_accounts(ledger.w3)[5]  # anvil holds its key and signs like a wallet
    dataset_id = register_dataset(ledger, signer, "anvil-signer")
    grant = make_grant(ledger, dataset_id, signer, consumer, next(nonces))
    data = typed_data(ledger, grant)

    signature = bytes.fromhex(
        rpc(ledger.w3, "eth_signTypedData_v4", signer, json.dumps(data)).removeprefix("0x")
    )

    # The same key in eth-account (anvil derives its accounts from the well-known mnemonic)
    # signs the same JSON to the very same bytes: both use RFC 6979 and low s.
    Account.enable_unaudited_hdwallet_features()
    key = Account.from_mnemonic(ANVIL_MNEMONIC, account_path="m/44'/60'/0'/0/5")
    assert key.address == signer
    assert bytes(Account.sign_typed_data(key.key, full_message=data).signature) == signature
    issue_with_sig(ledger, grant, signature, relayer)


def test_erc1271_wallet_grant_is_accepted(
    ledger: LedgerContracts,
    stranger: LocalAccount,
    consumer: ChecksumAddress,
    relayer: ChecksumAddress,
    nonces: Iterator[int],
) -> None:
    signer = local_account(ledger.w3, "wallet-signer")
    abi, bytecode = mock_wallet_artifact()
    wallet = deploy(ledger.w3, abi, bytecode, signer.address, sender=dev_accounts(ledger.w3)[0])
    dataset_id = register_dataset(ledger, signer.address, "wallet-dataset", wallet=wallet)
    assert ledger.registry.functions.ownerOf(dataset_id).call() == wallet.address
    grant = make_grant(ledger, dataset_id, wallet.address, consumer, next(nonces))

    # Someone else's key does not speak for the wallet...
    forged = sign(ledger, stranger.key, grant)
    grant_id = grant_digest(grant, ledger.w3.eth.chain_id, ledger.grants.address)
    assert refusal(ledger, grant, forged, relayer, INVALID_SIGNATURE) == (wallet.address, grant_id)
    # ...its signer's does (MockWallet.isValidSignature checks the digest's ECDSA signer).
    assert issue_with_sig(ledger, grant, sign(ledger, signer.key, grant), relayer) == grant_id


# --- refusals ------------------------------------------------------------------------------------


def test_replay_on_another_chain_is_refused(
    ledger: LedgerContracts,
    other_chain: LedgerContracts,
    owner: LocalAccount,
    consumer: ChecksumAddress,
    relayer: ChecksumAddress,
    dataset: int,
    nonces: Iterator[int],
) -> None:
    # Same contract address on both chains: only the chain id tells the domains apart.
    assert other_chain.grants.address == ledger.grants.address
    assert other_chain.w3.eth.chain_id != ledger.w3.eth.chain_id
    grant = make_grant(ledger, dataset, owner.address, consumer, next(nonces))
    signed_here = sign(ledger, owner.key, grant)
    id_there = grant_digest(grant, other_chain.w3.eth.chain_id, other_chain.grants.address)

    assert refusal(other_chain, grant, signed_here, relayer, INVALID_SIGNATURE) == (
        owner.address,
        id_there,
    )
    # The same terms signed for that chain are fine there, and the original is fine here.
    issue_with_sig(other_chain, grant, sign(other_chain, owner.key, grant), relayer)
    issue_with_sig(ledger, grant, signed_here, relayer)


def test_replay_on_another_deployment_is_refused(
    ledger: LedgerContracts,
    owner: LocalAccount,
    consumer: ChecksumAddress,
    relayer: ChecksumAddress,
    dataset: int,
    nonces: Iterator[int],
) -> None:
    second = dataclasses.replace(
        ledger,
        grants=deploy_artifact(
            ledger.w3,
            "AccessGrants",
            ledger.registry.address,
            ledger.admin,
            sender=dev_accounts(ledger.w3)[0],
        ),
    )
    grant = make_grant(ledger, dataset, owner.address, consumer, next(nonces))
    signature = sign(ledger, owner.key, grant)
    id_on_second = grant_digest(grant, ledger.w3.eth.chain_id, second.grants.address)

    assert refusal(second, grant, signature, relayer, INVALID_SIGNATURE) == (
        owner.address,
        id_on_second,
    )
    issue_with_sig(ledger, grant, signature, relayer)


def test_expired_deadline_is_refused(
    ledger: LedgerContracts,
    owner: LocalAccount,
    consumer: ChecksumAddress,
    relayer: ChecksumAddress,
    dataset: int,
    nonces: Iterator[int],
) -> None:
    now = ledger.w3.eth.get_block("latest")["timestamp"]
    grant = make_grant(ledger, dataset, owner.address, consumer, next(nonces), deadline=now - 1)

    deadline, at = refusal(ledger, grant, sign(ledger, owner.key, grant), relayer, EXPIRED_DEADLINE)
    assert deadline == now - 1
    assert now <= at <= now + 60  # the block timestamp the call ran at


def test_reused_nonce_is_refused(
    ledger: LedgerContracts,
    owner: LocalAccount,
    consumer: ChecksumAddress,
    relayer: ChecksumAddress,
    dataset: int,
    nonces: Iterator[int],
) -> None:
    grant = make_grant(ledger, dataset, owner.address, consumer, next(nonces))
    signature = sign(ledger, owner.key, grant)
    issue_with_sig(ledger, grant, signature, relayer)

    # The same signed grant again, and other terms under the same nonce.
    assert refusal(ledger, grant, signature, relayer, NONCE_USED) == (owner.address, grant.nonce)
    other_terms = dataclasses.replace(grant, max_uses=5)
    assert refusal(
        ledger, other_terms, sign(ledger, owner.key, other_terms), relayer, NONCE_USED
    ) == (owner.address, grant.nonce)


def test_high_s_signature_is_refused(
    ledger: LedgerContracts,
    owner: LocalAccount,
    consumer: ChecksumAddress,
    relayer: ChecksumAddress,
    dataset: int,
    nonces: Iterator[int],
) -> None:
    grant = make_grant(ledger, dataset, owner.address, consumer, next(nonces))
    data = typed_data(ledger, grant)
    signed = Account.sign_typed_data(owner.key, full_message=data)
    assert signed.s <= SECPK1_N // 2  # eth-account signs with low s
    high_s = SECPK1_N - signed.s
    flipped_v = 55 - signed.v  # 27 <-> 28
    malleated = signed.r.to_bytes(32, "big") + high_s.to_bytes(32, "big") + bytes([flipped_v])
    # The twin is a valid ECDSA signature of the same digest by the same key...
    digest = grant_digest(grant, ledger.w3.eth.chain_id, ledger.grants.address)
    twin = Signature(vrs=(flipped_v - 27, signed.r, high_s))
    assert twin.recover_public_key_from_msg_hash(digest).to_checksum_address() == owner.address

    # ...which the contract refuses as malleable, while the low-s original is accepted.
    assert refusal(ledger, grant, malleated, relayer, INVALID_SIGNATURE) == (owner.address, digest)
    issue_with_sig(ledger, grant, bytes(signed.signature), relayer)


def test_wrong_signer_is_refused(
    ledger: LedgerContracts,
    owner: LocalAccount,
    stranger: LocalAccount,
    consumer: ChecksumAddress,
    relayer: ChecksumAddress,
    dataset: int,
    nonces: Iterator[int],
) -> None:
    grant = make_grant(ledger, dataset, owner.address, consumer, next(nonces))
    digest = grant_digest(grant, ledger.w3.eth.chain_id, ledger.grants.address)

    forged = sign(ledger, stranger.key, grant)
    assert refusal(ledger, grant, forged, relayer, INVALID_SIGNATURE) == (owner.address, digest)
    assert not ledger.grants.functions.isNonceUsed(owner.address, grant.nonce).call()

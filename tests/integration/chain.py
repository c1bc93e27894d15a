"""Helpers for tests against a real anvil: deploy the contracts from the shipped artifacts, act as
any account, and check custom errors by selector and decoded arguments."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ABI, ChecksumAddress, HexStr
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD
from web3.types import RPCEndpoint, TxReceipt, Wei

from ledger.chain.artifacts import load_artifact
from ledger.chain.compiler import compile_contracts, foundry_settings

__all__ = [
    "FEE_BPS",
    "REFUND_DELAY",
    "LedgerContracts",
    "act_as",
    "deploy",
    "deploy_artifact",
    "dev_accounts",
    "deploy_ledger",
    "custom_error_args",
    "local_account",
    "mock_wallet_artifact",
    "register_dataset",
    "rpc",
    "transact",
]

ROOT = Path(__file__).resolve().parents[2]
# As contracts/test/utils/LedgerTestBase.sol.
FEE_BPS = 250
REFUND_DELAY = 86_400

_SIGNATURE = re.compile(r"(\w+)\(([\w,\[\]]*)\)")


@dataclass(frozen=True)
class LedgerContracts:
    """The four contracts, deployed and wired as ``LedgerTestBase.setUp`` does."""

    w3: Web3
    admin: ChecksumAddress
    registry: Contract
    grants: Contract
    vault: Contract
    usage: Contract


def dev_accounts(w3: Web3) -> list[ChecksumAddress]:
    """anvil's unlocked accounts (web3 8 annotates ``eth.accounts`` as a one-element tuple)."""
    return list(w3.eth.accounts)


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    """Call a raw JSON-RPC method (e.g. anvil's own) and return its result."""
    response = w3.provider.make_request(RPCEndpoint(method), list(params))
    assert "error" not in response, f"{method} failed: {response['error']}"
    return response["result"]


def transact(fn: ContractFunction, sender: ChecksumAddress, value: int = 0) -> TxReceipt:
    """Send `fn` from `sender` (an unlocked or impersonated account) and require success."""
    tx_hash = fn.transact({"from": sender, "value": Wei(value)})
    receipt = fn.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1, f"{fn.fn_name} reverted"
    return receipt


def deploy(w3: Web3, abi: ABI, bytecode: HexStr, *args: Any, sender: ChecksumAddress) -> Contract:
    """Deploy a contract from `sender` and return it bound to its address."""
    tx_hash = (
        w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args).transact({"from": sender})
    )
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1 and receipt["contractAddress"] is not None
    return w3.eth.contract(address=receipt["contractAddress"], abi=abi)


def deploy_artifact(w3: Web3, name: str, *args: Any, sender: ChecksumAddress) -> Contract:
    """Deploy the shipped artifact of contract `name`."""
    artifact = load_artifact(name)
    return deploy(w3, artifact.abi, artifact.bytecode, *args, sender=sender)


def deploy_ledger(
    w3: Web3, *, deployer: ChecksumAddress, admin: ChecksumAddress
) -> LedgerContracts:
    """Deploy DataRegistry, AccessGrants, RevenueVault and UsageLedger in that order and grant
    UsageLedger its roles, exactly as ``LedgerTestBase.setUp``; the fee goes to `admin`."""
    registry = deploy_artifact(w3, "DataRegistry", admin, sender=deployer)
    grants = deploy_artifact(w3, "AccessGrants", registry.address, admin, sender=deployer)
    vault = deploy_artifact(
        w3, "RevenueVault", admin, FEE_BPS, admin, REFUND_DELAY, sender=deployer
    )
    usage = deploy_artifact(
        w3, "UsageLedger", registry.address, grants.address, vault.address, sender=deployer
    )
    consumer_role = grants.functions.CONSUMER_ROLE().call()
    capturer_role = vault.functions.CAPTURER_ROLE().call()
    transact(grants.functions.grantRole(consumer_role, usage.address), admin)
    transact(vault.functions.grantRole(capturer_role, usage.address), admin)
    return LedgerContracts(w3, admin, registry, grants, vault, usage)


def local_account(w3: Web3, seed: str) -> LocalAccount:
    """A key derived from `seed`, funded and impersonated on anvil so it can also send."""
    account: LocalAccount = Account.from_key(keccak(text=seed))
    rpc(w3, "anvil_setBalance", account.address, hex(10**21))
    rpc(w3, "anvil_impersonateAccount", account.address)
    return account


def register_dataset(
    contracts: LedgerContracts, owner: ChecksumAddress, seed: str, *, wallet: Contract | None = None
) -> int:
    """Register a dataset and return its id. It is owned by `owner`, who must be able to send,
    or by `wallet` (a MockWallet whose signer is `owner`) if given."""
    args = [_version(seed), 7000, f"ipfs://{seed}"]
    if wallet is None:
        receipt = transact(contracts.registry.functions.register(*args), owner)
    else:
        receipt = act_as(wallet, contracts.registry, "register", args, owner)
    (event,) = contracts.registry.events.DatasetRegistered().process_receipt(receipt, DISCARD)
    dataset_id: int = event["args"]["datasetId"]
    return dataset_id


def act_as(
    wallet: Contract, target: Contract, function: str, args: list[Any], sender: ChecksumAddress
) -> TxReceipt:
    """Have `wallet` (a MockWallet) call `target.function(*args)`, through its ``execute``."""
    data = target.encode_abi(function, args=args)
    return transact(wallet.functions.execute(target.address, data), sender)


def custom_error_args(
    fn: ContractFunction, sender: ChecksumAddress, signature: str
) -> tuple[Any, ...]:
    """Call `fn` from `sender`, require a revert with custom error `signature`
    (e.g. ``"AccessGrantsNonceUsed(address,uint256)"``) and return the error's decoded arguments
    (addresses checksummed).

    The revert data must start with ``keccak256(signature)[:4]``; the rest is decoded with eth_abi.
    """
    match = _SIGNATURE.fullmatch(signature)
    assert match, f"not an error signature: {signature}"
    with pytest.raises(ContractCustomError) as info:
        fn.call({"from": sender})
    data = info.value.data
    assert isinstance(data, str), f"no revert data: {info.value!r}"
    revert = bytes.fromhex(data.removeprefix("0x"))
    selector = keccak(text=signature)[:4]
    assert revert[:4] == selector, (
        f"reverted with selector 0x{revert[:4].hex()}, expected {signature} (0x{selector.hex()})"
    )
    types = [t for t in match.group(2).split(",") if t]
    values = decode(types, revert[4:])
    return tuple(
        to_checksum_address(v) if t == "address" else v for t, v in zip(types, values, strict=True)
    )


def mock_wallet_artifact() -> tuple[ABI, HexStr]:
    """ABI and bytecode of ``MockWallet`` (contracts/test/utils/Mocks.sol), a test-only contract.

    Compiled with the project's settings on first use and cached under tests/artifacts/ (not
    committed), keyed by the source and the settings.
    """
    source = ROOT / "contracts" / "test" / "utils" / "Mocks.sol"
    settings = foundry_settings(ROOT / "foundry.toml")
    key = hashlib.sha256(
        source.read_bytes() + json.dumps(settings, sort_keys=True).encode()
    ).hexdigest()
    cache = ROOT / "tests" / "artifacts" / f"MockWallet-{key[:16]}.json"
    if not cache.exists():
        solc = ROOT / "scripts" / "solc"
        result = compile_contracts([source], root=ROOT, settings=settings, solc=solc)
        wallet = result.contracts["MockWallet"]
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"abi": wallet.abi, "bytecode": wallet.bytecode}))
    data = json.loads(cache.read_text())
    return data["abi"], HexStr(data["bytecode"])


def _version(seed: str) -> tuple[bytes, bytes, bytes, bytes]:
    return (
        keccak(text=f"{seed}:rows"),
        keccak(text=f"{seed}:contributors"),
        keccak(text=f"{seed}:schema"),
        keccak(text=f"{seed}:metadata"),
    )

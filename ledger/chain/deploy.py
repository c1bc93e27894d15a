"""Deploying the four contracts, wiring their roles, and the manifest per chain id.

`deploy` is idempotent: when ``deployments/<chainId>.json`` describes contracts that are still on
this chain (same block hash at the deploy block, same code at every address) and the shipped
artifacts have not changed, it sends nothing and returns the manifest as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound

from ledger.chain.artifacts import CONTRACT_NAMES, load_artifact
from ledger.chain.sender import TxSender
from ledger.errors import DeploymentMismatchError, DeploymentNotFoundError

__all__ = [
    "DEFAULT_FEE_BPS",
    "DEFAULT_REFUND_DELAY",
    "Deployment",
    "contracts_of",
    "deploy",
    "load_deployment",
    "manifest_path",
]

DEFAULT_FEE_BPS: Final = 250
DEFAULT_REFUND_DELAY: Final = 86_400


@dataclass(frozen=True)
class Deployment:
    """What ``deployments/<chainId>.json`` records."""

    chain_id: int
    deploy_block: int
    deploy_block_hash: str
    deployer: ChecksumAddress
    addresses: dict[str, ChecksumAddress]
    code_hashes: dict[str, str]
    artifact_hashes: dict[str, str]
    roles: dict[str, list[ChecksumAddress]] = field(default_factory=dict)

    def to_json(self) -> str:
        """The manifest's canonical JSON text."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def manifest_path(deployments_dir: Path, chain_id: int) -> Path:
    """Where the manifest of `chain_id` lives."""
    return deployments_dir / f"{chain_id}.json"


def load_deployment(deployments_dir: Path, chain_id: int) -> Deployment:
    """Read the manifest of `chain_id`.

    Raises:
        DeploymentNotFoundError: there is none (run `ledger deploy`), or it is unreadable.
    """
    path = manifest_path(deployments_dir, chain_id)
    try:
        data = json.loads(path.read_text())
        deployment = Deployment(**data)
    except FileNotFoundError:
        raise DeploymentNotFoundError(chain_id, path) from None
    except (OSError, ValueError, TypeError) as exc:
        raise DeploymentNotFoundError(chain_id, path, f"unreadable manifest ({exc})") from None
    if deployment.chain_id != chain_id:
        raise DeploymentNotFoundError(
            chain_id, path, f"the manifest is for chain id {deployment.chain_id}"
        )
    return deployment


def contracts_of(w3: Web3, deployment: Deployment) -> dict[str, Contract]:
    """web3 contract objects of a deployment, by contract name."""
    return _bind(w3, deployment.addresses)


def _bind(w3: Web3, addresses: dict[str, ChecksumAddress]) -> dict[str, Contract]:
    return {
        name: w3.eth.contract(address=address, abi=load_artifact(name).abi)
        for name, address in addresses.items()
    }


def artifact_hashes() -> dict[str, str]:
    """SHA-256 of each shipped contract's creation bytecode."""
    return {
        name: hashlib.sha256(bytes.fromhex(load_artifact(name).bytecode[2:])).hexdigest()
        for name in CONTRACT_NAMES
    }


def deploy(
    w3: Web3,
    sender: TxSender,
    deployments_dir: Path,
    *,
    fee_bps: int = DEFAULT_FEE_BPS,
    refund_delay: int = DEFAULT_REFUND_DELAY,
    redeploy: bool = False,
) -> tuple[Deployment, bool]:
    """Deploy and wire the contracts unless this chain already has them.

    The sender becomes admin, settler and refunder; `UsageLedger` gets the roles that let it
    consume grants and capture escrows. Returns the deployment and whether anything was sent.

    Raises:
        DeploymentMismatchError: the chain has a deployment from other artifacts (pass
            `redeploy` to replace it).
        ContractRevert, TransactionFailedError, RpcUnavailableError: a transaction failed.
    """
    chain_id = w3.eth.chain_id
    path = manifest_path(deployments_dir, chain_id)
    current_hashes = artifact_hashes()
    if path.exists() and not redeploy:
        existing = load_deployment(deployments_dir, chain_id)
        if _still_on_chain(w3, existing):
            if existing.artifact_hashes != current_hashes:
                changed = sorted(
                    n
                    for n in CONTRACT_NAMES
                    if existing.artifact_hashes.get(n) != current_hashes[n]
                )
                raise DeploymentMismatchError(chain_id, path, changed)
            return existing, False

    me = sender.address
    registry, receipt = sender.deploy(load_artifact("DataRegistry"), me)
    grants, _ = sender.deploy(load_artifact("AccessGrants"), registry, me)
    vault, _ = sender.deploy(load_artifact("RevenueVault"), me, fee_bps, me, refund_delay)
    usage, _ = sender.deploy(load_artifact("UsageLedger"), registry, grants, vault)
    addresses = {
        "DataRegistry": registry,
        "AccessGrants": grants,
        "RevenueVault": vault,
        "UsageLedger": usage,
    }
    contracts = _bind(w3, addresses)
    wiring = [
        ("AccessGrants", "CONSUMER_ROLE", usage),
        ("RevenueVault", "CAPTURER_ROLE", usage),
        ("RevenueVault", "SETTLER_ROLE", me),
        ("RevenueVault", "REFUNDER_ROLE", me),
    ]
    roles: dict[str, list[ChecksumAddress]] = {"DEFAULT_ADMIN_ROLE": [me]}
    for name, role_name, account in wiring:
        contract = contracts[name]
        role = contract.functions[role_name]().call()
        if not contract.functions.hasRole(role, account).call():
            sender.send(contract.functions.grantRole(role, account))
        roles.setdefault(f"{name}.{role_name}", []).append(account)
    block = receipt["blockNumber"]
    deployment = Deployment(
        chain_id=chain_id,
        deploy_block=block,
        deploy_block_hash=receipt["blockHash"].to_0x_hex(),
        deployer=me,
        addresses=addresses,
        code_hashes={n: Web3.keccak(w3.eth.get_code(a)).to_0x_hex() for n, a in addresses.items()},
        artifact_hashes=current_hashes,
        roles=roles,
    )
    deployments_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(deployment.to_json())
    os.replace(tmp, path)
    return deployment, True


def _still_on_chain(w3: Web3, deployment: Deployment) -> bool:
    """Whether the deploy block and every contract's code are still what the manifest says."""
    try:
        block = w3.eth.get_block(deployment.deploy_block)
    except BlockNotFound:
        return False  # a chain shorter than the deploy block: another chain
    if block["hash"].to_0x_hex() != deployment.deploy_block_hash:
        return False
    return all(
        Web3.keccak(w3.eth.get_code(to_checksum_address(address))).to_0x_hex()
        == deployment.code_hashes.get(name)
        for name, address in deployment.addresses.items()
    )

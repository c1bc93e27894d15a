"""The chain as the job pipeline sees it: escrows, the grant re-check, the usage record, refunds.

One `JobChain` per process binds the deployment's four contracts. Reads say whether a step's
transaction landed (``escrowOf``, ``receiptOf``), so the pipeline can ask the chain before it
sends anything again; writes go through `TxSender` (nonce lock, retries, no double broadcast).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import encode
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from ledger.chain.client import call
from ledger.chain.deploy import Deployment, contracts_of
from ledger.chain.sender import TxSender
from ledger.rights.check import Decision, JobRequest, check_onchain
from ledger.rights.typed_data import Grant, grant_as_tuple, grant_digest

__all__ = ["ERC20_ABI", "ZERO_ADDRESS", "EscrowState", "EscrowStatus", "GrantUse", "JobChain"]

ZERO_ADDRESS: Final = "0x0000000000000000000000000000000000000000"

#: The two ERC-20 functions a consumer needs to fund an escrow in a token.
ERC20_ABI: Final[list[dict[str, Any]]] = [
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]


class EscrowStatus(enum.IntEnum):
    """``IRevenueVault.EscrowStatus``."""

    NONE = 0
    HELD = 1
    CAPTURED = 2
    REFUNDED = 3


@dataclass(frozen=True, slots=True)
class EscrowState:
    """An escrow as the vault holds it."""

    token: ChecksumAddress
    amount: int
    status: EscrowStatus
    payer: ChecksumAddress
    refund_after: int


@dataclass(frozen=True, slots=True)
class GrantUse:
    """One grant's part of a job record (``IUsageLedger.GrantUse``)."""

    grant: Grant
    dataset_version: int
    uses: int
    epsilon: int


class JobChain:
    """The deployment's contracts, bound for the pipeline."""

    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        self.w3 = w3
        self.deployment = deployment
        contracts = contracts_of(w3, deployment)
        self.registry: Contract = contracts["DataRegistry"]
        self.grants: Contract = contracts["AccessGrants"]
        self.vault: Contract = contracts["RevenueVault"]
        self.usage: Contract = contracts["UsageLedger"]
        self._commitments: dict[tuple[int, int], bytes] = {}

    @property
    def chain_id(self) -> int:
        """The deployment's chain id."""
        return self.deployment.chain_id

    def grant_id(self, grant: Grant) -> bytes:
        """The grant's id on this chain (its EIP-712 digest)."""
        return grant_digest(grant, self.chain_id, self.grants.address)

    @staticmethod
    def escrow_id(job_id: bytes, grant_id: bytes, payer: str) -> bytes:
        """``EscrowIds.derive``: keccak256(abi.encode(jobId, grantId, payer))."""
        return keccak(encode(["bytes32", "bytes32", "address"], [job_id, grant_id, payer]))

    def escrow_of(self, escrow_id: bytes) -> EscrowState:
        """The vault's record of an escrow (status NONE if there is none)."""
        token, amount, status, payer, refund_after = call(self.vault.functions.escrowOf(escrow_id))
        return EscrowState(
            Web3.to_checksum_address(token),
            int(amount),
            EscrowStatus(status),
            Web3.to_checksum_address(payer),
            int(refund_after),
        )

    def receipt_of(self, job_id: bytes) -> bytes:
        """The receipt hash recorded for `job_id` (32 zero bytes if none)."""
        return bytes(call(self.usage.functions.receiptOf(job_id)))

    def head_version(self, dataset_id: int) -> int:
        """The latest version of a dataset.

        Raises:
            ContractRevert: the dataset is not registered (``DataRegistryUnknownDataset``).
        """
        head = call(self.registry.functions.headOf(dataset_id))
        return int(head[0])

    def commitment_of(self, dataset_id: int, version: int) -> bytes:
        """The committed Merkle root of a dataset version (immutable, so cached)."""
        key = (dataset_id, version)
        if key not in self._commitments:
            stored = call(self.registry.functions.versionOf(dataset_id, version))
            self._commitments[key] = bytes(stored[0])
        return self._commitments[key]

    def grant_state(self, grant_id: bytes) -> tuple[int, int]:
        """Uses and micro-epsilon spent so far of an issued grant."""
        uses, spent, *_ = call(self.grants.functions.stateOf(grant_id))
        return int(uses), int(spent)

    def now(self) -> int:
        """The latest block's timestamp."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def check(self, grant: Grant, job: JobRequest) -> Decision:
        """The chain's own answer to whether `grant` allows `job` (``check_onchain``)."""
        return check_onchain(self.grants, self.registry, grant, job)

    def escrow(
        self, sender: TxSender, job_id: bytes, grant_id: bytes, token: str, amount: int
    ) -> TxReceipt:
        """Escrow `amount` of `token` (ETH if the zero address) for one grant of a job, paid by
        `sender` (the consumer); approves the vault first for a token.

        Raises:
            ContractRevert, TransactionFailedError, RpcUnavailableError: as `TxSender.send`.
        """
        if token != ZERO_ADDRESS:
            erc20 = self.w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)
            allowance = call(erc20.functions.allowance(sender.address, self.vault.address))
            if allowance < amount:
                sender.send(erc20.functions.approve(self.vault.address, amount))
            return sender.send(self.vault.functions.escrow(job_id, grant_id, token, amount))
        fn = self.vault.functions.escrow(job_id, grant_id, token, amount)
        return sender.send(fn, value=amount)

    def record_usage(
        self,
        sender: TxSender,
        *,
        job_id: bytes,
        consumer: str,
        algorithm_hash: bytes,
        purpose: bytes,
        receipt_hash: bytes,
        uses: list[GrantUse],
    ) -> TxReceipt:
        """``UsageLedger.recordUsage`` from the executor.

        Raises:
            ContractRevert: e.g. ``UsageLedgerJobExists`` (recorded before), a grant error.
            TransactionFailedError, RpcUnavailableError: as `TxSender.send`.
        """
        job = (job_id, consumer, algorithm_hash, purpose, receipt_hash)
        grant_uses = [(grant_as_tuple(u.grant), u.dataset_version, u.uses, u.epsilon) for u in uses]
        return sender.send(self.usage.functions.recordUsage(job, grant_uses))

    def refund(self, sender: TxSender, escrow_id: bytes) -> TxReceipt:
        """``RevenueVault.refund`` (the sender needs REFUNDER_ROLE before the refund time).

        Raises:
            ContractRevert, TransactionFailedError, RpcUnavailableError: as `TxSender.send`.
        """
        return sender.send(self.vault.functions.refund(escrow_id))

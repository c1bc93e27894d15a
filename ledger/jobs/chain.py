"""The chain as the job pipeline sees it: escrows, the grant re-check, the usage record, refunds.

One `JobChain` per process binds the deployment's four contracts. Reads say whether a step's
transaction landed (``escrowOf``, ``receiptOf``), so the pipeline can ask the chain before it
sends anything again; writes go through `TxSender` (nonce lock, retries, no double broadcast).

The pipeline's hot reads and its ``recordUsage`` calldata are ABI-encoded here with ``eth_abi``
and precomputed selectors, and reads go straight to the provider (one JSON-RPC call, no web3
middleware): most of a job's CPU went into web3's generic encoding and formatting. Only a clean
answer is taken from that path; a revert, an RPC error or anything unexpected repeats the read
through web3 (`ledger.chain.client.call`), so errors are exactly the project's usual ones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final, cast

import requests
from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_typing import ABIFunction, ChecksumAddress
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.types import RPCEndpoint, TxReceipt

from ledger.chain.client import call
from ledger.chain.deploy import Deployment, contracts_of
from ledger.chain.sender import TxSender
from ledger.rights.check import MAX_PAYMENT, Decision, JobRequest, check_onchain
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


@dataclass(frozen=True, slots=True)
class _Method:
    """A contract function's selector and ABI types, computed once."""

    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


_ALLOWED: Final = Decision(True)
# Faults of the direct read path after which the read is repeated through web3.
_DIRECT_FAULTS: Final = (
    requests.RequestException,
    OSError,
    DecodingError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
)


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
        self._grant_ids: dict[Grant, bytes] = {}
        self._methods: dict[tuple[str, str], _Method] = {}

    @property
    def chain_id(self) -> int:
        """The deployment's chain id."""
        return self.deployment.chain_id

    def grant_id(self, grant: Grant) -> bytes:
        """The grant's id on this chain (its EIP-712 digest; a grant's terms never change, so
        cached)."""
        cached = self._grant_ids.get(grant)
        if cached is None:
            if len(self._grant_ids) > 4096:
                self._grant_ids.clear()
            cached = grant_digest(grant, self.chain_id, self.grants.address)
            self._grant_ids[grant] = cached
        return cached

    @staticmethod
    def escrow_id(job_id: bytes, grant_id: bytes, payer: str) -> bytes:
        """``EscrowIds.derive``: keccak256(abi.encode(jobId, grantId, payer))."""
        return keccak(encode(["bytes32", "bytes32", "address"], [job_id, grant_id, payer]))

    def escrow_of(self, escrow_id: bytes) -> EscrowState:
        """The vault's record of an escrow (status NONE if there is none)."""
        ((token, amount, status, payer, refund_after),) = self._view(
            self.vault, "escrowOf", escrow_id
        )
        return EscrowState(
            Web3.to_checksum_address(token),
            int(amount),
            EscrowStatus(status),
            Web3.to_checksum_address(payer),
            int(refund_after),
        )

    def receipt_of(self, job_id: bytes) -> bytes:
        """The receipt hash recorded for `job_id` (32 zero bytes if none)."""
        (recorded,) = self._view(self.usage, "receiptOf", job_id)
        return bytes(recorded)

    def head_version(self, dataset_id: int) -> int:
        """The latest version of a dataset.

        Raises:
            ContractRevert: the dataset is not registered (``DataRegistryUnknownDataset``).
        """
        (head,) = self._view(self.registry, "headOf", dataset_id)
        return int(head[0])

    def commitment_of(self, dataset_id: int, version: int) -> bytes:
        """The committed Merkle root of a dataset version (immutable, so cached)."""
        key = (dataset_id, version)
        if key not in self._commitments:
            (stored,) = self._view(self.registry, "versionOf", dataset_id, version)
            self._commitments[key] = bytes(stored[0])
        return self._commitments[key]

    def grant_state(self, grant_id: bytes) -> tuple[int, int]:
        """Uses and micro-epsilon spent so far of an issued grant."""
        ((uses, spent, *_),) = self._view(self.grants, "stateOf", grant_id)
        return int(uses), int(spent)

    def now(self) -> int:
        """The latest block's timestamp."""
        try:
            response = self.w3.provider.make_request(
                RPCEndpoint("eth_getBlockByNumber"), ["latest", False]
            )
            return int(response["result"]["timestamp"], 16)
        except _DIRECT_FAULTS:
            return int(self.w3.eth.get_block("latest")["timestamp"])

    def check(self, grant: Grant, job: JobRequest) -> Decision:
        """The chain's own answer to whether `grant` allows `job` (``check_onchain``: the
        executor is allowed and ``checkUse`` passes). Reads directly when both answer cleanly;
        any refusal is decided by ``check_onchain`` itself."""
        if job.dataset_id == grant.dataset_id and grant.price_per_use * job.uses <= MAX_PAYMENT:
            allowed = self._try_view(self.registry, "isExecutor", grant.dataset_id, job.executor)
            if allowed is not None and allowed[0] is True:
                use = (job.consumer, job.algorithm_hash, job.purpose, job.uses, job.epsilon)
                if self._try_view(self.grants, "checkUse", grant_as_tuple(grant), use) is not None:
                    return _ALLOWED
        return check_onchain(self.grants, self.registry, grant, job)

    def check_with_state(self, grant: Grant, job: JobRequest) -> tuple[Decision, int]:
        """`check`, and if allowed the micro-epsilon the grant has spent (`grant_state`): the
        three reads go to the node in one JSON-RPC batch when it answers them all cleanly."""
        if job.dataset_id == grant.dataset_id and grant.price_per_use * job.uses <= MAX_PAYMENT:
            use = (job.consumer, job.algorithm_hash, job.purpose, job.uses, job.epsilon)
            answers = self._try_views(
                [
                    (self.registry, "isExecutor", (grant.dataset_id, job.executor)),
                    (self.grants, "checkUse", (grant_as_tuple(grant), use)),
                    (self.grants, "stateOf", (self.grant_id(grant),)),
                ]
            )
            if answers is not None and answers[0][0] is True:
                ((_, spent, *_),) = answers[2]
                return _ALLOWED, int(spent)
        decision = self.check(grant, job)
        if not decision.allowed:
            return decision, 0
        return decision, self.grant_state(self.grant_id(grant))[1]

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
        data = self.calldata(self.usage, "recordUsage", job, grant_uses)
        return sender.send_raw(to=self.usage.address, data=data, value=0, gas=None)

    def refund(self, sender: TxSender, escrow_id: bytes) -> TxReceipt:
        """``RevenueVault.refund`` (the sender needs REFUNDER_ROLE before the refund time).

        Raises:
            ContractRevert, TransactionFailedError, RpcUnavailableError: as `TxSender.send`.
        """
        return sender.send(self.vault.functions.refund(escrow_id))

    # -- direct ABI path ------------------------------------------------------------------

    def calldata(self, contract: Contract, name: str, *args: Any) -> str:
        """``0x`` calldata of `contract`'s function `name` with `args` (``eth_abi``)."""
        method = self._method(contract, name)
        return "0x" + (method.selector + encode(list(method.inputs), list(args))).hex()

    def _method(self, contract: Contract, name: str) -> _Method:
        key = (contract.address, name)
        method = self._methods.get(key)
        if method is None:
            (abi,) = [
                cast(ABIFunction, e)
                for e in contract.abi
                if e.get("type") == "function" and e.get("name") == name
            ]
            method = _Method(
                function_abi_to_4byte_selector(abi),
                tuple(get_abi_input_types(abi)),
                tuple(get_abi_output_types(abi)),
            )
            self._methods[key] = method
        return method

    def _try_view(self, contract: Contract, name: str, *args: Any) -> tuple[Any, ...] | None:
        """A view's outputs read with one direct ``eth_call``; None unless it answered cleanly."""
        method = self._method(contract, name)
        try:
            data = self.calldata(contract, name, *args)
            response = self.w3.provider.make_request(
                RPCEndpoint("eth_call"), [{"to": contract.address, "data": data}, "latest"]
            )
            result = response.get("result")
            if "error" in response or not isinstance(result, str):
                return None
            return tuple(decode(list(method.outputs), bytes.fromhex(result[2:])))
        except _DIRECT_FAULTS:
            return None

    def _try_views(
        self, calls: list[tuple[Contract, str, tuple[Any, ...]]]
    ) -> list[tuple[Any, ...]] | None:
        """Several views' outputs read in one JSON-RPC batch; None unless all answered cleanly."""
        try:
            requests_ = [
                (
                    RPCEndpoint("eth_call"),
                    [{"to": c.address, "data": self.calldata(c, name, *args)}, "latest"],
                )
                for c, name, args in calls
            ]
            batch = getattr(self.w3.provider, "make_batch_request", None)
            if batch is None:
                return None
            responses = batch(requests_)
            if not isinstance(responses, list) or len(responses) != len(calls):
                return None
            answers = []
            for (contract, name, _), response in zip(calls, responses, strict=True):
                result = response.get("result")
                if "error" in response or not isinstance(result, str):
                    return None
                outputs = list(self._method(contract, name).outputs)
                answers.append(tuple(decode(outputs, bytes.fromhex(result[2:]))))
            return answers
        except (*_DIRECT_FAULTS, NotImplementedError):
            return None

    def _view(self, contract: Contract, name: str, *args: Any) -> tuple[Any, ...]:
        """A view's outputs: directly, or through web3 (`call`) with its errors.

        Raises:
            ContractRevert: the call reverted. RpcUnavailableError: the node does not answer.
        """
        direct = self._try_view(contract, name, *args)
        if direct is not None:
            return direct
        value = call(getattr(contract.functions, name)(*args))
        if len(self._method(contract, name).outputs) == 1:
            return (value,)
        return tuple(value)

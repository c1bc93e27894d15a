"""Sending transactions safely: nonces under concurrency, EIP-1559 fees, gas estimates, retries.

One `TxSender` per signing key and process. Threads share it: a lock covers only nonce
assignment and broadcast, so many transactions are in flight at once while nonces never collide.
A transaction that would revert is refused at gas estimation, before a nonce is spent, with the
contract's custom error decoded (`ledger.chain.reverts`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress, HexStr
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import Nonce, RPCEndpoint, TxParams, TxReceipt, Wei

from ledger.chain.artifacts import ContractArtifact
from ledger.chain.client import endpoint_of
from ledger.chain.reverts import revert_from
from ledger.errors import ChainError, RpcUnavailableError, TransactionFailedError

__all__ = ["SendPolicy", "TxSender"]

T = TypeVar("T")

_TRANSIENT: Final = (
    requests.ConnectionError,
    requests.Timeout,
    ConnectionError,
    TimeoutError,
)
_NONCE_TOO_LOW: Final = ("nonce too low", "already known", "replacement transaction underpriced")


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """How hard a `TxSender` tries.

    Args:
        confirmations: Blocks, the including one counted, before a receipt is returned.
        retries: Attempts per RPC call on transient faults (connection, timeout, HTTP 5xx/429).
        backoff: First retry delay in seconds; doubles each attempt.
        gas_margin: Multiplier on the node's gas estimate.
        receipt_timeout: Seconds to wait for a transaction to be mined (plus 15 s for each
            confirmation after the first).
        poll_interval: Seconds between receipt polls.
        fee_ttl: Seconds the fee quote (latest base fee and tip) is reused between sends; the
            max fee is twice the base fee plus the tip, so a quote a second old still covers
            several blocks of rising base fees.
    """

    confirmations: int = 1
    retries: int = 5
    backoff: float = 0.1
    gas_margin: float = 1.2
    receipt_timeout: float = 120.0
    poll_interval: float = 0.05
    fee_ttl: float = 1.0


class TxSender:
    """Signs with one local key and sends through `w3`; safe to share between threads."""

    def __init__(self, w3: Web3, private_key: str, policy: SendPolicy | None = None) -> None:
        self.w3 = w3
        self._account: LocalAccount = Account.from_key(private_key)
        self.policy = policy or SendPolicy()
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self._fee_quote: tuple[float, TxParams] | None = None

    @property
    def address(self) -> ChecksumAddress:
        """The sending account's address."""
        return self._account.address

    def send(self, fn: ContractFunction, *, value: int = 0, gas: int | None = None) -> TxReceipt:
        """Send a contract call and wait for its confirmed receipt.

        Raises:
            ContractRevert: the call would revert, or reverted once mined (the decoded custom
                error; ``error == "unknown"`` with the raw data when no shipped ABI declares it).
            TransactionFailedError: it was not sent, reverted with no data to replay, or was not
                confirmed in time.
            RpcUnavailableError: the node kept failing after the retries.
        """
        assert fn.address is not None
        data = fn._encode_transaction_data()
        return self.send_raw(to=fn.address, data=data, value=value, gas=gas)

    def deploy(self, artifact: ContractArtifact, *args: Any) -> tuple[ChecksumAddress, TxReceipt]:
        """Deploy `artifact` with constructor `args`; returns the address and receipt.

        Raises:
            ContractRevert, TransactionFailedError, RpcUnavailableError: as `send`.
        """
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self.send_raw(to=None, data=data, value=0, gas=None)
        address = receipt["contractAddress"]
        if address is None:
            raise TransactionFailedError(
                receipt["transactionHash"].to_0x_hex(), "no contract created"
            )
        return address, receipt

    def send_raw(
        self, *, to: ChecksumAddress | None, data: HexStr | str, value: int, gas: int | None
    ) -> TxReceipt:
        """Send a transaction with calldata `data` (a deployment when `to` is None)."""
        tx: TxParams = {"from": self.address, "data": HexStr(data), "value": Wei(value)}
        if to is not None:
            tx["to"] = to
        if gas is None:
            gas = int(self._estimate(tx) * self.policy.gas_margin)
        tx["gas"] = gas
        tx["chainId"] = self._get_chain_id()
        tx.update(self._fees())
        tx_hash = self._broadcast(tx)
        return self._confirm(tx_hash, tx)

    def _estimate(self, tx: TxParams) -> int:
        direct = self._estimate_direct(tx)
        if direct is not None:
            return direct
        try:
            return self._retry(lambda: self.w3.eth.estimate_gas(tx))
        except ContractLogicError as exc:  # custom errors and panics are subclasses
            raise revert_from(exc) from None

    def _estimate_direct(self, tx: TxParams) -> int | None:
        """The node's estimate asked with one plain JSON-RPC call (web3's request formatting
        costs more CPU than the call); None unless it answered with a number. Any other answer
        (a revert, an error, no answer) is left to the web3 path, which raises as usual."""
        params: dict[str, Any] = {
            "from": tx["from"],
            "data": tx["data"],
            "value": hex(int(tx.get("value", 0))),
        }
        if "to" in tx:
            params["to"] = tx["to"]
        try:
            response = self.w3.provider.make_request(RPCEndpoint("eth_estimateGas"), [params])
            result = response.get("result")
            if "error" in response or not isinstance(result, str):
                return None
            return int(result, 16)
        except (*_TRANSIENT, requests.RequestException, OSError, ValueError, TypeError):
            return None

    def _get_chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._retry(lambda: self.w3.eth.chain_id)
        return self._chain_id

    def _fees(self) -> TxParams:
        quote = self._fee_quote
        if quote is not None and time.monotonic() - quote[0] < self.policy.fee_ttl:
            return dict(quote[1])  # type: ignore[return-value]
        fees = self._quote_fees()
        self._fee_quote = (time.monotonic(), fees)
        return dict(fees)  # type: ignore[return-value]

    def _quote_fees(self) -> TxParams:
        block = self._retry(lambda: self.w3.eth.get_block("latest"))
        base = int(block.get("baseFeePerGas", 0) or 0)
        try:
            tip = int(self._retry(lambda: self.w3.eth.max_priority_fee))
        except (Web3RPCError, ValueError):
            tip = Web3.to_wei(1, "gwei")
        return {"maxPriorityFeePerGas": Wei(tip), "maxFeePerGas": Wei(2 * base + tip)}

    def _broadcast(self, tx: TxParams) -> HexBytes:
        with self._lock:
            if self._next_nonce is None:
                self._next_nonce = self._pending_nonce()
            for _ in range(3):
                tx["nonce"] = Nonce(self._next_nonce)
                raw = self._account.sign_transaction(cast(dict[str, Any], tx)).raw_transaction
                # The hash is known before sending: after a timeout or an "already known"
                # answer the node may hold this very transaction, which must not be sent twice.
                tx_hash = HexBytes(keccak(raw))
                try:
                    self._send_signed(raw)
                except Web3RPCError as exc:
                    if self._node_has(tx_hash):
                        self._next_nonce += 1
                        return tx_hash
                    if any(s in str(exc).lower() for s in _NONCE_TOO_LOW):
                        # Another process used this key: take the next free nonce.
                        self._next_nonce = self._pending_nonce()
                        continue
                    self._next_nonce = self._pending_nonce()
                    raise TransactionFailedError("(not sent)", str(exc)) from None
                except ChainError:
                    if self._node_has(tx_hash):
                        self._next_nonce += 1
                        return tx_hash
                    # Unknown whether the node took it: resynchronise before the next send.
                    self._next_nonce = None
                    raise
                self._next_nonce += 1
                return tx_hash
            raise TransactionFailedError("(not sent)", "nonce kept colliding with another sender")

    def _send_signed(self, raw: bytes) -> HexBytes:
        return self._retry(lambda: self.w3.eth.send_raw_transaction(raw))

    def _node_has(self, tx_hash: HexBytes) -> bool:
        """Whether the node knows the transaction (pending or mined); False if it cannot say."""
        try:
            self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        except (*_TRANSIENT, requests.HTTPError, Web3RPCError):
            return False
        return True

    def _pending_nonce(self) -> int:
        return self._retry(lambda: self.w3.eth.get_transaction_count(self.address, "pending"))

    def _confirm(self, tx_hash: HexBytes, tx: TxParams) -> TxReceipt:
        policy = self.policy
        # Waiting for N confirmations takes N blocks: allow ~15 s per extra block.
        deadline = time.monotonic() + policy.receipt_timeout + 15.0 * (policy.confirmations - 1)
        while True:
            try:
                receipt = self._retry(lambda: self.w3.eth.get_transaction_receipt(tx_hash))
            except (TransactionNotFound, TimeExhausted):
                receipt = None
            if receipt is not None:
                if policy.confirmations <= 1:
                    break  # the including block is the one confirmation
                head = self._retry(lambda: self.w3.eth.block_number)
                if head >= receipt["blockNumber"] + policy.confirmations - 1:
                    break
            if time.monotonic() > deadline:
                raise TransactionFailedError(tx_hash.to_0x_hex(), "not confirmed in time")
            time.sleep(policy.poll_interval)
        if receipt["status"] != 1:
            raise self._revert_reason(tx, receipt)
        return receipt

    def _revert_reason(self, tx: TxParams, receipt: TxReceipt) -> ChainError:
        # Replay the call at the block that included it to recover the revert data.
        call: TxParams = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value")}  # type: ignore[assignment]
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)
        except ContractLogicError as exc:
            return revert_from(exc)
        except Web3RPCError:
            pass
        return TransactionFailedError(receipt["transactionHash"].to_0x_hex(), "reverted")

    def _retry(self, call: Callable[[], T]) -> T:
        delay = self.policy.backoff
        for attempt in range(self.policy.retries):
            try:
                return call()
            except _TRANSIENT as exc:
                error: Exception = exc
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status != 429 and status < 500:
                    raise
                error = exc
            if attempt + 1 < self.policy.retries:
                time.sleep(delay)
                delay *= 2
        # The exception's text can repeat the URL's path, where API keys live: name its type.
        raise RpcUnavailableError(endpoint_of(self.w3), type(error).__name__)

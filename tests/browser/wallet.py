"""A test wallet injected into the page as ``window.ethereum`` (EIP-1193).

The page's ``request()`` goes to Python through ``expose_function``: accounts and chain id come
from the anvil node, ``personal_sign`` and ``eth_signTypedData_v4`` are signed with the account's
key by eth_account, ``eth_sendTransaction`` is signed here and sent to anvil, every other method
is forwarded to the node. Each request is logged, and the next one can be made to fail as a user
rejection (code 4001) would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

__all__ = ["INIT_SCRIPT", "TestWallet"]

#: Defines ``window.ethereum`` before any page script runs; ``__ledgerWallet`` is exposed by
#: `TestWallet.install`.
INIT_SCRIPT = """
(() => {
  const listeners = {};
  window.ethereum = {
    isLedgerTestWallet: true,
    async request({ method, params }) {
      const answer = JSON.parse(
        await window.__ledgerWallet(JSON.stringify({ method, params: params ?? [] })));
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.result;
    },
    on(event, handler) { (listeners[event] ??= []).push(handler); },
    removeListener(event, handler) {
      listeners[event] = (listeners[event] ?? []).filter((h) => h !== handler);
    },
    emit(event, value) { for (const h of listeners[event] ?? []) h(value); },
  };
})();
"""

_SIGNING = ("personal_sign", "eth_signTypedData_v4", "eth_sendTransaction")


@dataclass
class TestWallet:
    """One account's wallet on an anvil node."""

    w3: Web3
    account: LocalAccount
    calls: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    reject_next: set[str] = field(default_factory=set)

    __test__ = False  # not a pytest test class

    @classmethod
    def of(cls, w3: Web3, key: str | bytes) -> TestWallet:
        """The wallet of private key `key`."""
        return cls(w3, Account.from_key(key))

    @property
    def address(self) -> str:
        """The wallet's account (checksummed)."""
        return str(self.account.address)

    def install(self, context: Any) -> None:
        """Inject the wallet into every page of a Playwright browser context."""
        context.expose_function("__ledgerWallet", self.handle)
        context.add_init_script(INIT_SCRIPT)

    def handle(self, payload: str) -> str:
        """Answer one EIP-1193 request (JSON in, JSON out)."""
        request = json.loads(payload)
        method, params = str(request["method"]), list(request.get("params") or [])
        self.calls.append(method)
        if method in self.reject_next:
            self.reject_next.discard(method)
            return json.dumps({"error": {"code": 4001, "message": "User rejected the request."}})
        try:
            result = self._answer(method, params)
        except Exception as exc:  # reported to the page as a wallet error, like a real wallet
            return json.dumps({"error": {"code": -32603, "message": f"{type(exc).__name__}"}})
        return json.dumps({"result": result})

    def _answer(self, method: str, params: list[Any]) -> Any:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.address]
        if method == "eth_chainId":
            return hex(self.w3.eth.chain_id)
        if method in _SIGNING:
            return self._sign(method, params)
        response = self.w3.provider.make_request(RPCEndpoint(method), params)
        if "error" in response:
            raise RuntimeError(str(response["error"]))
        return json.loads(Web3.to_json(response["result"]))

    def _sign(self, method: str, params: list[Any]) -> str:
        if method == "personal_sign":
            data, signer = params[0], params[1]
            self._check_signer(signer)
            message = encode_defunct(primitive=bytes.fromhex(str(data).removeprefix("0x")))
            return "0x" + bytes(self.account.sign_message(message).signature).hex()
        if method == "eth_signTypedData_v4":
            signer, typed = params[0], params[1]
            self._check_signer(signer)
            full = json.loads(typed) if isinstance(typed, str) else typed
            return "0x" + bytes(self.account.sign_typed_data(full_message=full).signature).hex()
        (tx,) = params
        self._check_signer(tx["from"])
        return self._send(tx)

    def _check_signer(self, address: str) -> None:
        if str(address).lower() != self.address.lower():
            raise PermissionError("the wallet holds another account")

    def _send(self, tx: dict[str, Any]) -> str:
        fields: dict[str, Any] = {
            "from": self.address,
            "to": Web3.to_checksum_address(tx["to"]),
            "data": tx.get("data", "0x"),
            "value": int(tx.get("value", "0x0"), 16),
        }
        gas = self.w3.eth.estimate_gas(fields)  # type: ignore[arg-type]
        base = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
        fields |= {
            "gas": gas * 12 // 10,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "chainId": self.w3.eth.chain_id,
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerGas": 2 * base + 10**9,
        }
        del fields["from"]
        signed = self.account.sign_transaction(fields)
        tx_hash = "0x" + bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction)).hex()
        self.sent.append(tx_hash)
        return tx_hash

"""The one way the ledger connects to a chain: checked, with errors that say what to do."""

from __future__ import annotations

from typing import Any, Final

import requests
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    Web3RPCError,
)
from web3.types import BlockIdentifier

from ledger.chain.reverts import decode_revert
from ledger.errors import ContractRevert, RpcUnavailableError, WrongChainError
from ledger.settings import Settings

__all__ = ["call", "connect"]

_TIMEOUT: Final = 10.0


def connect(settings: Settings, *, timeout: float = _TIMEOUT) -> Web3:
    """A web3 client for the configured node (or the embedded chain), checked to answer.

    Raises:
        RpcUnavailableError: the node does not answer (for the embedded chain: it is not up).
        WrongChainError: LEDGER_CHAIN_ID is set and the node reports another chain id.
    """
    url = settings.resolved_rpc_url
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
    try:
        chain_id = w3.eth.chain_id
    except (requests.RequestException, OSError, Web3RPCError, ValueError) as exc:
        hint = (
            "the embedded chain is not running: start it with `ledger chain up`"
            if settings.embedded
            else "check LEDGER_RPC_URL"
        )
        raise RpcUnavailableError(url, type(exc).__name__, hint) from None
    if settings.chain_id is not None and chain_id != settings.chain_id:
        raise WrongChainError(settings.chain_id, chain_id, "LEDGER_CHAIN_ID")
    return w3


def call(fn: ContractFunction, block: BlockIdentifier = "latest") -> Any:
    """Run a contract view (``eth_call``) with the project's errors.

    Raises:
        ContractRevert: the call reverted with a known error (decoded, typed).
        RpcUnavailableError: the node does not answer.
    """
    try:
        return fn.call(block_identifier=block)
    except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
        decoded = decode_revert(exc.data if isinstance(exc.data, str) else None)
        if decoded is not None:
            raise decoded from None
        raise ContractRevert("unknown", {"data": str(exc.data)}) from None
    except (requests.RequestException, OSError) as exc:
        endpoint = str(getattr(fn.w3.provider, "endpoint_uri", "") or "")
        raise RpcUnavailableError(endpoint, type(exc).__name__) from None

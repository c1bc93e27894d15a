"""The one way the ledger connects to a chain: checked, with errors that say what to do."""

from __future__ import annotations

from typing import Any, Final

import requests
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractLogicError,
    Web3RPCError,
)
from web3.types import BlockIdentifier

from ledger.chain.reverts import revert_from
from ledger.errors import RpcUnavailableError, WrongChainError
from ledger.settings import Settings

__all__ = ["call", "connect", "endpoint_of"]

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
    except ContractLogicError as exc:  # custom errors and panics are subclasses
        raise revert_from(exc) from None
    except (requests.RequestException, OSError) as exc:
        raise RpcUnavailableError(endpoint_of(fn.w3), type(exc).__name__) from None


def endpoint_of(w3: Web3) -> str:
    """The URL `w3` talks to, for error messages (the error redacts it)."""
    return str(getattr(w3.provider, "endpoint_uri", "") or "")

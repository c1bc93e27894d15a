"""The one way the ledger connects to a chain: checked, with errors that say what to do."""

from __future__ import annotations

from typing import Final

import requests
from web3 import Web3
from web3.exceptions import Web3RPCError

from ledger.errors import RpcUnavailableError, WrongChainError
from ledger.settings import Settings

__all__ = ["connect"]

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

"""Checking a grant's signature off chain exactly as ``AccessGrants`` does on chain.

EOAs: ECDSA over the EIP-712 digest, refusing malleable (high-s) signatures as OpenZeppelin's
ECDSA does. Contract wallets (any grantor with code): ERC-1271 ``isValidSignature`` by eth_call.
"""

from __future__ import annotations

from typing import Final

import requests
from eth_account import Account
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError
from web3 import Web3

from ledger.chain.client import call, endpoint_of
from ledger.errors import ContractRevert, RpcUnavailableError
from ledger.rights.typed_data import Grant, grant_digest

__all__ = ["ERC1271_MAGIC", "verify_grant_signature"]

#: What ``isValidSignature`` returns for a valid signature (its own selector).
ERC1271_MAGIC: Final = bytes.fromhex("1626ba7e")
_HALF_N: Final = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_ERC1271_ABI: Final = [
    {
        "type": "function",
        "name": "isValidSignature",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "", "type": "bytes4"}],
    }
]


def verify_grant_signature(
    w3: Web3, grant: Grant, signature: bytes, chain_id: int, grants_address: str
) -> bool:
    """Whether `signature` is `grant.grantor`'s over the grant, for that deployment and chain.

    Raises:
        RpcUnavailableError: the node does not answer (only asked for contract wallets).
    """
    digest = grant_digest(grant, chain_id, grants_address)
    try:
        code = w3.eth.get_code(grant.grantor)
    except (requests.RequestException, OSError) as exc:
        raise RpcUnavailableError(endpoint_of(w3), type(exc).__name__) from None
    if code:
        wallet = w3.eth.contract(address=grant.grantor, abi=_ERC1271_ABI)
        try:
            answer = call(wallet.functions.isValidSignature(digest, signature))
        except ContractRevert:
            return False  # a wallet that reverts does not vouch for the signature
        return bytes(answer) == ERC1271_MAGIC
    if len(signature) != 65 or int.from_bytes(signature[32:64], "big") > _HALF_N:
        return False
    if signature[64] not in (27, 28):
        return False
    try:
        signer = Account._recover_hash(digest, signature=signature)
    except (BadSignature, ValidationError, ValueError):
        return False
    return bool(signer == grant.grantor)

"""Grants as EIP-712 typed data: the exact ``eth_signTypedData_v4`` JSON a wallet signs.

`Grant` mirrors the Solidity struct ``IAccessGrants.Grant`` field by field (same order, same
types), and the EIP-712 domain is the one ``AccessGrants`` declares: name
``"Ledger AccessGrants"``, version ``"1"``, the chain id and the contract's address. The id of a
grant on chain (``AccessGrants.grantId``) is the EIP-712 digest of this JSON, which is what
`grant_digest` computes.

Integers in the JSON: every ``uintN`` value of ``message`` is a decimal string, always, whatever
its size. JavaScript numbers are exact only below 2^53, and every uint256 here as well as the
uint64 fields (``validUntil``, ``epsilonBudget``) may exceed that; one rule for all fields is
simpler for clients than a threshold. Wallets (MetaMask, ethers, viem), eth-account and anvil all
accept decimal strings for integer types. The domain's ``chainId`` stays a JSON number, the form
wallets compare with the chain they are connected to.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass, fields
from typing import Any, Final

from eth_account.messages import encode_typed_data
from eth_typing import ChecksumAddress
from eth_utils.address import (
    is_checksum_address,
    is_checksum_formatted_address,
    to_checksum_address,
)
from eth_utils.crypto import keccak

from ledger.errors import InvalidGrantError

__all__ = [
    "GRANT_DOMAIN_NAME",
    "GRANT_DOMAIN_VERSION",
    "GRANT_TYPE",
    "Grant",
    "GrantTuple",
    "grant_as_tuple",
    "grant_digest",
    "grant_typed_data",
    "check_value",
]

GRANT_DOMAIN_NAME: Final = "Ledger AccessGrants"
GRANT_DOMAIN_VERSION: Final = "1"

#: The EIP-712 ``Grant`` type, member by member, exactly as ``IAccessGrants.Grant`` declares it.
GRANT_TYPE: Final[tuple[tuple[str, str], ...]] = (
    ("datasetId", "uint256"),
    ("grantor", "address"),
    ("grantee", "address"),
    ("algorithmHash", "bytes32"),
    ("purpose", "bytes32"),
    ("validFrom", "uint64"),
    ("validUntil", "uint64"),
    ("maxUses", "uint32"),
    ("epsilonBudget", "uint64"),
    ("paymentToken", "address"),
    ("pricePerUse", "uint256"),
    ("nonce", "uint256"),
    ("deadline", "uint256"),
)

_DOMAIN_TYPE: Final = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
)

_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")

#: `grant_as_tuple`'s result: the struct's members in order, as web3 encodes a ``tuple``.
GrantTuple = tuple[
    int,
    ChecksumAddress,
    ChecksumAddress,
    bytes,
    bytes,
    int,
    int,
    int,
    int,
    ChecksumAddress,
    int,
    int,
    int,
]


@dataclass(frozen=True, slots=True)
class Grant:
    """The terms of a grant, as signed (Solidity ``IAccessGrants.Grant``, same order and types).

    Values are checked against their Solidity types only (range, length, address form);
    addresses are stored checksummed. Whether the terms make sense (a window that is not empty,
    at least one use, ...) is the contract's and the rights rules' business.

    Raises:
        InvalidGrantError: a value does not fit its Solidity type; names the field and the rule.
    """

    dataset_id: int
    grantor: ChecksumAddress
    grantee: ChecksumAddress
    algorithm_hash: bytes
    purpose: bytes
    valid_from: int
    valid_until: int
    max_uses: int
    epsilon_budget: int
    payment_token: ChecksumAddress
    price_per_use: int
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        for field, (solidity_name, solidity_type) in zip(fields(self), GRANT_TYPE, strict=True):
            value = getattr(self, field.name)
            object.__setattr__(self, field.name, _check(solidity_name, solidity_type, value))


def grant_typed_data(grant: Grant, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The ``eth_signTypedData_v4`` JSON object a wallet is asked to sign for `grant`.

    `verifying_contract` is the ``AccessGrants`` deployment on chain `chain_id`. The result is
    plain JSON (``json.dumps`` it for the RPC call); integers of ``message`` are decimal strings
    (see the module's docstring).

    Raises:
        InvalidGrantError: `chain_id` is not a positive uint256, or `verifying_contract` is not
            an address.
    """
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise InvalidGrantError("domain.chainId", "a positive integer", chain_id)
    contract = _check("domain.verifyingContract", "address", verifying_contract)
    message: dict[str, str] = {}
    for (name, solidity_type), value in zip(GRANT_TYPE, astuple(grant), strict=True):
        if solidity_type.startswith("uint"):
            message[name] = str(value)
        elif solidity_type == "bytes32":
            message[name] = "0x" + value.hex()
        else:
            message[name] = value
    return {
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in _DOMAIN_TYPE],
            "Grant": [{"name": n, "type": t} for n, t in GRANT_TYPE],
        },
        "primaryType": "Grant",
        "domain": {
            "name": GRANT_DOMAIN_NAME,
            "version": GRANT_DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": contract,
        },
        "message": message,
    }


def grant_digest(grant: Grant, chain_id: int, verifying_contract: str) -> bytes:
    """The 32-byte EIP-712 digest of `grant`: what the grantor signs and the grant's id on chain.

    Computed by eth-account from the `grant_typed_data` JSON, i.e.
    ``keccak256(0x19 0x01 || domainSeparator || hashStruct(grant))``.

    Raises:
        InvalidGrantError: as `grant_typed_data`.
    """
    signable = encode_typed_data(full_message=grant_typed_data(grant, chain_id, verifying_contract))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def grant_as_tuple(grant: Grant) -> GrantTuple:
    """`grant` as the ``tuple`` argument of a contract call (``issue``, ``grantId``, ...)."""
    return (
        grant.dataset_id,
        grant.grantor,
        grant.grantee,
        grant.algorithm_hash,
        grant.purpose,
        grant.valid_from,
        grant.valid_until,
        grant.max_uses,
        grant.epsilon_budget,
        grant.payment_token,
        grant.price_per_use,
        grant.nonce,
        grant.deadline,
    )


def check_value(name: str, solidity_type: str, value: object) -> Any:
    """`value` checked against `solidity_type` (``uintN``, ``bytes32``, ``address``).

    Raises:
        InvalidGrantError: it does not fit; names `name` and the rule.
    """
    return _check(name, solidity_type, value)


def _check(name: str, solidity_type: str, value: object) -> Any:
    """`value` checked against `solidity_type` (addresses returned checksummed)."""
    if solidity_type.startswith("uint"):
        bits = int(solidity_type[4:])
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
            raise InvalidGrantError(name, f"an integer in [0, 2^{bits})", value)
        return value
    if solidity_type == "address":
        # All lower case, all upper case, or mixed case that is a valid EIP-55 checksum.
        if (
            not isinstance(value, str)
            or not _ADDRESS.fullmatch(value)
            or (is_checksum_formatted_address(value) and not is_checksum_address(value))
        ):
            raise InvalidGrantError(
                name, "a 0x-prefixed 20-byte hex address (a valid checksum if mixed case)", value
            )
        return to_checksum_address(value)
    if solidity_type == "bytes32":
        if not isinstance(value, bytes) or len(value) != 32:
            raise InvalidGrantError(name, "exactly 32 bytes", value)
        return bytes(value)
    raise AssertionError(f"unsupported Solidity type {solidity_type}")  # GRANT_TYPE is fixed

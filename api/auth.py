"""Sign-In with Ethereum (EIP-4361): the message format, nonces and sessions.

The message is built and parsed here (the ``siwe`` package pins an older web3). A login checks,
in order: the message's form, domain, URI, version, chain id, nonce (issued here, unused, not
expired), issue/expiry/not-before times, then the signature: ECDSA recovery for accounts
without code (low-s, v 27/28), ERC-1271 ``isValidSignature`` on chain for contract wallets.
Nonces and sessions live in this process's memory, behind a lock; session ids are 32 random
bytes, and only their SHA-256 is kept, so a memory dump does not hand out live sessions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import requests
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.address import is_checksum_address, to_checksum_address
from eth_utils.exceptions import ValidationError
from web3 import Web3

from api.errors import ApiError
from ledger.chain.client import call, endpoint_of
from ledger.errors import ContractRevert, RpcUnavailableError
from ledger.rights.signatures import ERC1271_MAGIC

__all__ = [
    "AuthStore",
    "SessionInfo",
    "SiweMessage",
    "build_message",
    "parse_message",
    "verify_login",
]

_HEADER: Final = " wants you to sign in with your Ethereum account:"
_NONCE: Final = re.compile(r"[A-Za-z0-9]{8,64}")
_HALF_N: Final = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_MAX_MESSAGE: Final = 4096
_CLOCK_SKEW: Final = timedelta(minutes=2)
_ERC1271_ABI: Final = [
    {
        "type": "function",
        "name": "isValidSignature",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "", "type": "bytes4"}],
    }
]
_FIELDS: Final = (
    ("URI", "uri"),
    ("Version", "version"),
    ("Chain ID", "chain_id"),
    ("Nonce", "nonce"),
    ("Issued At", "issued_at"),
    ("Expiration Time", "expiration_time"),
    ("Not Before", "not_before"),
    ("Request ID", "request_id"),
)


def _invalid(field: str, rule: str) -> ApiError:
    return ApiError(401, "siwe_invalid", f"sign-in message field {field!r} must be {rule}", field)


@dataclass(frozen=True)
class SiweMessage:
    """An EIP-4361 message's fields (times as the ISO-8601 text of the message)."""

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    statement: str | None = None
    version: str = "1"
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()
    scheme: str | None = None


def build_message(message: SiweMessage) -> str:
    """The EIP-4361 text of `message`, exactly as a wallet shows and signs it."""
    prefix = f"{message.scheme}://" if message.scheme else ""
    # EIP-4361: address LF LF [statement LF] LF "URI: ..."
    lines = [f"{prefix}{message.domain}{_HEADER}", message.address, ""]
    if message.statement is not None:
        lines.append(message.statement)
    lines.append("")
    values = {
        "uri": message.uri,
        "version": message.version,
        "chain_id": str(message.chain_id),
        "nonce": message.nonce,
        "issued_at": message.issued_at,
        "expiration_time": message.expiration_time,
        "not_before": message.not_before,
        "request_id": message.request_id,
    }
    for label, key in _FIELDS:
        if values[key] is not None:
            lines.append(f"{label}: {values[key]}")
    if message.resources:
        lines.append("Resources:")
        lines += [f"- {resource}" for resource in message.resources]
    return "\n".join(lines)


def parse_message(text: str) -> SiweMessage:
    """Parse an EIP-4361 message.

    Raises:
        ApiError: 401 ``siwe_invalid`` naming the line or field that breaks the format.
    """
    if len(text) > _MAX_MESSAGE:
        raise _invalid("message", f"at most {_MAX_MESSAGE} characters")
    lines = text.split("\n")
    if not lines[0].endswith(_HEADER):
        raise _invalid("domain", f"the first line '<domain>{_HEADER}'")
    head = lines[0].removesuffix(_HEADER)
    scheme = None
    if "://" in head:
        scheme, head = head.split("://", 1)
    if not head or any(c.isspace() for c in head):
        raise _invalid("domain", "an RFC 3986 authority (host[:port])")
    address = lines[1] if len(lines) > 1 else ""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address) or not is_checksum_address(address):
        raise _invalid("address", "an EIP-55 checksummed address")
    if len(lines) < 5:
        raise _invalid("uri", "present")
    if lines[2] != "":
        raise _invalid("address", "followed by an empty line")
    statement = None
    if lines[3] == "":
        index = 4
    else:
        statement = lines[3]
        if lines[4:5] != [""]:
            raise _invalid("statement", "one line followed by an empty line")
        index = 5
    values: dict[str, str] = {}
    resources: list[str] = []
    position = 0
    rest = lines[index:]
    i = 0
    while i < len(rest):
        line = rest[i]
        if line == "Resources:":
            resources = [r.removeprefix("- ") for r in rest[i + 1 :]]
            if any(not r.startswith("- ") for r in rest[i + 1 :]):
                raise _invalid("resources", "lines of the form '- <uri>'")
            break
        label, sep, value = line.partition(": ")
        keys = [k for lbl, k in _FIELDS[position:] if lbl == label]
        if not sep or not keys:
            raise _invalid(label or "line", "a known field, in the EIP-4361 order")
        key = keys[0]
        position = [k for _, k in _FIELDS].index(key) + 1
        values[key] = value
        i += 1
    for required in ("uri", "version", "chain_id", "nonce", "issued_at"):
        if required not in values:
            raise _invalid(required, "present")
    if values["version"] != "1":
        raise _invalid("version", "1")
    if not re.fullmatch(r"[1-9][0-9]{0,18}", values["chain_id"]):
        raise _invalid("chain_id", "a positive decimal integer")
    if not _NONCE.fullmatch(values["nonce"]):
        raise _invalid("nonce", "8 or more alphanumeric characters")
    for key in ("issued_at", "expiration_time", "not_before"):
        if key in values:
            _time(values[key], key)
    return SiweMessage(
        domain=head,
        address=address,
        uri=values["uri"],
        chain_id=int(values["chain_id"]),
        nonce=values["nonce"],
        issued_at=values["issued_at"],
        statement=statement,
        version=values["version"],
        expiration_time=values.get("expiration_time"),
        not_before=values.get("not_before"),
        request_id=values.get("request_id"),
        resources=tuple(resources),
        scheme=scheme,
    )


def _time(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(field, "an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise _invalid(field, "an RFC 3339 date-time with a time zone")
    return value


def iso(moment: datetime) -> str:
    """RFC 3339 UTC text with a ``Z`` (what the server writes into messages)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class SessionInfo:
    """A signed-in session."""

    address: str
    expires_at: datetime


@dataclass
class AuthStore:
    """Nonces (single use, expiring) and sessions (expiring), kept server side in memory."""

    nonce_ttl: float = 600.0
    session_ttl: float = 12 * 3600.0
    max_nonces: int = 100_000
    _nonces: dict[str, float] = field(default_factory=dict)
    _sessions: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new_nonce(self) -> tuple[str, datetime]:
        """A fresh nonce and when it expires."""
        nonce = secrets.token_hex(16)
        now = time.time()
        with self._lock:
            if len(self._nonces) >= self.max_nonces:
                self._nonces = {n: t for n, t in self._nonces.items() if t > now}
                if len(self._nonces) >= self.max_nonces:
                    raise ApiError(429, "too_many_nonces", "too many sign-ins pending; retry later")
            self._nonces[nonce] = now + self.nonce_ttl
        return nonce, datetime.fromtimestamp(now + self.nonce_ttl, UTC)

    def use_nonce(self, nonce: str) -> bool:
        """Consume `nonce`: True if it was issued here, unused and not expired."""
        with self._lock:
            expiry = self._nonces.pop(nonce, None)
        return expiry is not None and expiry > time.time()

    def open_session(self, address: str) -> tuple[str, SessionInfo]:
        """A new session for `address`: its secret token and its info."""
        token = secrets.token_urlsafe(32)
        expiry = time.time() + self.session_ttl
        with self._lock:
            self._sessions[_digest(token)] = (address, expiry)
        return token, SessionInfo(address, datetime.fromtimestamp(expiry, UTC))

    def session(self, token: str) -> SessionInfo | None:
        """The live session of `token`, if any (expired ones are dropped)."""
        key = _digest(token)
        with self._lock:
            found = self._sessions.get(key)
            if found is None:
                return None
            if found[1] <= time.time():
                del self._sessions[key]
                return None
        return SessionInfo(found[0], datetime.fromtimestamp(found[1], UTC))

    def close_session(self, token: str) -> bool:
        """End a session; False if there was none."""
        with self._lock:
            return self._sessions.pop(_digest(token), None) is not None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def verify_login(
    text: str,
    signature_hex: str,
    *,
    store: AuthStore,
    w3: Web3,
    domain: str,
    origin: str,
    chain_id: int,
) -> SiweMessage:
    """Check a signed EIP-4361 message for this service; returns it.

    Raises:
        ApiError: 401 with a code naming what failed: ``siwe_invalid`` (format), ``siwe_domain``,
            ``siwe_uri``, ``siwe_chain``, ``siwe_nonce``, ``siwe_expired``, ``siwe_not_yet_valid``,
            ``siwe_signature``.
    """
    message = parse_message(text)
    if message.domain != domain:
        raise ApiError(401, "siwe_domain", f"domain must be this service's ({domain})", "domain")
    if not (message.uri == origin or message.uri.startswith(origin + "/")):
        raise ApiError(
            401, "siwe_uri", f"uri must be under this service's origin ({origin})", "uri"
        )
    if message.chain_id != chain_id:
        raise ApiError(401, "siwe_chain", f"chain_id must be {chain_id}", "chain_id")
    now = datetime.now(UTC)
    issued = _time(message.issued_at, "issued_at")
    if issued > now + _CLOCK_SKEW:
        raise ApiError(
            401, "siwe_not_yet_valid", "issued_at must not be in the future", "issued_at"
        )
    if issued < now - timedelta(seconds=store.nonce_ttl) - _CLOCK_SKEW:
        raise ApiError(
            401, "siwe_expired", "issued_at must be recent (nonce lifetime)", "issued_at"
        )
    if message.expiration_time and _time(message.expiration_time, "expiration_time") <= now:
        raise ApiError(
            401, "siwe_expired", "expiration_time must be in the future", "expiration_time"
        )
    if message.not_before and _time(message.not_before, "not_before") > now + _CLOCK_SKEW:
        raise ApiError(401, "siwe_not_yet_valid", "not_before must have passed", "not_before")
    signature = _signature_bytes(signature_hex)
    # The nonce is spent even if the signature is wrong: one attempt per nonce.
    if not store.use_nonce(message.nonce):
        raise ApiError(
            401,
            "siwe_nonce",
            "nonce must be one this service issued, unused and unexpired",
            "nonce",
        )
    if not _signed_by(w3, text, signature, message.address):
        raise ApiError(
            401, "siwe_signature", "signature must be the address's over the message", "signature"
        )
    return message


def _signature_bytes(value: str) -> bytes:
    if not re.fullmatch(r"0x([0-9a-fA-F]{2}){1,2048}", value):
        raise ApiError(401, "siwe_signature", "signature must be 0x-prefixed hex", "signature")
    return bytes.fromhex(value[2:])


def _signed_by(w3: Web3, text: str, signature: bytes, address: str) -> bool:
    account = to_checksum_address(address)
    try:
        code = w3.eth.get_code(account)
    except (requests.RequestException, OSError) as exc:
        raise RpcUnavailableError(endpoint_of(w3), type(exc).__name__) from None
    if code:
        digest = _hash_eip191_message(encode_defunct(text=text))
        wallet = w3.eth.contract(address=account, abi=_ERC1271_ABI)
        try:
            answer = call(wallet.functions.isValidSignature(digest, signature))
        except ContractRevert:
            return False
        return bytes(answer) == ERC1271_MAGIC
    if len(signature) != 65 or int.from_bytes(signature[32:64], "big") > _HALF_N:
        return False
    if signature[64] not in (27, 28):
        return False
    try:
        signer = Account.recover_message(encode_defunct(text=text), signature=signature)
    except (BadSignature, ValidationError, ValueError):
        return False
    return bool(signer == account)

"""The receipt of a job: what was computed, on what, under which grants, by whom, with what result.

A `Receipt` is canonical JSON (RFC 8785) of the fields below; its hash is
``keccak256(JCS(receipt))``, the ``receiptHash`` that ``UsageLedger.recordUsage`` stores for the
job (per-job mode) or a leaf of an anchored Merkle batch (batched mode).

Shape (format ``ledger.provenance.receipt/1``; every hash ``0x`` + 64 lowercase hex digits,
every address EIP-55 checksummed, every integer a JSON number within 0..2^53-1, times
``YYYY-MM-DDTHH:MM:SSZ`` in UTC with whole seconds)::

    {"format", "job_id", "chain_id",
     "contracts": {"registry", "grants", "usage_ledger", "vault"},
     "consumer", "purpose", "executor",
     "algorithm_hash", "runtime_hash", "parameters_hash", "result_hash",
     "suppression_k", "requested_at", "completed_at",
     "datasets": [{"dataset_id", "version", "commitment", "grant_id", "uses",
                   "epsilon_spent", "previous_receipt"}, ...]}

``datasets`` lists one entry per grant the job used (one grant per dataset), in ascending
dataset id; ``epsilon_spent`` is the privacy budget charged to that grant in micro-epsilon (as
``GrantUse.epsilon`` on chain) and ``previous_receipt`` the hash of the executor's previous
receipt on the same dataset (null for the first): one hash chain per dataset.

Signature: the executor signs the receipt hash with EIP-191 ``personal_sign`` over the 32 bytes,
i.e. an ECDSA signature of ``keccak256("\\x19Ethereum Signed Message:\\n32" || receiptHash)``
(what wallets, ``cast wallet sign <receiptHash>`` (tested) and OpenZeppelin's
``MessageHashUtils.toEthSignedMessageHash(bytes32)`` + ``ECDSA.recover`` agree on). 65 bytes
``r || s || v``, ``v`` in {27, 28}, low ``s`` only.

A signed receipt file (`SignedReceipt`, format ``ledger.provenance.signed-receipt/1``) holds
``receipt``, ``hash``, ``signature`` and, in batched mode, ``batch``: the anchored root, the
inclusion proof of the leaf ``("bytes32" receiptHash)`` in OpenZeppelin's StandardMerkleTree
(`ledger.merkle`), and the leaf encoding ``["bytes32"]``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_typing import ChecksumAddress
from eth_utils.address import is_address, to_checksum_address
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from ledger.merkle import leaf_hash
from ledger.merkle import verify as merkle_verify
from ledger.provenance.canonical import MAX_SAFE_INTEGER, canonical_json, keccak_hex
from ledger.provenance.errors import ReceiptInvalidError, ResultInvalidError

__all__ = [
    "BATCH_LEAF_ENCODING",
    "RECEIPT_FORMAT",
    "SIGNED_RECEIPT_FORMAT",
    "BatchInclusion",
    "ContractAddresses",
    "DatasetEntry",
    "Receipt",
    "SignedReceipt",
    "batch_leaf",
    "job_tuple",
    "recover_signer",
    "sign_receipt",
    "utc_seconds",
]

RECEIPT_FORMAT: Final = "ledger.provenance.receipt/1"
SIGNED_RECEIPT_FORMAT: Final = "ledger.provenance.signed-receipt/1"
#: The StandardMerkleTree leaf encoding of a batched receipt: its hash as one bytes32.
BATCH_LEAF_ENCODING: Final = ("bytes32",)

_HASH: Final = re.compile(r"0x[0-9a-f]{64}")
_SIGNATURE: Final = re.compile(r"0x[0-9a-f]{130}")
_SECP256K1_HALF_N: Final = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_MAX_UINT32: Final = 2**32 - 1
_MAX_GRANTS: Final = 32  # UsageLedger.MAX_GRANTS_PER_JOB


def _to_hex(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value.lower() if isinstance(value, str) else value


def _check_hash(value: str) -> str:
    if not _HASH.fullmatch(value):
        raise ValueError("must be 0x followed by 64 hex digits (32 bytes)")
    return value


def _check_address(value: Any) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ValueError("must be a 20-byte 0x address")
    return str(to_checksum_address(value))


def _check_time(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone (UTC)")
    if value.microsecond:
        raise ValueError("must be whole seconds")
    return value.astimezone(UTC)


def _show_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Hash32 = Annotated[str, BeforeValidator(_to_hex), AfterValidator(_check_hash)]
Address = Annotated[str, BeforeValidator(_check_address)]
SafeInt = Annotated[int, Field(strict=True, ge=0, le=MAX_SAFE_INTEGER)]
UtcSeconds = Annotated[datetime, AfterValidator(_check_time), PlainSerializer(_show_time)]


def utc_seconds(moment: datetime | None = None) -> datetime:
    """`moment` (default: now) in UTC, truncated to whole seconds, as receipts hold times."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ReceiptInvalidError("timestamp", "must carry a time zone (UTC)")
    return moment.astimezone(UTC).replace(microsecond=0)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContractAddresses(_Strict):
    """The deployment a receipt belongs to."""

    registry: Address
    grants: Address
    usage_ledger: Address
    vault: Address


class DatasetEntry(_Strict):
    """One grant the job used: the dataset version it computed on and what it charged."""

    dataset_id: Annotated[int, Field(strict=True, ge=1, le=MAX_SAFE_INTEGER)]
    version: Annotated[int, Field(strict=True, ge=1, le=_MAX_UINT32)]
    commitment: Hash32
    grant_id: Hash32
    uses: Annotated[int, Field(strict=True, ge=1, le=_MAX_UINT32)] = 1
    epsilon_spent: SafeInt
    previous_receipt: Hash32 | None


class Receipt(_Strict):
    """A job's receipt (see the module notes for the JSON shape and the hash)."""

    format: Literal["ledger.provenance.receipt/1"] = RECEIPT_FORMAT
    job_id: Hash32
    chain_id: Annotated[int, Field(strict=True, ge=1, le=MAX_SAFE_INTEGER)]
    contracts: ContractAddresses
    consumer: Address
    purpose: Hash32
    executor: Address
    algorithm_hash: Hash32
    runtime_hash: Hash32
    parameters_hash: Hash32
    result_hash: Hash32
    suppression_k: SafeInt
    requested_at: UtcSeconds
    completed_at: UtcSeconds
    datasets: Annotated[list[DatasetEntry], Field(min_length=1, max_length=_MAX_GRANTS)]

    @field_validator("datasets")
    @classmethod
    def _sorted_unique(cls, entries: list[DatasetEntry]) -> list[DatasetEntry]:
        ids = [entry.dataset_id for entry in entries]
        if len(set(ids)) != len(ids):
            raise ValueError("must name each dataset once (one grant per dataset)")
        if len({entry.grant_id for entry in entries}) != len(entries):
            raise ValueError("must name each grant once")
        return sorted(entries, key=lambda entry: entry.dataset_id)

    @model_validator(mode="after")
    def _in_order(self) -> Receipt:
        if self.completed_at < self.requested_at:
            raise ValueError("completed_at must not be before requested_at")
        return self

    @classmethod
    def of(cls, **fields: Any) -> Receipt:
        """Build a receipt, translating validation errors.

        Raises:
            ReceiptInvalidError: a field breaks its rule (the message names both).
        """
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise _translate(exc) from None

    @classmethod
    def from_json_value(cls, value: Any) -> Receipt:
        """Read a receipt from its parsed JSON.

        Raises:
            ReceiptInvalidError: a field is missing, unknown or breaks its rule.
        """
        if not isinstance(value, dict):
            raise ReceiptInvalidError("receipt", "must be a JSON object")
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            raise _translate(exc) from None

    def json_value(self) -> dict[str, Any]:
        """The receipt as a JSON value (what is canonicalized)."""
        return self.model_dump(mode="json")

    def canonical_bytes(self) -> bytes:
        """The RFC 8785 canonical JSON of the receipt."""
        try:
            return canonical_json(self.json_value())
        except ResultInvalidError as exc:  # the fields' bounds make this unreachable
            raise ReceiptInvalidError("receipt", exc.rule) from None

    def hash(self) -> str:
        """The receipt hash: keccak256 of `canonical_bytes`, ``0x`` hex."""
        return keccak_hex(self.canonical_bytes())

    @property
    def grant_ids(self) -> list[str]:
        """The grants the job used, in dataset order."""
        return [entry.grant_id for entry in self.datasets]


class BatchInclusion(_Strict):
    """Where a batched receipt sits: the anchored root and the leaf's StandardMerkleTree proof."""

    root: Hash32
    proof: list[Hash32]
    leaf_encoding: list[str] = Field(default_factory=lambda: list(BATCH_LEAF_ENCODING))

    @field_validator("leaf_encoding")
    @classmethod
    def _one_bytes32(cls, value: list[str]) -> list[str]:
        if value != list(BATCH_LEAF_ENCODING):
            raise ValueError('must be ["bytes32"]')
        return value

    def proves(self, receipt_hash: str) -> bool:
        """Whether the proof leads from the leaf of `receipt_hash` to `root`."""
        return merkle_verify(self.root, batch_leaf(receipt_hash), self.proof)


class SignedReceipt(_Strict):
    """A receipt with its hash, the executor's signature and, if batched, its batch inclusion."""

    format: Literal["ledger.provenance.signed-receipt/1"] = SIGNED_RECEIPT_FORMAT
    receipt: Receipt
    hash: Hash32
    signature: Annotated[str, BeforeValidator(_to_hex)]
    batch: BatchInclusion | None = None

    @field_validator("signature")
    @classmethod
    def _signature_shape(cls, value: str) -> str:
        if not _SIGNATURE.fullmatch(value):
            raise ValueError("must be 0x followed by 130 hex digits (65 bytes r, s, v)")
        return value

    @model_validator(mode="after")
    def _hash_matches(self) -> SignedReceipt:
        if self.receipt.hash() != self.hash:
            raise ValueError("hash is not keccak256 of the receipt's canonical JSON")
        return self

    @classmethod
    def from_json(cls, data: bytes | str) -> SignedReceipt:
        """Read a signed receipt file (strict: unknown fields and a wrong hash are refused).

        Raises:
            ReceiptInvalidError: not JSON, or a field is missing, unknown or breaks its rule.
        """
        try:
            value = json.loads(data)
        except ValueError:
            raise ReceiptInvalidError("file", "must be JSON text") from None
        if not isinstance(value, dict):
            raise ReceiptInvalidError("file", "must be a JSON object")
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            raise _translate(exc) from None

    def to_json(self) -> str:
        """The file's JSON text (indented; only ``receipt`` is hashed, canonically)."""
        return json.dumps(self.model_dump(mode="json", exclude_none=False), indent=2) + "\n"

    def with_batch(self, batch: BatchInclusion) -> SignedReceipt:
        """A copy carrying `batch` (once the receipt's batch is sealed)."""
        return self.model_copy(update={"batch": batch})

    def signer(self) -> ChecksumAddress:
        """The address the signature recovers to.

        Raises:
            ReceiptInvalidError: the signature is malformed (bad v, high s, not on the curve).
        """
        return recover_signer(self.hash, self.signature)


def batch_leaf(receipt_hash: str) -> bytes:
    """The StandardMerkleTree leaf of a receipt hash (``keccak256(keccak256(abi.encode(h)))``)."""
    return leaf_hash(BATCH_LEAF_ENCODING, [receipt_hash])


def sign_receipt(receipt: Receipt, private_key: str) -> SignedReceipt:
    """Sign `receipt` with the executor's key (EIP-191 personal_sign of the 32-byte hash).

    Raises:
        ReceiptInvalidError: the key's address is not the receipt's executor.
    """
    account = Account.from_key(private_key)
    if account.address != receipt.executor:
        raise ReceiptInvalidError("executor", "must be the address of the signing key")
    digest = receipt.hash()
    signed = Account.sign_message(encode_defunct(primitive=bytes.fromhex(digest[2:])), account.key)
    return SignedReceipt(
        receipt=receipt, hash=digest, signature="0x" + bytes(signed.signature).hex()
    )


def recover_signer(receipt_hash: str, signature: str) -> ChecksumAddress:
    """The address that signed `receipt_hash` (EIP-191 personal_sign) with `signature`.

    Raises:
        ReceiptInvalidError: the signature is not 65 bytes, has a v other than 27/28, a high s,
            or does not recover to a point.
    """
    raw = bytes.fromhex(signature.removeprefix("0x")) if _SIGNATURE.fullmatch(signature) else b""
    if len(raw) != 65:
        raise ReceiptInvalidError("signature", "must be 65 bytes r, s, v")
    if raw[64] not in (27, 28):
        raise ReceiptInvalidError("signature", "must have v = 27 or 28")
    if int.from_bytes(raw[32:64], "big") > _SECP256K1_HALF_N:
        raise ReceiptInvalidError("signature", "must have a low s (EIP-2)")
    message = encode_defunct(primitive=bytes.fromhex(receipt_hash.removeprefix("0x")))
    try:
        return to_checksum_address(Account.recover_message(message, signature=raw))
    except Exception:  # eth-keys raises several types for points off the curve
        raise ReceiptInvalidError("signature", "does not recover to a public key") from None


def job_tuple(signed: SignedReceipt) -> tuple[bytes, str, bytes, bytes, bytes]:
    """The ``IUsageLedger.Job`` argument of ``recordUsage`` for this receipt:
    ``(jobId, consumer, algorithmHash, purpose, receiptHash)``."""
    receipt = signed.receipt
    return (
        bytes.fromhex(receipt.job_id[2:]),
        receipt.consumer,
        bytes.fromhex(receipt.algorithm_hash[2:]),
        bytes.fromhex(receipt.purpose[2:]),
        bytes.fromhex(signed.hash[2:]),
    )


def _translate(exc: ValidationError) -> ReceiptInvalidError:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "receipt"
    rule = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        rule = "is not a receipt field (unknown fields are refused)"
    elif error["type"] == "missing":
        rule = "is required"
    return ReceiptInvalidError(field, rule)

"""Verifying a released result and its signed receipt against the chain, with nothing but a
JSON-RPC endpoint (no database, no service, no settings), so that anyone can run it.

Checks, in order (the first that fails is the reason):

1. the receipt file parses, and its receipt is in canonical form (``malformed_receipt``);
2. the receipt hashes (keccak256 of RFC 8785 JSON) to the hash it carries
   (``tampered_receipt``);
3. the signature (EIP-191 over the hash) recovers to the receipt's executor (``bad_signature``);
4. the result file's canonical JSON hashes to the receipt's ``result_hash``
   (``tampered_result``);
5. the node's chain id is the receipt's (``other_chain``);
6. the receipt's ``UsageLedger`` has code and points at the receipt's registry, grants and
   vault (``other_contracts``), and every dataset version the receipt names is registered with
   the commitment the receipt gives (``dataset_mismatch``);
7. per-job mode: ``UsageLedger.receiptOf(jobId)`` is the receipt hash (``never_recorded`` if
   zero, ``tampered_receipt`` if another hash) and the ``JobRecorded`` event was emitted by the
   receipt's executor (``other_executor``); batched mode: the inclusion proof leads to the root
   (``proof_fails``), the root is anchored under the receipt's executor (``anchorOf``;
   ``other_executor`` if only someone else anchored it, else ``never_recorded``), and the job
   is recorded with this receipt hash by that executor, as in per-job mode. (Anyone can anchor
   a root: an anchor alone proves nothing about a use; the record, which only an executor the
   owner approved can make, does.)

With ``usage_ledger`` given (the deployment a verifier trusts), a receipt naming any other
UsageLedger is ``other_contracts``: without it, a forger could name a look-alike contract that
answers whatever they like.

A node that cannot be reached raises `RpcUnavailableError`: no verdict is given then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Final, Literal, TypeVar

import requests
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.types import FilterParams

from ledger.chain.artifacts import load_artifact
from ledger.chain.client import call, endpoint_of
from ledger.errors import ContractRevert, RpcUnavailableError
from ledger.provenance.canonical import canonical_json, keccak_hex, result_hash_of_bytes
from ledger.provenance.errors import ReceiptInvalidError, ResultInvalidError
from ledger.provenance.receipt import Receipt, SignedReceipt

__all__ = ["Rejection", "Verification", "verify_result"]

T = TypeVar("T")

_ZERO_HASH: Final = "0x" + "00" * 32
_ZERO_ADDRESS: Final = "0x" + "00" * 20
_JOB_RECORDED: Final = Web3.keccak(
    text="JobRecorded(bytes32,address,address,bytes32,bytes32,bytes32,uint256)"
).to_0x_hex()
_BATCH_ANCHORED: Final = Web3.keccak(text="BatchAnchored(bytes32,address,uint32)").to_0x_hex()


class Rejection(StrEnum):
    """Why a result and receipt were rejected (see the module notes for each check)."""

    MALFORMED_RECEIPT = "malformed_receipt"
    TAMPERED_RECEIPT = "tampered_receipt"
    BAD_SIGNATURE = "bad_signature"
    TAMPERED_RESULT = "tampered_result"
    OTHER_CHAIN = "other_chain"
    OTHER_CONTRACTS = "other_contracts"
    DATASET_MISMATCH = "dataset_mismatch"
    NEVER_RECORDED = "never_recorded"
    OTHER_EXECUTOR = "other_executor"
    PROOF_FAILS = "proof_fails"


@dataclass(frozen=True, slots=True)
class Verification:
    """The verdict: `verified`, or the `reason` it was rejected, and a sentence saying why.

    The other fields say what was checked, as far as the checks got.
    """

    verified: bool
    reason: Rejection | None
    message: str
    mode: Literal["job", "batch"] | None = None
    job_id: str | None = None
    receipt_hash: str | None = None
    result_hash: str | None = None
    executor: str | None = None
    chain_id: int | None = None
    recorded_block: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON object."""
        return asdict(self)


class _Rejected(Exception):
    def __init__(self, reason: Rejection, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def verify_result(
    result_bytes: bytes,
    signed_receipt: bytes | str | Mapping[str, Any],
    w3: Web3,
    *,
    from_block: int = 0,
    usage_ledger: str | None = None,
) -> Verification:
    """Verify a released result file and its signed receipt against the chain behind `w3`.

    `signed_receipt` is the receipt file's text or its parsed JSON. Returns a `Verification`;
    a rejection is a verdict, not an exception. Events (who recorded or anchored) are searched
    from `from_block` on (nodes that limit ``eth_getLogs`` ranges need the deployment block).
    `usage_ledger` pins the UsageLedger address the verifier trusts (recommended: the platform's
    published deployment); a receipt naming another is rejected as ``other_contracts``.

    Raises:
        RpcUnavailableError: the node does not answer (no verdict).
    """
    facts: dict[str, Any] = {}
    try:
        signed = _check_receipt(signed_receipt, facts)
        receipt = signed.receipt
        _check_result(result_bytes, receipt)
        facts["result_hash"] = receipt.result_hash
        _check_chain(w3, receipt)
        facts["chain_id"] = receipt.chain_id
        if (
            usage_ledger is not None
            and usage_ledger.lower() != receipt.contracts.usage_ledger.lower()
        ):
            raise _Rejected(
                Rejection.OTHER_CONTRACTS,
                f"the receipt names UsageLedger {receipt.contracts.usage_ledger}, not the trusted "
                f"{usage_ledger}",
            )
        _check_contracts(w3, receipt)
        _check_datasets(w3, receipt)
        if signed.batch is None:
            facts["mode"] = "job"
            facts["recorded_block"] = _check_job(w3, signed, from_block)
        else:
            facts["mode"] = "batch"
            facts["recorded_block"] = _check_batch(w3, signed, from_block)
    except _Rejected as rejected:
        return Verification(False, rejected.reason, rejected.message, **facts)
    where = "its job record" if facts["mode"] == "job" else "an anchored receipt batch"
    block = facts["recorded_block"]
    message = (
        f"verified: the result matches receipt {signed.hash}, signed by executor "
        f"{receipt.executor} and recorded on chain {receipt.chain_id} in {where}"
        + (f" (block {block})" if block is not None else "")
    )
    return Verification(True, None, message, **facts)


def _check_receipt(source: bytes | str | Mapping[str, Any], facts: dict[str, Any]) -> SignedReceipt:
    if isinstance(source, Mapping):
        value: Any = dict(source)
    else:
        try:
            value = json.loads(source)
        except ValueError:
            raise _Rejected(Rejection.MALFORMED_RECEIPT, "the receipt file is not JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get("receipt"), dict):
        raise _Rejected(
            Rejection.MALFORMED_RECEIPT, "the receipt file must be an object with a 'receipt'"
        )
    raw = value["receipt"]
    try:
        receipt = Receipt.from_json_value(raw)
        given = canonical_json(raw)
    except (ReceiptInvalidError, ResultInvalidError) as exc:
        raise _Rejected(Rejection.MALFORMED_RECEIPT, f"the receipt is malformed: {exc}") from None
    facts.update(job_id=receipt.job_id, executor=receipt.executor)
    if receipt.canonical_bytes() != given:
        raise _Rejected(
            Rejection.MALFORMED_RECEIPT,
            "the receipt is not in its normal form (lowercase hashes, checksummed addresses, "
            "UTC times with a Z); it cannot be the one that was signed",
        )
    computed = keccak_hex(given)
    facts["receipt_hash"] = computed
    carried = value.get("hash")
    if not isinstance(carried, str) or carried.lower() != computed:
        raise _Rejected(
            Rejection.TAMPERED_RECEIPT,
            f"the receipt hashes to {computed}, not to the hash the file carries ({carried}): "
            "its content was changed after hashing",
        )
    try:
        signed = SignedReceipt.model_validate(value)
    except ValueError as exc:
        raise _Rejected(
            Rejection.MALFORMED_RECEIPT, f"the receipt file is malformed: {exc}"
        ) from None
    try:
        signer = signed.signer()
    except ReceiptInvalidError as exc:
        raise _Rejected(Rejection.BAD_SIGNATURE, f"the signature is invalid: {exc.rule}") from None
    if signer != receipt.executor:
        raise _Rejected(
            Rejection.BAD_SIGNATURE,
            f"the signature recovers to {signer}, not to the receipt's executor {receipt.executor}",
        )
    return signed


def _check_result(result_bytes: bytes, receipt: Receipt) -> None:
    try:
        actual = result_hash_of_bytes(result_bytes)
    except ResultInvalidError as exc:
        raise _Rejected(
            Rejection.TAMPERED_RESULT, f"the result file cannot be hashed: {exc.rule}"
        ) from None
    if actual != receipt.result_hash:
        raise _Rejected(
            Rejection.TAMPERED_RESULT,
            f"the result hashes to {actual}, but the receipt names {receipt.result_hash}",
        )


def _check_chain(w3: Web3, receipt: Receipt) -> None:
    chain_id = _rpc(w3, lambda: w3.eth.chain_id)
    if chain_id != receipt.chain_id:
        raise _Rejected(
            Rejection.OTHER_CHAIN,
            f"the receipt is for chain {receipt.chain_id}, but the node serves chain {chain_id}",
        )


def _check_contracts(w3: Web3, receipt: Receipt) -> None:
    contracts = receipt.contracts
    usage = w3.eth.contract(address=_addr(contracts.usage_ledger), abi=_usage_abi())
    code = _rpc(w3, lambda: w3.eth.get_code(usage.address))
    if not code:
        raise _Rejected(
            Rejection.OTHER_CONTRACTS,
            f"there is no contract at the receipt's UsageLedger {contracts.usage_ledger}",
        )
    try:
        linked = {
            "registry": call(usage.functions.registry()),
            "grants": call(usage.functions.grants()),
            "vault": call(usage.functions.vault()),
        }
    except ContractRevert:
        linked = {}
    for name in ("registry", "grants", "vault"):
        expected = getattr(contracts, name)
        if str(linked.get(name, "")).lower() != expected.lower():
            raise _Rejected(
                Rejection.OTHER_CONTRACTS,
                f"the UsageLedger at {contracts.usage_ledger} does not use the receipt's "
                f"{name} {expected}",
            )


def _check_datasets(w3: Web3, receipt: Receipt) -> None:
    registry = w3.eth.contract(
        address=_addr(receipt.contracts.registry), abi=load_artifact("DataRegistry").abi
    )
    for entry in receipt.datasets:
        try:
            stored = call(registry.functions.versionOf(entry.dataset_id, entry.version))
        except ContractRevert:
            raise _Rejected(
                Rejection.DATASET_MISMATCH,
                f"dataset {entry.dataset_id} has no version {entry.version} in the registry",
            ) from None
        commitment = "0x" + bytes(stored[0]).hex()
        if commitment != entry.commitment:
            raise _Rejected(
                Rejection.DATASET_MISMATCH,
                f"dataset {entry.dataset_id} version {entry.version} is registered with "
                f"commitment {commitment}, but the receipt names {entry.commitment}",
            )


def _check_job(w3: Web3, signed: SignedReceipt, from_block: int) -> int:
    receipt = signed.receipt
    usage = w3.eth.contract(address=_addr(receipt.contracts.usage_ledger), abi=_usage_abi())
    stored = "0x" + bytes(call(usage.functions.receiptOf(_b32(receipt.job_id)))).hex()
    if stored == _ZERO_HASH:
        raise _Rejected(
            Rejection.NEVER_RECORDED, f"job {receipt.job_id} was never recorded on this chain"
        )
    if stored != signed.hash:
        raise _Rejected(
            Rejection.TAMPERED_RECEIPT,
            f"the chain records receipt {stored} for job {receipt.job_id}, not {signed.hash}",
        )
    logs = _logs(w3, usage.address, [_JOB_RECORDED, receipt.job_id], from_block)
    if not logs:
        raise _Rejected(
            Rejection.OTHER_EXECUTOR,
            f"the node returns no JobRecorded event for job {receipt.job_id}, so the executor "
            "that recorded it cannot be confirmed",
        )
    recorder, block = _topic_address(logs[0]["topics"][2]), int(logs[0]["blockNumber"])
    if recorder != receipt.executor:
        raise _Rejected(
            Rejection.OTHER_EXECUTOR,
            f"job {receipt.job_id} was recorded by {recorder}, not by the receipt's executor "
            f"{receipt.executor}",
        )
    return block


def _check_batch(w3: Web3, signed: SignedReceipt, from_block: int) -> int | None:
    receipt, batch = signed.receipt, signed.batch
    assert batch is not None
    if not batch.proves(signed.hash):
        raise _Rejected(
            Rejection.PROOF_FAILS,
            f"the inclusion proof does not lead from receipt {signed.hash} to root {batch.root}",
        )
    usage = w3.eth.contract(address=_addr(receipt.contracts.usage_ledger), abi=_usage_abi())
    anchor = call(usage.functions.anchorOf(_addr(receipt.executor), _b32(batch.root)))
    if str(anchor[0]).lower() == _ZERO_ADDRESS:
        logs = _logs(w3, usage.address, [_BATCH_ANCHORED, batch.root], from_block)
        others = sorted({_topic_address(log["topics"][2]) for log in logs})
        if others:
            raise _Rejected(
                Rejection.OTHER_EXECUTOR,
                f"batch root {batch.root} was anchored by {', '.join(others)}, not by the "
                f"receipt's executor {receipt.executor}",
            )
        raise _Rejected(
            Rejection.NEVER_RECORDED, f"batch root {batch.root} was never anchored on this chain"
        )
    # The anchor shows the receipt was published; the record shows the use happened under
    # grants, by an executor the owners approved (anyone can anchor a root of their own).
    return _check_job(w3, signed, from_block)


def _logs(w3: Web3, address: ChecksumAddress, topics: list[str], from_block: int) -> list[Any]:
    params: FilterParams = {
        "address": address,
        "fromBlock": from_block,
        "toBlock": "latest",
        "topics": topics,
    }
    return list(_rpc(w3, lambda: w3.eth.get_logs(params)))


def _rpc(w3: Web3, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (requests.RequestException, OSError) as exc:
        raise RpcUnavailableError(endpoint_of(w3), type(exc).__name__, "check --rpc") from None
    except Web3RPCError as exc:
        reason = f"it refused the request: {str(exc).strip().splitlines()[0][:200]}"
        raise RpcUnavailableError(endpoint_of(w3), reason, "check --rpc and --from-block") from None


def _usage_abi() -> Any:
    return load_artifact("UsageLedger").abi


def _addr(value: str) -> ChecksumAddress:
    return to_checksum_address(value)


def _b32(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _topic_of(address: str) -> str:
    return "0x" + "00" * 12 + address[2:].lower()


def _topic_address(topic: Any) -> str:
    raw = bytes(topic)
    return str(to_checksum_address(raw[12:]))

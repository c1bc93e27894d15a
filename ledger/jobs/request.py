"""A job request: who asks, under which grants (full terms), for which algorithm, parameters and
dataset versions; parsed from user input with typed errors, stored as RFC 8785 JSON.

The job id is ``keccak256("ledger.job" || consumer || keccak256(request JSON) || salt)`` with a
random 32-byte salt, so the same request can run twice as two jobs and nobody can predict an id.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import rfc8785
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ledger.errors import InvalidGrantError
from ledger.jobs.errors import JobRequestError
from ledger.rights.typed_data import GRANT_TYPE, Grant, check_value

__all__ = [
    "MAX_DATASETS",
    "DatasetSpec",
    "JobRequestSpec",
    "grant_from_json",
    "grant_to_json",
    "load_grants",
    "new_job_id",
    "parse_dataset",
    "parse_params",
]

#: ``UsageLedger.MAX_GRANTS_PER_JOB``.
MAX_DATASETS: Final = 32
_HASH: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_NAME: Final = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,99}")
_DATASET: Final = re.compile(r"(\d{1,20})(?::(\d{1,10}))?")
_MAX_PARAMS_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """A dataset version a job computes on (`version` None: the latest, fixed at submission)."""

    dataset_id: int
    version: int | None = None


@dataclass(frozen=True, slots=True)
class JobRequestSpec:
    """A checked job request. One grant per dataset; all grants share grantee and purpose."""

    consumer: ChecksumAddress
    grants: tuple[Grant, ...]
    algorithm: str
    algorithm_hash: bytes
    params: dict[str, Any]
    datasets: tuple[DatasetSpec, ...]

    @property
    def purpose(self) -> bytes:
        """The purpose code every grant names."""
        return self.grants[0].purpose

    def grant_for(self, dataset_id: int) -> Grant:
        """The grant covering `dataset_id`."""
        return next(g for g in self.grants if g.dataset_id == dataset_id)

    def to_json(self) -> dict[str, Any]:
        """The request as plain JSON (integers of grants as decimal strings)."""
        return {
            "consumer": self.consumer,
            "grants": [grant_to_json(g) for g in self.grants],
            "algorithm": self.algorithm,
            "algorithmHash": "0x" + self.algorithm_hash.hex(),
            "params": self.params,
            "datasets": [{"datasetId": d.dataset_id, "version": d.version} for d in self.datasets],
        }

    def canonical(self) -> bytes:
        """The RFC 8785 canonical bytes of `to_json`."""
        return rfc8785.dumps(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRequestSpec:
        """Rebuild a request from `to_json` output, checking it again.

        Raises:
            JobRequestError: a field is missing or malformed.
        """
        try:
            grants = tuple(grant_from_json(g, f"grants[{i}]") for i, g in enumerate(data["grants"]))
            datasets = tuple(
                DatasetSpec(
                    int(d["datasetId"]), None if d["version"] is None else int(d["version"])
                )
                for d in data["datasets"]
            )
            return build_request(
                consumer=str(data["consumer"]),
                grants=grants,
                algorithm=str(data["algorithm"]),
                algorithm_hash=_hash32("algorithmHash", data["algorithmHash"]),
                params=data["params"],
                datasets=datasets,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, JobRequestError):
                raise
            raise JobRequestError("request", "a stored job request as written by submit") from None


def build_request(
    *,
    consumer: str,
    grants: tuple[Grant, ...],
    algorithm: str,
    algorithm_hash: bytes,
    params: object,
    datasets: tuple[DatasetSpec, ...],
) -> JobRequestSpec:
    """A checked `JobRequestSpec`.

    Raises:
        JobRequestError: the consumer is not an address; no dataset, too many, or one twice; a
            dataset without exactly one grant, or a grant for no dataset; grants with other
            grantees than the consumer or different purposes; params not a JSON object.
    """
    try:
        checked_consumer: ChecksumAddress = check_value("consumer", "address", consumer)
    except InvalidGrantError:
        raise JobRequestError("consumer", "a 0x-prefixed 20-byte address") from None
    if not datasets:
        raise JobRequestError("datasets", "at least one dataset (--dataset ID[:VERSION])")
    if len(datasets) > MAX_DATASETS:
        raise JobRequestError("datasets", f"at most {MAX_DATASETS} datasets")
    ids = [d.dataset_id for d in datasets]
    if len(set(ids)) != len(ids):
        raise JobRequestError("datasets", "each dataset named once")
    grant_ids = [g.dataset_id for g in grants]
    if sorted(grant_ids) != sorted(ids):
        raise JobRequestError("grants", "exactly one grant per dataset, and none for others")
    for i, grant in enumerate(grants):
        if grant.grantee != checked_consumer:
            raise JobRequestError(f"grants[{i}].grantee", "the consumer's address")
        if grant.purpose != grants[0].purpose:
            raise JobRequestError(f"grants[{i}].purpose", "the same purpose as every other grant")
    if not isinstance(params, dict):
        raise JobRequestError("params", "a JSON object")
    if len(json.dumps(params)) > _MAX_PARAMS_BYTES:
        raise JobRequestError("params", f"at most {_MAX_PARAMS_BYTES} bytes of JSON")
    if not (_NAME.fullmatch(algorithm) or _HASH.fullmatch(algorithm)):
        raise JobRequestError("algorithm", "a catalog name ([a-z0-9_.:-]) or a 0x code hash")
    if len(algorithm_hash) != 32 or algorithm_hash == bytes(32):
        raise JobRequestError("algorithm", "a known algorithm (non-zero 32-byte code hash)")
    by_id = {g.dataset_id: g for g in grants}
    return JobRequestSpec(
        consumer=checked_consumer,
        grants=tuple(by_id[i] for i in ids),
        algorithm=algorithm,
        algorithm_hash=bytes(algorithm_hash),
        params=params,
        datasets=tuple(datasets),
    )


def new_job_id(request: JobRequestSpec, salt: bytes | None = None) -> bytes:
    """A fresh job id for `request` (see the module notes)."""
    salt = os.urandom(32) if salt is None else salt
    consumer = bytes.fromhex(request.consumer[2:])
    return keccak(b"ledger.job" + consumer + keccak(request.canonical()) + salt)


def parse_dataset(text: str) -> DatasetSpec:
    """``ID[:VERSION]`` as a `DatasetSpec`.

    Raises:
        JobRequestError: not of that form, or a version below 1.
    """
    match = _DATASET.fullmatch(text.strip())
    if match is None:
        raise JobRequestError("dataset", "ID or ID:VERSION (decimal integers)")
    version = None if match.group(2) is None else int(match.group(2))
    if version is not None and not 1 <= version < 2**32:
        raise JobRequestError("dataset", "a version from 1 to 2^32 - 1")
    dataset_id = int(match.group(1))
    if not 0 <= dataset_id < 2**256:
        raise JobRequestError("dataset", "an id below 2^256")
    return DatasetSpec(dataset_id, version)


def parse_params(text: str) -> dict[str, Any]:
    """The algorithm's parameters from JSON text.

    Raises:
        JobRequestError: not a JSON object.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise JobRequestError("params", "valid JSON (an object)") from None
    if not isinstance(value, dict):
        raise JobRequestError("params", "a JSON object")
    return value


def load_grants(path: Path) -> list[Grant]:
    """The grants in a JSON file: one grant or a list of them, each either the grant's terms
    (camelCase keys, as in ``eth_signTypedData_v4``'s ``message``) or that whole typed-data
    object (``{"types", "domain", "message", ...}``, extra keys such as ``signature`` ignored).

    Raises:
        JobRequestError: unreadable, not JSON, or a grant is malformed (names the field).
    """
    try:
        data = json.loads(path.read_text())
    except OSError:
        raise JobRequestError("grant", "a readable JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise JobRequestError("grant", "a JSON file") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise JobRequestError("grant", "at least one grant")
    return [grant_from_json(item, f"grant[{i}]") for i, item in enumerate(items)]


def grant_from_json(item: object, where: str = "grant") -> Grant:
    """One grant from its JSON terms (or a typed-data object holding them in ``message``).

    Raises:
        JobRequestError: a term is missing or does not fit its Solidity type.
    """
    if isinstance(item, dict) and isinstance(item.get("message"), dict):
        item = item["message"]
    if not isinstance(item, dict):
        raise JobRequestError(where, "a JSON object of grant terms")
    values: list[Any] = []
    for name, solidity_type in GRANT_TYPE:
        if name not in item:
            raise JobRequestError(f"{where}.{name}", "present")
        raw = item[name]
        try:
            if solidity_type.startswith("uint"):
                if isinstance(raw, bool) or not isinstance(raw, (int, str)):
                    raise ValueError
                value: Any = int(raw, 10) if isinstance(raw, str) else raw
            elif solidity_type == "bytes32":
                value = _hash32(f"{where}.{name}", raw)
            else:
                value = raw
            values.append(check_value(f"{where}.{name}", solidity_type, value))
        except (InvalidGrantError, ValueError) as exc:
            if isinstance(exc, JobRequestError):
                raise
            raise JobRequestError(f"{where}.{name}", f"a {solidity_type}") from None
    return Grant(*values)


def grant_to_json(grant: Grant) -> dict[str, Any]:
    """A grant's terms as JSON (camelCase keys; integers as decimal strings, as wallets sign)."""
    out: dict[str, Any] = {}
    for (name, solidity_type), value in zip(GRANT_TYPE, _values(grant), strict=True):
        if solidity_type.startswith("uint"):
            out[name] = str(value)
        elif solidity_type == "bytes32":
            out[name] = "0x" + value.hex()
        else:
            out[name] = to_checksum_address(value)
    return out


def _values(grant: Grant) -> tuple[Any, ...]:
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


def _hash32(field: str, raw: object) -> bytes:
    if not isinstance(raw, str) or not _HASH.fullmatch(raw):
        raise JobRequestError(field, "0x followed by 64 hex digits")
    return bytes.fromhex(raw[2:])

"""The ledger's exception tree: one root, `LedgerError`, and a leaf per thing that can go wrong.

Every leaf takes structured arguments, keeps them as attributes and builds its own message, so
callers can branch on the fields and users read a sentence that names what failed and what to do.
Errors of the libraries underneath (web3, subprocess, json) are translated at the boundary with
``raise ... from exc``.

    LedgerError
    ├── ArtifactError             a compiled contract artifact is missing, malformed or stale
    ├── CompilationError          the Solidity compiler cannot be run or reports errors
    ├── InvalidGrantError         a grant term does not fit its Solidity type (also a ValueError)
    ├── SettingsError             a setting is malformed or missing (names the LEDGER_ variable)
    ├── DeploymentError           the chain's deployment manifest is missing or does not match
    │   ├── DeploymentNotFoundError   no manifest for this chain id
    │   └── DeploymentMismatchError   the chain holds contracts from other artifacts
    ├── StoreError                the database cannot be opened or migrated
    │   ├── DatabaseUnavailableError  the database URL cannot be opened (names LEDGER_DATABASE_URL)
    │   └── MigrationError            applying the Alembic migrations failed
    ├── MerkleError               a Merkle tree cannot be built, read or proved
    │   ├── MerkleEncodingError   a value does not fit the tree's leaf encoding (also a ValueError)
    │   ├── MerkleEmptyTreeError  a tree of no values (also a ValueError)
    │   ├── MerkleLeafNotFoundError   the value or index is not a leaf (also a LookupError)
    │   └── MerkleFormatError     a dump, root or proof is malformed or does not hash up
    ├── IndexerError              the event index cannot follow the chain
    │   ├── EventMappingError     the event-to-table mapping does not fit the contracts' ABI
    │   ├── IndexMismatchError    the database holds the index of another chain or deployment
    │   └── StaleDeploymentError  the manifest's deploy block is not on the chain any more
    └── ChainError                talking to the chain failed
        ├── RpcUnavailableError   the node is unreachable or keeps failing
        ├── WrongChainError       the node's chain id is not the expected one
        ├── TransactionFailedError    a transaction was not sent, reverted or not confirmed
        ├── LogQueryError         the node refuses eth_getLogs even for a single block
        ├── ContractRevert        a call reverted with a known error; one subclass per custom
        │                         error in ``ledger.chain.reverts`` (e.g. AccessGrantsRevoked)
        └── AnvilError            the embedded anvil node could not be started or answered wrongly
            └── AnvilNotFoundError    the anvil binary is not installed

Each area keeps its own subtree of `LedgerError` beside its code:

    ledger.vault.errors          VaultError: schema, source (empty, encoding, columns), validation,
                                 dataset/row not found, payouts, proofs, a busy vault
    ledger.registry.errors       RegistryError: metadata, names, owner share, manifests, version
                                 sequence, registration state, catalog queries
    ledger.compute.errors        ComputeError: unknown algorithm, invalid request/parameter/column,
                                 release refused, budget exceeded, timeouts, backend, unavailable
    ledger.compute.sandbox.errors    SandboxError: unavailable, config, run (timeout, limit, crash),
                                 custom code (format, hash, result)
    ledger.compute.mpc.errors    MpcError: parameters, data (column, too few rows), party (timeout),
                                 isolation, protocol
    ledger.jobs.errors           JobError: request, not found, access denied, not ready, refused
    ledger.provenance.errors     ProvenanceError: invalid receipt/result, conflicts, not found
    ledger.settlement.errors     SettlementError: epochs (range, not final, unknown, conflict),
                                 weights, tree input, nothing to claim, stale proofs
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "AnvilError",
    "AnvilNotFoundError",
    "ArtifactError",
    "ChainError",
    "CompilationError",
    "ContractRevert",
    "DatabaseUnavailableError",
    "DeploymentError",
    "DeploymentMismatchError",
    "DeploymentNotFoundError",
    "EventMappingError",
    "IndexMismatchError",
    "IndexerError",
    "InvalidGrantError",
    "LedgerError",
    "LogQueryError",
    "MerkleEmptyTreeError",
    "MerkleEncodingError",
    "MerkleError",
    "MerkleFormatError",
    "MerkleLeafNotFoundError",
    "MigrationError",
    "RpcUnavailableError",
    "SettingsError",
    "StaleDeploymentError",
    "StoreError",
    "TransactionFailedError",
    "WrongChainError",
]


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose.

    Leaves take structured keyword-style arguments, which the default exception pickling cannot
    replay; `__reduce__` rebuilds them from their message and attributes instead, so errors
    survive crossing process boundaries (worker processes, Dask).
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


class ArtifactError(LedgerError):
    """Raised when a compiled contract artifact is missing, unreadable, malformed or stale."""

    def __init__(self, reason: str, *, contract: str | None = None) -> None:
        self.reason = reason
        self.contract = contract
        subject = f"artifact of contract {contract!r}" if contract else "contract artifacts"
        super().__init__(
            f"{subject}: {reason} "
            "(run `.venv/bin/python scripts/compile` to rebuild ledger/artifacts)"
        )


class CompilationError(LedgerError):
    """Raised when the Solidity compiler cannot be run or reports errors."""

    def __init__(self, reason: str, *, details: str = "") -> None:
        self.reason = reason
        self.details = details
        super().__init__(f"{reason}\n{details}" if details else reason)


class InvalidGrantError(LedgerError, ValueError):
    """Raised when a grant term does not fit its Solidity type; names the field and the rule."""

    def __init__(self, field: str, rule: str, value: object) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        super().__init__(f"grant field {field!r} must be {rule}, got {value!r}")


class SettingsError(LedgerError, ValueError):
    """Raised when a setting is malformed or missing; names the environment variable."""

    def __init__(self, variable: str, expected: str) -> None:
        self.variable = variable
        self.expected = expected
        super().__init__(f"setting {variable}: {expected}")


class DeploymentError(LedgerError):
    """Raised when the chain's deployment manifest is missing or does not match the chain."""


class DeploymentNotFoundError(DeploymentError):
    """Raised when no usable deployment manifest exists for the chain id."""

    def __init__(self, chain_id: int, path: Path, reason: str = "no deployment manifest") -> None:
        self.chain_id = chain_id
        self.path = path
        super().__init__(f"chain {chain_id}: {reason} at {path}; run `ledger deploy` first")


class DeploymentMismatchError(DeploymentError):
    """Raised when the chain holds a deployment built from other contract artifacts."""

    def __init__(self, chain_id: int, path: Path, changed: list[str]) -> None:
        self.chain_id = chain_id
        self.path = path
        self.changed = changed
        super().__init__(
            f"chain {chain_id} has a deployment ({path}) of other versions of "
            f"{', '.join(changed)}; run `ledger deploy --redeploy` to deploy these artifacts"
        )


class ChainError(LedgerError):
    """Raised when talking to the chain fails."""


class RpcUnavailableError(ChainError):
    """Raised when the JSON-RPC node cannot be reached or keeps failing after retries."""

    def __init__(self, url: str, reason: str, hint: str = "check LEDGER_RPC_URL") -> None:
        # RPC URLs often carry an API key in the path or credentials: show only the endpoint.
        self.url = _endpoint(url)
        self.reason = reason
        super().__init__(f"the chain node at {self.url} is unavailable ({reason}); {hint}")


class WrongChainError(ChainError):
    """Raised when the node's chain id differs from the expected one."""

    def __init__(self, expected: int, actual: int, source: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{source} expects chain id {expected}, but the node reports {actual}")


class TransactionFailedError(ChainError):
    """Raised when a transaction could not be sent, reverted without a known error, or timed out."""

    def __init__(self, tx_hash: str, reason: str) -> None:
        self.tx_hash = tx_hash
        self.reason = reason
        super().__init__(f"transaction {tx_hash}: {reason}")


class ContractRevert(ChainError):
    """Raised when a contract call reverts with a known error; `error` names it.

    ``ledger.chain.reverts`` holds one subclass per custom error, so callers can catch exactly
    the error they expect; `arguments` maps the error's parameter names to decoded values.
    """

    def __init__(self, error: str, arguments: dict[str, Any]) -> None:
        self.error = error
        self.arguments = arguments
        shown = ", ".join(f"{k}={v}" for k, v in arguments.items())
        super().__init__(f"contract reverted: {error}({shown})")


class AnvilError(ChainError):
    """Raised when the embedded anvil node cannot be started, or does not answer as expected."""

    def __init__(self, reason: str, *, output: str = "") -> None:
        self.reason = reason
        self.output = output
        message = f"anvil: {reason}"
        if output:
            message += f"\n--- anvil output (last lines) ---\n{output}"
        super().__init__(message)


class AnvilNotFoundError(AnvilError):
    """Raised when the anvil binary is not where the project installs it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"no anvil executable at {path}; run `make setup` to install the toolchain from npm"
        )


class StoreError(LedgerError):
    """Raised when the database cannot be opened, queried or migrated."""


class DatabaseUnavailableError(StoreError):
    """Raised when the database URL cannot be opened; names ``LEDGER_DATABASE_URL``.

    `url` is shown with its password hidden.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"the database at {url} is unavailable ({reason}); check LEDGER_DATABASE_URL, "
            "or unset it to use the SQLite file in the data dir"
        )


class MigrationError(StoreError):
    """Raised when applying the Alembic migrations to the database fails."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"migrating the database at {url} failed: {reason}")


class MerkleError(LedgerError):
    """Raised when a Merkle tree cannot be built, read or proved."""


class MerkleEncodingError(MerkleError, ValueError):
    """Raised when a leaf value does not fit the tree's leaf encoding, or a type is not an ABI type.

    `index` is the value's position in the input, if known; a bad type has `value` None.
    """

    def __init__(self, index: int | None, abi_type: str, value: object, reason: str) -> None:
        self.index = index
        self.abi_type = abi_type
        self.value = value
        self.reason = reason
        if value is None and index is None:
            message = f"leaf encoding: {abi_type!r} is {reason}"
        else:
            subject = "" if index is None else f"value {index}: "
            message = f"{subject}{value!r} does not fit ABI type {abi_type!r}: {reason}"
        super().__init__(message)


class MerkleEmptyTreeError(MerkleError, ValueError):
    """Raised when a tree is built from no values (a Merkle tree needs at least one leaf)."""

    def __init__(self) -> None:
        super().__init__("a Merkle tree needs at least one value, got none")


class MerkleLeafNotFoundError(MerkleError, LookupError):
    """Raised when a value index is out of range, or a value is not a leaf of the tree."""

    def __init__(self, *, index: int | None = None, value: object = None, size: int) -> None:
        self.index = index
        self.value = value
        self.size = size
        what = f"index {index}" if index is not None else f"value {value!r}"
        super().__init__(f"{what} is not a leaf of this tree of {size} values")


class MerkleFormatError(MerkleError, ValueError):
    """Raised when a tree dump, a root or a proof is malformed or does not hash up; `field` names
    the part (e.g. ``tree[3]``, ``values[0].treeIndex``, ``proof[1]``)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"Merkle tree {field}: {reason}")


class IndexerError(LedgerError):
    """Raised when the event index cannot follow the chain."""


class EventMappingError(IndexerError):
    """Raised when the event-to-table mapping names an event or parameter the ABI lacks.

    `suggestion` is the closest name the ABI has, if any: a renamed parameter is a one-line
    edit of ``ledger/indexer/mapping.py``.
    """

    def __init__(
        self, contract: str, event: str, reason: str, *, suggestion: str | None = None
    ) -> None:
        self.contract = contract
        self.event = event
        self.reason = reason
        self.suggestion = suggestion
        message = f"event mapping of {contract}.{event}: {reason}"
        if suggestion:
            message += f"; did you mean {suggestion!r}?"
        super().__init__(message + " (edit ledger/indexer/mapping.py)")


class IndexMismatchError(IndexerError):
    """Raised when the database already holds the index of another chain or deployment."""

    def __init__(self, chain_id: int, expected: str, found: str) -> None:
        self.chain_id = chain_id
        self.expected = expected
        self.found = found
        super().__init__(
            f"the database indexes chain {chain_id} deployed at block hash {found}, but the "
            f"deployment manifest says {expected}; run `ledger index --reset` to start over, "
            "or point LEDGER_DATABASE_URL at another database"
        )


class StaleDeploymentError(IndexerError):
    """Raised when the deployment manifest's deploy block is not on the chain any more."""

    def __init__(self, chain_id: int, block: int, expected: str, found: str | None) -> None:
        self.chain_id = chain_id
        self.block = block
        self.expected = expected
        self.found = found
        super().__init__(
            f"chain {chain_id} has {'block hash ' + found if found else 'no block'} at the "
            f"deploy block {block}, not the manifest's {expected}: the chain was reset or "
            "reorganised; run `ledger deploy`, then `ledger index --reset`"
        )


class LogQueryError(ChainError):
    """Raised when the node refuses ``eth_getLogs`` even for a range of one block."""

    def __init__(self, block: int, reason: str) -> None:
        self.block = block
        self.reason = reason
        super().__init__(f"the node refuses the logs of block {block}: {reason}")


def _endpoint(url: str) -> str:
    """`url` reduced to scheme, host and port (no credentials, path or query)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "<the configured node>"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _rebuild(cls: type[LedgerError], message: str, state: dict[str, Any]) -> LedgerError:
    """Unpickle a `LedgerError` leaf without calling its structured ``__init__``."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error

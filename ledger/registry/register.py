"""Registering a vault dataset in ``DataRegistry`` and publishing its later versions.

Vault version N is on-chain version N: `register` sends version 1 (``register``), and
`publish_versions` sends versions 2, 3, ... in order (``publishVersion``, which links each to the
one before). Before anything is sent every manifest involved is verified against its files
(`ledger.registry.manifest.verify_manifest`), the version sequence is checked (each version's
``previous_commitment`` is the previous version's commitment, on chain too), and the metadata is
validated; a failure sends nothing and writes nothing.

Both are idempotent and crash-safe. Just before a send the intent (version, commitment, the
owner's nonce, the block) is written to ``registration.json``. A later run that finds a
registration or an intent looks at the chain first: it waits for a transaction still pending
with that nonce, then looks for the ``DatasetRegistered`` event of the owner with the same
commitment (or the published version), and adopts it instead of sending again. A deleted
``registration.json`` is rebuilt the same way from the events.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from sqlalchemy import Engine
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import EventData, TxReceipt

from ledger.chain import reverts
from ledger.chain.client import call, connect
from ledger.chain.deploy import Deployment, contracts_of, load_deployment
from ledger.chain.sender import SendPolicy, TxSender
from ledger.registry.documents import load_document, store_document
from ledger.registry.errors import (
    DatasetNotFoundError,
    MetadataError,
    OwnerShareError,
    RegistrationStateError,
    VersionSequenceError,
)
from ledger.registry.manifest import (
    VaultManifest,
    check_name,
    dataset_dir,
    public_columns,
    vault_versions,
    verify_manifest,
    version_dir,
)
from ledger.registry.metadata import (
    MetadataDocument,
    MetadataInput,
    build_document,
    load_metadata_input,
)
from ledger.registry.records import (
    PendingSend,
    RegisteredVersion,
    Registration,
    load_registration,
    metadata_path,
    registration_path,
    save_registration,
    write_metadata_file,
)
from ledger.settings import Settings
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade

__all__ = [
    "DEFAULT_OWNER_SHARE_BPS",
    "RegistryContext",
    "VersionResult",
    "open_registry",
    "owner_vault",
    "publish_versions",
    "register",
]

#: The owner's revenue share when none is given: 70 %, the rest to the contributor pool.
DEFAULT_OWNER_SHARE_BPS: Final = 7_000
_MAX_BPS: Final = 10_000
_LOG_SPAN: Final = 50_000


@dataclass(frozen=True)
class RegistryContext:
    """What registration needs: the chain, the owner's sender, the deployment, the database
    (migrated) and the data dir."""

    w3: Web3
    sender: TxSender
    deployment: Deployment
    registry: Contract
    engine: Engine
    data_dir: Path

    @property
    def owner(self) -> ChecksumAddress:
        """The owner's address (the sender's)."""
        return self.sender.address

    @property
    def vault_root(self) -> Path:
        """The owner's vault: ``<data dir>/vault/<owner>``."""
        return owner_vault(self.data_dir, self.owner)


@dataclass(frozen=True)
class VersionResult:
    """A dataset version on chain; `sent` is False when an earlier run had sent it."""

    name: str
    dataset_id: int
    version: int
    commitment: str
    metadata_hash: str
    metadata_uri: str
    tx_hash: str
    block_number: int
    sent: bool


def owner_vault(data_dir: Path, owner: str) -> Path:
    """``<data dir>/vault/<owner checksum address>``."""
    return data_dir / "vault" / to_checksum_address(owner)


@contextmanager
def open_registry(settings: Settings) -> Iterator[RegistryContext]:
    """A `RegistryContext` from settings: the node, its deployment, the owner key
    (LEDGER_OWNER_KEY) and the database (migrated first); the engine is disposed of after.

    Raises:
        RpcUnavailableError, WrongChainError: the node cannot be used.
        DeploymentNotFoundError: the chain has no deployment (run `ledger deploy`).
        SettingsError: no owner key for a non-embedded chain.
        DatabaseUnavailableError, MigrationError: the database cannot be used.
    """
    w3 = connect(settings)
    deployment = load_deployment(settings.resolved_deployments_dir, w3.eth.chain_id)
    sender = TxSender(
        w3, settings.resolved_owner_key(), SendPolicy(confirmations=settings.confirmations)
    )
    url = settings.resolved_database_url
    upgrade(url)
    engine = open_engine(url)
    try:
        yield RegistryContext(
            w3=w3,
            sender=sender,
            deployment=deployment,
            registry=contracts_of(w3, deployment)["DataRegistry"],
            engine=engine,
            data_dir=settings.data_dir,
        )
    finally:
        engine.dispose()


def register(
    ctx: RegistryContext,
    name: str,
    metadata: MetadataInput | Path,
    *,
    version: int = 1,
    owner_share_bps: int = DEFAULT_OWNER_SHARE_BPS,
) -> VersionResult:
    """Register vault version 1 of dataset `name` with its FAIR metadata, or find that an
    earlier run did (then nothing is sent).

    Raises:
        OwnerShareError: `owner_share_bps` is not 0..10,000.
        DatasetNameError: `name` is not a valid dataset name.
        VersionSequenceError: `version` is not 1 (later versions go through `publish_versions`).
        DatasetNotFoundError: the vault has no such version.
        ManifestError: the manifest does not match its files (nothing sent).
        MetadataError: the metadata breaks a rule (nothing sent).
        RegistrationStateError: registration.json disagrees with the chain or this deployment,
            the dataset was registered with other metadata, or an earlier send is still pending.
        ContractRevert, TransactionFailedError, RpcUnavailableError: the send failed.
    """
    if isinstance(owner_share_bps, bool) or not 0 <= owner_share_bps <= _MAX_BPS:
        raise OwnerShareError(owner_share_bps)
    check_name(name)
    if version != 1:
        raise VersionSequenceError(
            name,
            version,
            "`register` publishes version 1; later versions go on chain with "
            "`ledger dataset version` once version 1 is registered",
        )
    owner_input = metadata if isinstance(metadata, MetadataInput) else load_metadata_input(metadata)
    base = dataset_dir(ctx.vault_root, name)
    manifest, document = _prepare(ctx, name, 1, owner_input)
    record = _load_record(ctx, base, name)

    if record.dataset_id is not None and "1" in record.versions:
        done = record.versions["1"]
        _check_same(base, done, manifest, document)
        _check_chain_holds(ctx, base, record.dataset_id, done)
        _store(ctx, base, document, record.dataset_id)
        return _result(name, record.dataset_id, 1, done, sent=False)

    from_block = ctx.deployment.deploy_block
    if record.pending is not None:
        _wait_for_pending(ctx, base, record.pending)
        from_block = record.pending.from_block
    found = _find_registration(ctx, manifest.commitment, from_block)
    if found is not None:
        event_metadata = "0x" + bytes(found["args"]["metadataHash"]).hex()
        if event_metadata != document.hash:
            raise RegistrationStateError(
                registration_path(base),
                f"dataset {found['args']['datasetId']} already registers this version with "
                f"other metadata ({event_metadata}); publish a new version to change metadata",
            )
        dataset_id = int(found["args"]["datasetId"])
        done = _registered(manifest, document, found["transactionHash"].to_0x_hex(), found)
        _finish(ctx, base, record, dataset_id, 1, done, document)
        return _result(name, dataset_id, 1, done, sent=False)

    fn = ctx.registry.functions.register(
        _version_tuple(manifest, document), owner_share_bps, document.uri
    )
    receipt = _send_with_intent(ctx, base, record, 1, manifest, document, fn)
    (event,) = ctx.registry.events.DatasetRegistered().process_receipt(receipt, errors=DISCARD)
    dataset_id = int(event["args"]["datasetId"])
    done = _registered(manifest, document, receipt["transactionHash"].to_0x_hex(), event)
    _finish(ctx, base, record, dataset_id, 1, done, document)
    return _result(name, dataset_id, 1, done, sent=True)


def publish_versions(
    ctx: RegistryContext,
    name: str,
    *,
    up_to: int | None = None,
    metadata: MetadataInput | Path | None = None,
) -> list[VersionResult]:
    """Publish every vault version of `name` after the chain's head, up to `up_to` (default:
    the vault's latest), in order; versions already on chain are reported with ``sent=False``.

    Without `metadata` each new version carries the previous version's owner-written fields.

    Raises:
        DatasetNameError: `name` is not a valid dataset name.
        DatasetNotFoundError: the dataset is not registered, or the vault lacks a version.
        ManifestError: a manifest does not match its files (nothing sent).
        VersionSequenceError: a version does not link the one before it (nothing sent).
        MetadataError: the metadata breaks a rule, or there is none to carry over.
        RegistrationStateError: registration.json disagrees with the chain or this deployment,
            the owner key does not own the dataset, or an earlier send is still pending.
        ContractRevert, TransactionFailedError, RpcUnavailableError: a send failed.
    """
    check_name(name)
    base = dataset_dir(ctx.vault_root, name)
    record = _load_record(ctx, base, name)
    if record.dataset_id is None:
        raise DatasetNotFoundError(
            f"registration of dataset {name!r}",
            f"register it first: `ledger dataset register {name} --metadata FILE`",
        )
    dataset_id = record.dataset_id
    available = vault_versions(ctx.vault_root, name)
    target = up_to if up_to is not None else max(available, default=0)
    if target < 1 or target not in available:
        raise DatasetNotFoundError(
            f"vault version {target} of dataset {name!r}",
            "ingest it first with `ledger dataset ingest`",
        )
    if "1" not in record.versions:
        raise RegistrationStateError(
            registration_path(base), "has a dataset id but no version 1; move it away and rerun"
        )
    _check_chain_holds(ctx, base, dataset_id, record.versions["1"])
    if record.pending is not None:
        _wait_for_pending(ctx, base, record.pending)
    owner = call(ctx.registry.functions.ownerOf(dataset_id))
    if owner != ctx.owner:
        raise RegistrationStateError(
            registration_path(base),
            f"dataset {dataset_id} is owned by {owner}, not by the owner key's {ctx.owner}",
        )
    head = int(call(ctx.registry.functions.headOf(dataset_id))[0])
    given = None
    if metadata is not None:
        given = metadata if isinstance(metadata, MetadataInput) else load_metadata_input(metadata)

    # Verify everything before the first send: manifests, links, metadata.
    plans: list[tuple[int, VaultManifest, MetadataDocument]] = []
    previous_commitment = _version_on_chain(ctx, dataset_id, min(head, target))
    carried: MetadataInput | None = given
    results: list[VersionResult] = []
    for number in range(2, target + 1):
        if number <= head:
            manifest = verify_manifest(
                version_dir(ctx.vault_root, name, number),
                name=name,
                version=number,
                owner=ctx.owner,
                deep=False,
            )
            on_chain = _version_on_chain(ctx, dataset_id, number)
            if on_chain != manifest.commitment.lower():
                raise VersionSequenceError(
                    name, number, "the chain holds another commitment for this version"
                )
            continue
        if number == head + 1 and carried is None:
            carried = _previous_input(ctx, base, number - 1)
        assert carried is not None
        manifest, document = _prepare(ctx, name, number, carried)
        if (manifest.previous_commitment or "").lower() != previous_commitment:
            raise VersionSequenceError(
                name,
                number,
                f"previous_commitment {manifest.previous_commitment} is not version "
                f"{number - 1}'s commitment {previous_commitment}",
            )
        previous_commitment = manifest.commitment.lower()
        plans.append((number, manifest, document))

    for number in range(1, min(head, target) + 1):
        results.append(_adopt_version(ctx, base, name, record, dataset_id, number))
        record = load_registration(base) or record
    for number, manifest, document in plans:
        fn = ctx.registry.functions.publishVersion(
            dataset_id, _version_tuple(manifest, document), document.uri
        )
        receipt = _send_with_intent(ctx, base, record, number, manifest, document, fn)
        (event,) = ctx.registry.events.DatasetVersionPublished().process_receipt(
            receipt, errors=DISCARD
        )
        done = _registered(manifest, document, receipt["transactionHash"].to_0x_hex(), event)
        record = _finish(ctx, base, record, dataset_id, number, done, document)
        results.append(_result(name, dataset_id, number, done, sent=True))
    return results


# --- preparation -------------------------------------------------------------------------------


def _prepare(
    ctx: RegistryContext, name: str, number: int, owner_input: MetadataInput
) -> tuple[VaultManifest, MetadataDocument]:
    directory = version_dir(ctx.vault_root, name, number)
    manifest = verify_manifest(directory, name=name, version=number, owner=ctx.owner)
    document = build_document(
        owner_input,
        name=name,
        version=number,
        row_count=manifest.row_count,
        contributor_count=len(manifest.contributor_rows),
        columns=public_columns(directory, manifest),
        schema_hash=manifest.schema_hash,
        commitment=manifest.commitment,
        previous_commitment=manifest.previous_commitment,
    )
    return manifest, document


def _previous_input(ctx: RegistryContext, base: Path, number: int) -> MetadataInput:
    path = metadata_path(base, number)
    if path.is_file():
        return MetadataDocument.from_json(path.read_bytes()).owner_input
    record = load_registration(base)
    done = None if record is None else record.versions.get(str(number))
    if done is not None:
        document = load_document(ctx.engine, done.metadata_hash)
        if document is not None:
            return document.owner_input
    raise MetadataError(
        "(file)", f"no metadata of version {number} to carry over; pass --metadata FILE"
    )


def _load_record(ctx: RegistryContext, base: Path, name: str) -> Registration:
    record = load_registration(base)
    chain_id = ctx.deployment.chain_id
    registry = ctx.registry.address
    if record is None:
        return Registration(name=name, chain_id=chain_id, registry=registry, owner=ctx.owner)
    if (record.chain_id, record.registry, record.owner) != (chain_id, registry, ctx.owner):
        raise RegistrationStateError(
            registration_path(base),
            f"records a registration by {record.owner} on chain {record.chain_id} at registry "
            f"{record.registry}, not by {ctx.owner} on chain {chain_id} at {registry}; "
            "move the file away to register on this chain",
        )
    return record


def _check_same(
    base: Path, done: RegisteredVersion, manifest: VaultManifest, document: MetadataDocument
) -> None:
    if done.commitment != manifest.commitment.lower():
        raise RegistrationStateError(
            registration_path(base),
            "version 1 was registered with another commitment than the vault's v1 holds now",
        )
    if done.metadata_hash != document.hash:
        raise RegistrationStateError(
            registration_path(base),
            f"version 1 is registered with other metadata ({done.metadata_hash}); publish a "
            "new version to change the metadata",
        )


def _version_tuple(manifest: VaultManifest, document: MetadataDocument) -> tuple[bytes, ...]:
    return tuple(
        bytes.fromhex(h[2:])
        for h in (
            manifest.commitment,
            manifest.contributors_root,
            manifest.schema_hash,
            document.hash,
        )
    )


# --- chain -------------------------------------------------------------------------------------


def _check_chain_holds(
    ctx: RegistryContext, base: Path, dataset_id: int, done: RegisteredVersion
) -> None:
    """The chain must hold the recorded version 1, else the record is of another chain."""
    stored = _version_on_chain(ctx, dataset_id, 1)
    if stored != done.commitment:
        raise RegistrationStateError(
            registration_path(base),
            f"records dataset {dataset_id}, but the chain holds "
            f"{'another commitment' if stored else 'no such dataset'} for its version 1 "
            "(was the chain reset?); move the file away to register on this chain",
        )


def _version_on_chain(ctx: RegistryContext, dataset_id: int, number: int) -> str | None:
    """The commitment of a version on chain, or None if the dataset or version does not exist."""
    try:
        stored = call(ctx.registry.functions.versionOf(dataset_id, number))
    except (reverts.DataRegistryUnknownDataset, reverts.DataRegistryUnknownVersion):
        return None
    return "0x" + bytes(stored[0]).hex()


def _find_registration(ctx: RegistryContext, commitment: str, from_block: int) -> EventData | None:
    """The owner's ``DatasetRegistered`` event with `commitment`, from `from_block` on."""
    event = ctx.registry.events.DatasetRegistered()
    latest = ctx.w3.eth.block_number
    wanted = bytes.fromhex(commitment[2:])
    start = from_block
    while start <= latest:
        end = min(start + _LOG_SPAN - 1, latest)
        logs: list[EventData] = list(
            event.get_logs(argument_filters={"owner": ctx.owner}, from_block=start, to_block=end)
        )
        for log in logs:
            if bytes(log["args"]["commitment"]) == wanted:
                return log
        start = end + 1
    return None


def _find_version_event(ctx: RegistryContext, dataset_id: int, number: int) -> EventData | None:
    """The ``DatasetVersionPublished`` event of a version (both are indexed topics)."""
    event = ctx.registry.events.DatasetVersionPublished()
    logs = list(
        event.get_logs(
            argument_filters={"datasetId": dataset_id, "version": number},
            from_block=ctx.deployment.deploy_block,
            to_block="latest",
        )
    )
    return None if not logs else logs[-1]


def _wait_for_pending(ctx: RegistryContext, base: Path, pending: PendingSend) -> None:
    """Wait until the intent's nonce is used on chain, if a transaction with it is pending."""
    eth = ctx.w3.eth
    if eth.get_transaction_count(ctx.owner, "latest") > pending.nonce:
        return
    if eth.get_transaction_count(ctx.owner, "pending") <= pending.nonce:
        return  # never broadcast: nothing to wait for
    deadline = time.monotonic() + ctx.sender.policy.receipt_timeout
    while time.monotonic() < deadline:
        if eth.get_transaction_count(ctx.owner, "latest") > pending.nonce:
            return
        time.sleep(ctx.sender.policy.poll_interval)
    raise RegistrationStateError(
        registration_path(base),
        f"a transaction of an earlier run (nonce {pending.nonce}) is still pending; "
        "wait for it to be mined and run the command again",
    )


def _send_with_intent(
    ctx: RegistryContext,
    base: Path,
    record: Registration,
    number: int,
    manifest: VaultManifest,
    document: MetadataDocument,
    fn: Any,
) -> TxReceipt:
    """Record the intent (and the version's metadata document beside it), send, and on a
    failure that sent nothing leave no trace of the attempt."""
    nonce = ctx.w3.eth.get_transaction_count(ctx.owner, "pending")
    intent = PendingSend(
        version=number,
        commitment=manifest.commitment.lower(),
        metadata_hash=document.hash,
        nonce=nonce,
        from_block=ctx.w3.eth.block_number,
    )
    existed = registration_path(base).is_file()
    had_document = metadata_path(base, number).is_file()
    save_registration(base, record.model_copy(update={"pending": intent}))
    # Written before the send, so a run that adopts a sent version after a crash finds it.
    write_metadata_file(base, document)
    try:
        return ctx.sender.send(fn)
    except BaseException:
        try:
            unsent = ctx.w3.eth.get_transaction_count(ctx.owner, "pending") <= nonce
        except Exception:  # the node is gone: keep the intent, the next run checks the chain
            unsent = False
        if unsent:
            # Nothing was broadcast: leave no trace of the attempt.
            if existed:
                save_registration(base, record)
            else:
                registration_path(base).unlink(missing_ok=True)
            if not had_document:
                metadata_path(base, number).unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # only if now empty
                    metadata_path(base, number).parent.rmdir()
        raise


def _registered(
    manifest: VaultManifest, document: MetadataDocument, tx_hash: str, event: EventData
) -> RegisteredVersion:
    return RegisteredVersion(
        commitment=manifest.commitment.lower(),
        metadata_hash=document.hash,
        metadata_uri=document.uri,
        tx_hash=tx_hash,
        block_number=int(event["blockNumber"]),
        block_hash=event["blockHash"].to_0x_hex(),
    )


def _adopt_version(
    ctx: RegistryContext,
    base: Path,
    name: str,
    record: Registration,
    dataset_id: int,
    number: int,
) -> VersionResult:
    """A version already on chain, recorded in registration.json if it was not."""
    done = record.versions.get(str(number))
    if done is not None:
        _store_if_known(ctx, base, dataset_id, number, done.metadata_hash)
        return _result(name, dataset_id, number, done, sent=False)
    if number == 1:
        raise RegistrationStateError(
            registration_path(base), "has a dataset id but no version 1; move it away and rerun"
        )
    event = _find_version_event(ctx, dataset_id, number)
    if event is None:
        raise RegistrationStateError(
            registration_path(base), f"version {number} is on chain but its event is not found"
        )
    directory = version_dir(ctx.vault_root, name, number)
    manifest = verify_manifest(directory, name=name, version=number, owner=ctx.owner)
    metadata_hash = "0x" + bytes(event["args"]["metadataHash"]).hex()
    uri = str(event["args"]["metadataURI"])
    done = RegisteredVersion(
        commitment=manifest.commitment.lower(),
        metadata_hash=metadata_hash,
        metadata_uri=uri,
        tx_hash=event["transactionHash"].to_0x_hex(),
        block_number=int(event["blockNumber"]),
        block_hash=event["blockHash"].to_0x_hex(),
    )
    versions = dict(record.versions)
    versions[str(number)] = done
    save_registration(base, record.model_copy(update={"versions": versions, "pending": None}))
    _store_if_known(ctx, base, dataset_id, number, metadata_hash)
    return _result(name, dataset_id, number, done, sent=False)


def _store_if_known(
    ctx: RegistryContext, base: Path, dataset_id: int, number: int, metadata_hash: str
) -> None:
    """Store the version's metadata document in the database if the file beside the vault
    version is the one registered (repairs a run that stopped before the database write)."""
    path = metadata_path(base, number)
    if path.is_file():
        document = MetadataDocument.from_json(path.read_bytes())
        if document.hash == metadata_hash:
            store_document(ctx.engine, document, dataset_id=dataset_id, version=number)


def _finish(
    ctx: RegistryContext,
    base: Path,
    record: Registration,
    dataset_id: int,
    number: int,
    done: RegisteredVersion,
    document: MetadataDocument,
) -> Registration:
    versions = dict(record.versions)
    versions[str(number)] = done
    updated = record.model_copy(
        update={"dataset_id": dataset_id, "versions": versions, "pending": None}
    )
    save_registration(base, updated)
    _store(ctx, base, document, dataset_id)
    return updated


def _store(ctx: RegistryContext, base: Path, document: MetadataDocument, dataset_id: int) -> None:
    write_metadata_file(base, document)
    store_document(ctx.engine, document, dataset_id=dataset_id, version=document.version)


def _result(
    name: str, dataset_id: int, number: int, done: RegisteredVersion, *, sent: bool
) -> VersionResult:
    return VersionResult(
        name=name,
        dataset_id=dataset_id,
        version=number,
        commitment=done.commitment,
        metadata_hash=done.metadata_hash,
        metadata_uri=done.metadata_uri,
        tx_hash=done.tx_hash,
        block_number=done.block_number,
        sent=sent,
    )

"""Registration against a real anvil and the catalog on SQLite and PostgreSQL: register, index,
search and show; versions linking the one before; reruns that send nothing; tampered manifests
and bad shares refused with nothing sent or written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from sqlalchemy import Engine, select
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.chain.sender import TxSender
from ledger.errors import ChainError
from ledger.registry.catalog import dataset_detail, resolve_metadata_uri, search_datasets
from ledger.registry.errors import (
    CatalogQueryError,
    DatasetNotFoundError,
    ManifestError,
    MetadataError,
    OwnerShareError,
    RegistrationStateError,
    VersionSequenceError,
)
from ledger.registry.metadata import parse_metadata_input
from ledger.registry.register import (
    RegistryContext,
    owner_vault,
    publish_versions,
    register,
)
from ledger.rights.typed_data import grant_as_tuple
from ledger.settings import ANVIL_DEV_KEYS
from ledger.store.models import DatasetMetadata
from tests.integration.chain import LedgerContracts, dev_accounts, transact
from tests.integration.indexing import PRICE, ZERO_ADDRESS, deploy_for_index, make_grant, open_index
from tests.unit.registry.vaultfiles import metadata_fields, write_version


@dataclass
class Env:
    ctx: RegistryContext
    ledger: LedgerContracts
    url: str

    @property
    def vault(self) -> Path:
        return self.ctx.vault_root

    @property
    def base(self) -> Path:
        return self.vault / "datasets"

    def nonce(self) -> int:
        return self.ctx.w3.eth.get_transaction_count(self.ctx.owner)

    def index(self) -> None:
        indexer, engine = open_index(self.ctx.w3, self.ctx.deployment, self.url)
        try:
            indexer.run_once()
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    with Anvil() as node:
        yield node


@contextmanager
def _env(anvil: Anvil, tmp_path: Path, url: str) -> Iterator[Env]:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployment, contracts = deploy_for_index(w3, tmp_path / "deployments")
    indexer, engine = open_index(w3, deployment, url)  # migrates
    ctx = RegistryContext(
        w3=w3,
        sender=TxSender(w3, ANVIL_DEV_KEYS[1]),
        deployment=deployment,
        registry=contracts.registry,
        engine=engine,
        data_dir=tmp_path / "data",
    )
    try:
        yield Env(ctx, contracts, url)
    finally:
        engine.dispose()


@pytest.fixture()
def env(anvil: Anvil, tmp_path: Path, database_url: str) -> Iterator[Env]:
    """A fresh deployment, the owner's context, and a database (SQLite and PostgreSQL)."""
    with _env(anvil, tmp_path, database_url) as made:
        yield made


@pytest.fixture()
def chain_env(anvil: Anvil, tmp_path: Path) -> Iterator[Env]:
    """As `env` on SQLite only, for tests of the chain side (the database is incidental)."""
    with _env(anvil, tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}") as made:
        yield made


def _metadata(tmp: Path, **changes: object) -> Path:
    path = tmp / f"meta-{keccak(text=repr(changes)).hex()[:8]}.json"
    path.write_text(json.dumps(metadata_fields(**changes)))
    return path


def _metadata_rows(engine: Engine) -> list[DatasetMetadata]:
    with engine.connect() as connection:
        return list(connection.execute(select(DatasetMetadata)).all())  # type: ignore[arg-type]


def test_register_index_search_and_show(env: Env, tmp_path: Path) -> None:
    ctx = env.ctx
    write_version(env.vault, "diabetes-north", 1, ctx.owner, hospital=0)
    write_version(env.vault, "diabetes-south", 1, ctx.owner, hospital=2)
    north = register(ctx, "diabetes-north", _metadata(tmp_path), owner_share_bps=10_000)
    assert north.sent and north.dataset_id >= 1 and north.version == 1
    south = register(
        ctx,
        "diabetes-south",
        _metadata(
            tmp_path,
            title="Diabetes, south hospital",
            license="CC0-1.0",
            keywords=["diabetes", "south"],
        ),
        owner_share_bps=0,
    )
    assert south.dataset_id == north.dataset_id + 1

    record = json.loads((env.base / "diabetes-north" / "registration.json").read_text())
    assert record["dataset_id"] == north.dataset_id
    assert record["chain_id"] == ctx.deployment.chain_id
    assert record["registry"] == ctx.registry.address
    assert record["versions"]["1"]["tx_hash"] == north.tx_hash
    assert record["pending"] is None
    beside = env.base / "diabetes-north" / "metadata" / "v1.json"
    assert "0x" + keccak(beside.read_bytes()).hex() == north.metadata_hash
    on_chain = ctx.registry.functions.versionOf(north.dataset_id, 1).call()
    assert "0x" + on_chain[0].hex() == north.commitment

    env.index()
    everything = search_datasets(ctx.engine)
    assert [i.dataset_id for i in everything.items] == [south.dataset_id, north.dataset_id]
    hit = search_datasets(ctx.engine, "NORTH progression").items
    assert [i.dataset_id for i in hit] == [north.dataset_id]
    assert hit[0].license == "CC-BY-4.0" and hit[0].record_count == 100  # 148 rows, rounded
    assert hit[0].keywords == ["diabetes", "endocrinology", "progression"]
    assert search_datasets(ctx.engine, "100%_").total == 0  # wildcards are escaped
    by_license = search_datasets(ctx.engine, license="cc0-1.0").items
    assert [i.dataset_id for i in by_license] == [south.dataset_id]
    assert search_datasets(ctx.engine, keyword="endocrinology").items[0].dataset_id == (
        north.dataset_id
    )
    assert search_datasets(ctx.engine, keyword="endo").total == 0  # keywords match whole
    assert search_datasets(ctx.engine, owner=ctx.owner.lower()).total == 2
    assert search_datasets(ctx.engine, owner=dev_accounts(ctx.w3)[5]).total == 0
    page = search_datasets(ctx.engine, "diabetes", limit=1, offset=1)
    assert (page.total, [i.dataset_id for i in page.items]) == (2, [north.dataset_id])
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"license": "WTFPL"}):
        with pytest.raises(CatalogQueryError):
            search_datasets(ctx.engine, **bad)

    detail = dataset_detail(ctx.engine, north.dataset_id)
    assert detail.owner == ctx.owner and detail.owner_share_bps == 10_000
    assert detail.metadata is not None and detail.metadata.hash == north.metadata_hash
    assert detail.metadata.record_count == 100 and detail.metadata.contributor_count == 10
    names = [c.name for c in detail.metadata.columns]
    assert "patient_id" not in names and "record_id" not in names and "age" in names
    (v1,) = detail.versions
    assert (v1.commitment, v1.tx_hash, v1.previous_commitment) == (
        north.commitment,
        north.tx_hash,
        None,
    )
    assert v1.block_number == north.block_number and v1.has_metadata
    assert detail.usage.jobs == 0 and detail.usage.revenue == {}
    assert resolve_metadata_uri(ctx.engine, north.metadata_uri).title == detail.metadata.title
    with pytest.raises(DatasetNotFoundError):
        dataset_detail(ctx.engine, 999)
    with pytest.raises(DatasetNotFoundError):
        resolve_metadata_uri(ctx.engine, "ledger:metadata:0x" + "12" * 32)


def test_usage_statistics_come_from_the_chain(env: Env, tmp_path: Path) -> None:
    ctx, ledger = env.ctx, env.ledger
    write_version(env.vault, "diabetes", 1, ctx.owner, rows=30)
    result = register(ctx, "diabetes", _metadata(tmp_path))
    accounts = dev_accounts(ctx.w3)
    consumer, executor = accounts[2], accounts[3]
    dataset = result.dataset_id
    transact(ledger.registry.functions.setExecutor(dataset, executor, True), ctx.owner)
    grant = make_grant(ctx.w3, dataset, ctx.owner, consumer, 1)
    transact(ledger.grants.functions.issue(grant_as_tuple(grant)), ctx.owner)
    grant_id = ledger.grants.functions.grantId(grant_as_tuple(grant)).call()
    for n, uses in ((1, 2), (2, 1)):
        job = keccak(text=f"registry-job-{n}")
        fn = ledger.vault.functions.escrow(job, grant_id, ZERO_ADDRESS, uses * PRICE)
        transact(fn, consumer, value=uses * PRICE)
        job_tuple = (job, consumer, grant.algorithm_hash, grant.purpose, keccak(text=f"r{n}"))
        transact(
            ledger.usage.functions.recordUsage(
                job_tuple, [(grant_as_tuple(grant), 1, uses, 125_000)]
            ),
            executor,
        )
    env.index()
    usage = dataset_detail(ctx.engine, dataset).usage
    assert (usage.jobs, usage.uses, usage.epsilon_micro) == (2, 3, 250_000)
    fee = 3 * PRICE * 250 // 10_000
    assert usage.revenue == {ZERO_ADDRESS: 3 * PRICE - fee}


def test_versions_link_the_previous_one(env: Env, tmp_path: Path) -> None:
    ctx = env.ctx
    v1 = write_version(env.vault, "diabetes", 1, ctx.owner, rows=50)
    first = register(ctx, "diabetes", _metadata(tmp_path))
    write_version(
        env.vault, "diabetes", 2, ctx.owner, rows=60, previous_commitment=v1["commitment"]
    )
    v3 = write_version(
        env.vault, "diabetes", 3, ctx.owner, rows=70, previous_commitment="0x" + "ee" * 32
    )
    nonce = env.nonce()
    with pytest.raises(VersionSequenceError, match="previous_commitment"):
        publish_versions(ctx, "diabetes")  # v3 does not link v2: nothing at all is sent
    assert env.nonce() == nonce
    assert json.loads((env.base / "diabetes" / "registration.json").read_text())["pending"] is None

    results = publish_versions(ctx, "diabetes", up_to=2)
    assert [(r.version, r.sent) for r in results] == [(1, False), (2, True)]
    second = results[1]
    assert second.sent and second.version == 2 and second.dataset_id == first.dataset_id
    head = ctx.registry.functions.headOf(first.dataset_id).call()
    assert head[0] == 2
    again = publish_versions(ctx, "diabetes", up_to=2)
    assert [r.sent for r in again] == [False, False] and env.nonce() == nonce + 1

    env.index()
    detail = dataset_detail(ctx.engine, first.dataset_id)
    assert detail.version == 2
    assert [v.version for v in detail.versions] == [1, 2]
    assert detail.versions[1].previous_commitment == first.commitment
    assert detail.metadata is not None and detail.metadata.version == 2
    assert detail.metadata.title == metadata_fields()["title"]  # carried over from v1
    assert detail.metadata.previous_commitment == first.commitment
    assert detail.metadata.record_count == 100  # 60 rows
    assert v3["previous_commitment"] != second.commitment

    new_title = _metadata(tmp_path, title="Diabetes, revised")
    (v1_again, v2_again) = publish_versions(ctx, "diabetes", up_to=2, metadata=new_title)
    assert not v2_again.sent and v2_again.metadata_hash == second.metadata_hash


def test_reruns_send_nothing_and_recover_lost_records(env: Env, tmp_path: Path) -> None:
    ctx = env.ctx
    write_version(env.vault, "diabetes", 1, ctx.owner, rows=25)
    meta = _metadata(tmp_path)
    first = register(ctx, "diabetes", meta)
    nonce = env.nonce()
    count = ctx.registry.functions.datasetCount().call()

    again = register(ctx, "diabetes", meta)
    assert not again.sent and again.dataset_id == first.dataset_id

    record_file = env.base / "diabetes" / "registration.json"
    record_file.unlink()  # lost: rebuilt from the chain's events
    rebuilt = register(ctx, "diabetes", meta)
    assert not rebuilt.sent and rebuilt.tx_hash == first.tx_hash
    assert json.loads(record_file.read_text())["dataset_id"] == first.dataset_id

    # A crash after the send, before the record was written: the intent is all that is left.
    record = json.loads(record_file.read_text())
    intent = {
        "version": 1,
        "commitment": first.commitment,
        "metadata_hash": first.metadata_hash,
        "nonce": nonce - 1,
        "from_block": first.block_number - 1,
    }
    record.update(dataset_id=None, versions={}, pending=intent)
    record_file.write_text(json.dumps(record))
    recovered = register(ctx, "diabetes", meta)
    assert not recovered.sent and recovered.dataset_id == first.dataset_id
    assert json.loads(record_file.read_text())["pending"] is None
    assert env.nonce() == nonce
    assert ctx.registry.functions.datasetCount().call() == count

    with pytest.raises(RegistrationStateError, match="other metadata"):
        register(ctx, "diabetes", _metadata(tmp_path, title="Another title"))
    assert env.nonce() == nonce
    rows = _metadata_rows(ctx.engine)
    assert [(r.metadata_hash, r.dataset_id, r.version) for r in rows] == [
        (first.metadata_hash, first.dataset_id, 1)
    ]


def test_records_of_another_chain_are_refused(chain_env: Env, tmp_path: Path) -> None:
    ctx = chain_env.ctx
    manifest = write_version(chain_env.vault, "diabetes", 1, ctx.owner, rows=20)
    record_file = chain_env.base / "diabetes" / "registration.json"
    record = {
        "name": "diabetes",
        "chain_id": ctx.deployment.chain_id,
        "registry": ctx.registry.address,
        "owner": ctx.owner,
        "dataset_id": 999,
        "versions": {
            "1": {
                "commitment": manifest["commitment"],
                "metadata_hash": "0x" + "00" * 32,
                "metadata_uri": "ledger:metadata:0x" + "00" * 32,
                "tx_hash": "0x" + "00" * 32,
                "block_number": 1,
                "block_hash": "0x" + "00" * 32,
            }
        },
    }
    record_file.write_text(json.dumps(record))
    nonce = chain_env.nonce()
    with pytest.raises(RegistrationStateError, match="was the chain reset"):
        publish_versions(ctx, "diabetes")
    record_file.write_text(json.dumps(record | {"registry": ZERO_ADDRESS}))
    with pytest.raises(RegistrationStateError, match="move the file away"):
        register(ctx, "diabetes", _metadata(tmp_path))
    assert chain_env.nonce() == nonce


def test_an_intent_that_was_never_sent_is_sent(chain_env: Env, tmp_path: Path) -> None:
    ctx = chain_env.ctx
    write_version(chain_env.vault, "diabetes", 1, ctx.owner, rows=20)
    base = chain_env.base / "diabetes"
    nonce = chain_env.nonce()
    (base / "registration.json").write_text(
        json.dumps(
            {
                "name": "diabetes",
                "chain_id": ctx.deployment.chain_id,
                "registry": ctx.registry.address,
                "owner": ctx.owner,
                "pending": {
                    "version": 1,
                    "commitment": "0x" + "00" * 32,
                    "metadata_hash": "0x" + "00" * 32,
                    "nonce": nonce,
                    "from_block": ctx.w3.eth.block_number,
                },
            }
        )
    )
    result = register(ctx, "diabetes", _metadata(tmp_path))
    assert result.sent and chain_env.nonce() == nonce + 1


def test_tampered_manifest_is_refused_and_nothing_is_sent(env: Env, tmp_path: Path) -> None:
    ctx = env.ctx
    manifest = write_version(env.vault, "diabetes", 1, ctx.owner, rows=20)
    path = env.base / "diabetes" / "v1" / "manifest.json"
    manifest["commitment"] = "0x" + "12" * 32
    manifest["row_count"] = 19
    path.write_text(json.dumps(manifest))
    nonce, count = env.nonce(), ctx.registry.functions.datasetCount().call()
    with pytest.raises(ManifestError, match="row_count"):
        register(ctx, "diabetes", _metadata(tmp_path))
    with pytest.raises(MetadataError, match="license"):
        register(ctx, "diabetes", _metadata(tmp_path, license="unknown"))
    with pytest.raises(DatasetNotFoundError, match="ingest"):
        register(ctx, "nothing-here", _metadata(tmp_path))
    with pytest.raises(VersionSequenceError, match="ledger dataset version"):
        register(ctx, "diabetes", _metadata(tmp_path), version=2)
    with pytest.raises(DatasetNotFoundError, match="register it first"):
        publish_versions(ctx, "diabetes")
    assert env.nonce() == nonce
    assert ctx.registry.functions.datasetCount().call() == count
    assert not (env.base / "diabetes" / "registration.json").exists()
    assert not (env.base / "diabetes" / "metadata").exists()
    assert _metadata_rows(ctx.engine) == []


def test_a_send_that_fails_leaves_no_trace(chain_env: Env, tmp_path: Path) -> None:
    ctx = chain_env.ctx
    broke = Account.create()  # no ether: the node refuses the transaction
    poor = replace(ctx, sender=TxSender(ctx.w3, broke.key.hex()))
    write_version(poor.vault_root, "diabetes", 1, poor.owner, rows=20)
    count = ctx.registry.functions.datasetCount().call()
    with pytest.raises(ChainError):
        register(poor, "diabetes", _metadata(tmp_path))
    base = poor.vault_root / "datasets" / "diabetes"
    assert sorted(p.name for p in base.iterdir()) == ["v1"]
    assert ctx.registry.functions.datasetCount().call() == count
    assert _metadata_rows(ctx.engine) == []


def test_owner_share_out_of_range_is_refused(chain_env: Env) -> None:
    ctx = chain_env.ctx
    write_version(chain_env.vault, "diabetes", 1, ctx.owner, rows=20)
    nonce = chain_env.nonce()
    for share in (10_001, -1, 65_536):
        with pytest.raises(OwnerShareError, match="0..10000 basis points") as info:
            meta = parse_metadata_input(metadata_fields())
            register(ctx, "diabetes", meta, owner_share_bps=share)
        assert info.value.value == share
    assert chain_env.nonce() == nonce
    assert not (chain_env.base / "diabetes" / "registration.json").exists()


def test_owner_vault_is_per_owner(tmp_path: Path) -> None:
    owner = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
    assert owner_vault(tmp_path, owner) == tmp_path / "vault" / Web3.to_checksum_address(owner)

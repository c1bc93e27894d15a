"""The store on real SQLite and PostgreSQL: migrations from empty (and back), models and
migrations in agreement, exact 256-bit integers and UTC times, bulk inserts equal to ORM inserts,
and a clear error for a database that cannot be reached."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlmodel import Session

from ledger.errors import DatabaseUnavailableError, LedgerError, MigrationError
from ledger.indexer.state import table_of
from ledger.store.bulk import bulk_insert
from ledger.store.database import open_engine
from ledger.store.migrate import (
    current_revision,
    head_revision,
    migration_config,
    upgrade,
    upgrade_engine,
)
from ledger.store.models import Dataset, GrantRecord, GrantStatus, metadata

BIG = 2**256 - 1
WHEN = datetime(2026, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated, empty database."""
    upgrade(database_url)
    engine = open_engine(database_url)
    yield engine
    engine.dispose()


def dataset_row(dataset_id: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "dataset_id": dataset_id,
        "owner": "0x" + "ab" * 20,
        "owner_epoch": 0,
        "owner_share_bps": 7000,
        "version": 1,
        "commitment": "0x" + "01" * 32,
        "contributors_root": "0x" + "02" * 32,
        "schema_hash": "0x" + "03" * 32,
        "metadata_hash": "0x" + "04" * 32,
        "metadata_uri": "ipfs://x",
        "block_number": 7,
        "log_index": 1,
        "tx_hash": "0x" + "05" * 32,
        "block_time": WHEN,
        "updated_block": 7,
        "updated_at": WHEN,
    }
    row.update(changes)
    return row


def test_migrations_create_every_table_from_empty(database_url: str) -> None:
    engine = open_engine(database_url)
    try:
        assert current_revision(engine) is None
        assert not inspect(engine).get_table_names()
        upgrade(database_url)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert tables == set(metadata.tables) | {"alembic_version"}
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == [], "models and migrations differ"
        upgrade(database_url)  # a second upgrade is a no-op
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrations_downgrade_to_empty_and_up_again(engine: Engine) -> None:
    with engine.begin() as connection:
        command.downgrade(migration_config(connection), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert current_revision(engine) is None
    upgrade_engine(engine)
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())


def test_unknown_revision_is_a_migration_error(engine: Engine) -> None:
    with pytest.raises(MigrationError, match="nonexistent"):
        upgrade_engine(engine, "nonexistent")


def test_uint256_and_utc_times_round_trip_exactly(engine: Engine) -> None:
    ids = [9, 10, 2**64 + 1, 2**200, BIG]
    with Session(engine) as session:
        for dataset_id in reversed(ids):
            session.add(Dataset.model_validate(dataset_row(dataset_id)))
        session.commit()
    with Session(engine) as session:
        rows = session.exec(select(Dataset).order_by(Dataset.dataset_id)).scalars().all()  # type: ignore[call-overload]
        assert [row.dataset_id for row in rows] == ids, "ordering must be numeric"
        assert all(row.block_time == WHEN and row.block_time.tzinfo is not None for row in rows)
        found = session.exec(select(Dataset).where(Dataset.dataset_id == BIG)).scalars().one()  # type: ignore[call-overload, arg-type]
        assert found.dataset_id == BIG
        larger = select(Dataset.dataset_id).where(Dataset.dataset_id > 2**64)  # type: ignore[arg-type]
        assert sorted(session.exec(larger).scalars().all()) == [2**64 + 1, 2**200, BIG]  # type: ignore[call-overload]


def test_other_time_zones_are_stored_as_utc(engine: Engine) -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=-5)))
    with Session(engine) as session:
        session.add(Dataset.model_validate(dataset_row(1, block_time=local)))
        session.commit()
    with Session(engine) as session:
        (stored,) = session.exec(select(Dataset.block_time)).scalars().all()  # type: ignore[call-overload]
    assert stored == WHEN and stored.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("column", "value"),
    [("dataset_id", 2**256), ("dataset_id", -1), ("block_time", WHEN.replace(tzinfo=None))],
)
def test_out_of_range_values_are_refused(engine: Engine, column: str, value: object) -> None:
    row = {**dataset_row(1), column: value}
    for insert_with_bulk in (False, True):
        with Session(engine) as session, pytest.raises(Exception) as info:  # noqa: PT011
            if insert_with_bulk:
                bulk_insert(session, table_of(Dataset), [row])
            else:
                session.add(Dataset.model_validate(row))
            session.flush()
        reasons = ("256-bit", "naive datetime", "greater than or equal to 1")
        assert any(reason in str(info.value) for reason in reasons), str(info.value)
    with Session(engine) as session:
        assert session.exec(select(Dataset)).scalars().all() == []  # type: ignore[call-overload]


def test_bulk_insert_stores_what_an_orm_insert_stores(engine: Engine) -> None:
    awkward = "ipfs://a\tb\nc\\d\re \u00e9 'quoted' \"double\""
    grant = {
        "grant_id": "0x" + "aa" * 32,
        "dataset_id": BIG,
        "grantor": "0x" + "11" * 20,
        "grantee": "0x" + "22" * 20,
        "algorithm_hash": "0x" + "33" * 32,
        "purpose": "0x" + "44" * 32,
        "valid_from": 0,
        "valid_until": 2**64 - 1,
        "max_uses": 2**32 - 1,
        "epsilon_budget": 2**64 - 1,
        "payment_token": "0x" + "00" * 20,
        "price_per_use": 2**88 - 1,
        "nonce": 2**255,
        "deadline": 1,
        "owner_epoch": 3,
        "relayed": True,
        "status": GrantStatus.REVOKED,
        "uses": 5,
        "epsilon_spent": 12,
        "revoked_block": None,
        "block_number": 9,
        "log_index": 0,
        "tx_hash": "0x" + "55" * 32,
        "block_time": WHEN,
        "updated_block": 9,
        "updated_at": WHEN,
    }
    with Session(engine) as session:
        bulk_insert(session, table_of(Dataset), [dataset_row(1, metadata_uri=awkward)])
        bulk_insert(session, table_of(GrantRecord), [grant])
        session.add(Dataset.model_validate(dataset_row(2, metadata_uri=awkward)))
        session.add(GrantRecord.model_validate({**grant, "grant_id": "0x" + "bb" * 32}))
        session.commit()
    with engine.connect() as connection:
        datasets = connection.execute(select(table_of(Dataset))).mappings().all()
        grants = connection.execute(select(table_of(GrantRecord))).mappings().all()
    by_id = {row["dataset_id"]: dict(row) for row in datasets}
    assert by_id[1]["metadata_uri"] == awkward
    assert {**by_id[1], "dataset_id": 2} == by_id[2]
    bulk, orm = sorted((dict(row) for row in grants), key=lambda r: r["grant_id"])
    assert bulk["revoked_block"] is None and bulk["relayed"] is True
    assert bulk["status"] == "revoked"
    assert {**bulk, "grant_id": orm["grant_id"]} == orm


def test_bulk_insert_of_a_duplicate_key_is_an_integrity_error(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    with Session(engine) as session:
        bulk_insert(session, table_of(Dataset), [dataset_row(1)])
        with pytest.raises(IntegrityError):
            bulk_insert(session, table_of(Dataset), [dataset_row(1)])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ledger:s3cret-pw@127.0.0.1:1/ledger",
        "postgresql+psycopg://postgres@127.0.0.1:5432/no_such_database_here",
        "sqlite:////dev/null/ledger.db",
    ],
)
def test_unreachable_database_names_the_setting(url: str) -> None:
    for attempt in (open_engine, upgrade):
        with pytest.raises(DatabaseUnavailableError) as info:
            attempt(url)
        message = str(info.value)
        assert "LEDGER_DATABASE_URL" in message
        assert "s3cret-pw" not in message, "the password must not be shown"
        assert isinstance(info.value, LedgerError)


def test_malformed_url_is_refused_clearly() -> None:
    with pytest.raises(DatabaseUnavailableError, match="not a database URL"):
        open_engine("not a url at all")

"""The event-to-table mapping: it fits the shipped ABIs, every ABI event is classified, a changed
event is reported with the entry to edit, and rows and touched state come out as mapped."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_typing import ABI

from ledger.chain.artifacts import CONTRACT_NAMES, load_artifact
from ledger.errors import EventMappingError
from ledger.indexer.decode import DecodedEvent, event_abis
from ledger.indexer.mapping import EVENT_MAP, RAW_ONLY, ZERO_HASH
from ledger.indexer.rows import Projector
from ledger.indexer.spec import EventMap, to
from ledger.indexer.validate import unclassified_events, validate_mapping
from ledger.store.models import (
    BatchAnchor,
    CatalogAlgorithm,
    CatalogChange,
    Dataset,
    DatasetVersion,
    Escrow,
    GrantRecord,
    OwnershipEpoch,
    RevenueSplit,
    UsageRecord,
)

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def shipped() -> dict[str, ABI]:
    return {name: load_artifact(name).abi for name in CONTRACT_NAMES}


def renamed(abis: dict[str, ABI], contract: str, event: str, old: str, new: str) -> dict[str, ABI]:
    """The ABIs with one event parameter renamed, as a contract revision would."""
    changed = copy.deepcopy(abis)
    for item in changed[contract]:
        if item.get("type") == "event" and item.get("name") == event:
            for param in item["inputs"]:  # type: ignore[typeddict-item]
                if param["name"] == old:
                    param["name"] = new
    return changed


def decoded(contract: str, event: str, args: dict[str, Any], *, block: int = 5) -> DecodedEvent:
    return DecodedEvent(
        contract,
        event,
        "0x" + "42" * 20,
        block,
        "0x" + "b1" * 32,
        WHEN,
        "0x" + "7a" * 32,
        0,
        3,
        args,
    )


def test_mapping_fits_the_shipped_abis() -> None:
    validate_mapping(shipped())


def test_every_abi_event_is_mapped_or_raw_only() -> None:
    assert unclassified_events(shipped()) == []


def test_raw_only_names_only_events_that_exist() -> None:
    existing = {(c, e) for c, abi in shipped().items() for e in event_abis(abi)}
    assert sorted(RAW_ONLY - existing) == []
    assert not RAW_ONLY & set(EVENT_MAP)


def test_renamed_parameter_names_the_entry_and_the_new_name() -> None:
    abis = renamed(shipped(), "UsageLedger", "UsageRecorded", "price", "cost")
    with pytest.raises(EventMappingError) as info:
        validate_mapping(abis)
    error = info.value
    assert (error.contract, error.event, error.suggestion) == (
        "UsageLedger",
        "UsageRecorded",
        "cost",
    )
    assert "'price'" in str(error) and "ledger/indexer/mapping.py" in str(error)


def test_renamed_struct_member_is_found_inside_the_struct() -> None:
    abis = copy.deepcopy(shipped())
    for item in abis["AccessGrants"]:
        if item.get("type") == "event" and item.get("name") == "GrantIssued":
            grant = next(p for p in item["inputs"] if p["name"] == "grant")  # type: ignore[typeddict-item]
            next(c for c in grant["components"] if c["name"] == "pricePerUse")["name"] = "priceEach"
    with pytest.raises(EventMappingError, match="grant.pricePerUse"):
        validate_mapping(abis)


def test_missing_event_and_bad_types_are_reported() -> None:
    abis = copy.deepcopy(shipped())
    abis["UsageLedger"] = [
        i
        for i in abis["UsageLedger"]
        if not (i.get("type") == "event" and i.get("name") == "BatchAnchored")
    ]
    with pytest.raises(EventMappingError, match="no such event"):
        validate_mapping(abis)
    wrong_type = {
        ("UsageLedger", "BatchAnchored"): EventMap(
            rows=(to(BatchAnchor, root="count", executor="executor", count="count"),)
        )
    }
    with pytest.raises(EventMappingError, match="cannot hold"):
        validate_mapping(shipped(), wrong_type)
    unset = {("UsageLedger", "BatchAnchored"): EventMap(rows=(to(BatchAnchor, root="root"),))}
    with pytest.raises(EventMappingError, match="left unset: executor, count"):
        validate_mapping(shipped(), unset)
    no_column = {("UsageLedger", "BatchAnchored"): EventMap(rows=(to(BatchAnchor, roots="root"),))}
    with pytest.raises(EventMappingError) as info:
        validate_mapping(shipped(), no_column)
    assert info.value.suggestion == "root"


def test_registration_fills_four_tables() -> None:
    args = {
        "datasetId": 3,
        "owner": "0x" + "ab" * 20,
        "commitment": "0x" + "01" * 32,
        "contributorsRoot": "0x" + "02" * 32,
        "schemaHash": "0x" + "03" * 32,
        "metadataHash": "0x" + "04" * 32,
        "ownerShareBps": 6500,
        "metadataURI": "ipfs://x",
    }
    projection = Projector().project([decoded("DataRegistry", "DatasetRegistered", args)])
    (dataset,) = projection.rows[Dataset]
    (version,) = projection.rows[DatasetVersion]
    (epoch,) = projection.rows[OwnershipEpoch]
    (split,) = projection.rows[RevenueSplit]
    assert (dataset["dataset_id"], dataset["version"], dataset["owner_epoch"]) == (3, 1, 0)
    assert (dataset["updated_block"], dataset["updated_at"]) == (5, WHEN)
    assert (version["version"], version["previous_commitment"]) == (1, ZERO_HASH)
    assert (epoch["owner"], split["owner_share_bps"]) == (args["owner"], 6500)
    assert set(dataset) == set(Dataset.model_fields)
    assert projection.events[0]["args"] == args and projection.touched == {}


def test_rows_carry_defaults_times_and_renamed_sources() -> None:
    escrow = {
        "escrowId": "0x" + "e0" * 32,
        "jobId": "0x" + "10" * 32,
        "grantId": "0x" + "20" * 32,
        "payer": "0x" + "ab" * 20,
        "token": "0x" + "00" * 20,
        "amount": 10**16,
        "refundAfter": 1_800_000_000,
    }
    used = {
        "jobId": "0x" + "10" * 32,
        "grantId": "0x" + "20" * 32,
        "datasetId": 1,
        "datasetVersion": 1,
        "uses": 2,
        "epsilon": 7,
        "token": "0x" + "00" * 20,
        "price": 2 * 10**16,
        "fee": 5 * 10**14,
    }
    projection = Projector().project(
        [decoded("RevenueVault", "Escrowed", escrow), decoded("UsageLedger", "UsageRecorded", used)]
    )
    (row,) = projection.rows[Escrow]
    assert row["status"] == "held" and row["settled_block"] is None
    assert row["refund_after"] == datetime.fromtimestamp(1_800_000_000, UTC)
    (usage,) = projection.rows[UsageRecord]
    assert usage["amount"] == 2 * 10**16, "UsageRecord.amount comes from the event's price"


def test_touches_collect_the_entities_to_recompute() -> None:
    events = [
        decoded(
            "AccessGrants",
            "GrantConsumed",
            {"grantId": "0xg1", "uses": 1, "epsilon": 0, "totalUses": 1, "totalEpsilon": 0},
        ),
        decoded("AccessGrants", "NoncesInvalidated", {"grantor": "0xabc", "minNonce": 4}),
        decoded(
            "DataRegistry",
            "ExecutorSet",
            {"datasetId": 2, "executor": "0xe", "ownerEpoch": 1, "allowed": True},
        ),
        decoded(
            "RevenueVault",
            "Refunded",
            {"escrowId": "0xe1", "payer": "0xp", "token": "0x0", "amount": 1},
        ),
        decoded("AccessGrants", "CatalogAlgorithmSet", {"algorithmHash": "0xa1", "listed": True}),
        decoded("AccessGrants", "CatalogAlgorithmSet", {"algorithmHash": "0xa1", "listed": False}),
    ]
    touched = Projector().touched((e.contract, e.event, e.args) for e in events)
    assert touched == {
        "grants": {("grant_id",): {("0xg1",)}, ("grantor",): {("0xabc",)}},
        "executors": {("dataset_id", "executor", "owner_epoch"): {(2, "0xe", 1)}},
        "escrows": {("escrow_id",): {("0xe1",)}},
        "catalog_algorithms": {("algorithm_hash",): {("0xa1",)}},
    }


def test_catalog_event_writes_a_change_and_touches_the_listing() -> None:
    assert ("AccessGrants", "CatalogAlgorithmSet") not in RAW_ONLY
    algorithm = "0x" + "c4" * 32
    args = {"algorithmHash": algorithm, "listed": False}
    projection = Projector().project([decoded("AccessGrants", "CatalogAlgorithmSet", args)])
    (change,) = projection.rows[CatalogChange]
    assert (change["algorithm_hash"], change["listed"], change["block_number"]) == (
        algorithm,
        False,
        5,
    )
    assert set(change) == set(CatalogChange.model_fields)
    assert CatalogAlgorithm not in projection.rows, "the state row is recomputed, not written"
    assert projection.touched == {"catalog_algorithms": {("algorithm_hash",): {(algorithm,)}}}


def test_const_values_and_struct_paths() -> None:
    spec = {("AccessGrants", "GrantIssued"): EVENT_MAP[("AccessGrants", "GrantIssued")]}
    grant = {
        "datasetId": 1,
        "grantor": "0xa",
        "grantee": "0xb",
        "algorithmHash": "0x1",
        "purpose": "0x2",
        "validFrom": 0,
        "validUntil": 2**64 - 1,
        "maxUses": 10,
        "epsilonBudget": 5,
        "paymentToken": "0x0",
        "pricePerUse": 9,
        "nonce": 4,
        "deadline": 8,
    }
    args = {
        "grantId": "0xid",
        "datasetId": 1,
        "grantee": "0xb",
        "grant": grant,
        "ownerEpoch": 2,
        "relayed": True,
    }
    (row,) = (
        Projector(spec).project([decoded("AccessGrants", "GrantIssued", args)]).rows[GrantRecord]
    )
    assert (row["nonce"], row["valid_until"], row["owner_epoch"], row["relayed"]) == (
        4,
        2**64 - 1,
        2,
        True,
    )
    assert (row["status"], row["uses"], row["revoked_block"]) == ("active", 0, None)

"""Which event goes into which table: one entry per event, one keyword per column.

Each entry maps ``(contract, event)`` to the rows it writes (`to`: table, then
``column="parameter"``, with dotted paths into structs and `Const` for fixed values) and the state
rows it changes (`touch`: which entities `ledger.indexer.state` recomputes). The position columns
(block, log index, transaction, block time) are filled in for every row. A renamed parameter is a
one-word edit here: `ledger.indexer.validate` compares every entry with the ABI when the indexer
starts and names the entry to fix and the parameter the ABI has instead.

Events in `RAW_ONLY` go to the raw ``events`` table only; an ABI event in neither is also kept
raw, and ``tests/unit/test_mapping.py`` fails until it is classified.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ledger.indexer.spec import Const, EventMap, to, touch
from ledger.store.models import (
    BatchAnchor,
    Capture,
    CatalogChange,
    Claim,
    Dataset,
    DatasetVersion,
    EpochRecord,
    Escrow,
    ExecutorChange,
    GrantConsumption,
    GrantRecord,
    JobRecord,
    NonceInvalidation,
    OwnershipEpoch,
    Refund,
    RevenueSplit,
    Revocation,
    Transfer,
    UsageRecord,
)

__all__ = ["EVENT_MAP", "RAW_ONLY", "ZERO_HASH"]

ZERO_HASH: Final = "0x" + "00" * 32

_VERSION = {
    "commitment": "commitment",
    "contributors_root": "contributorsRoot",
    "schema_hash": "schemaHash",
    "metadata_hash": "metadataHash",
    "metadata_uri": "metadataURI",
}
_DATASET = touch("datasets", dataset_id="datasetId")

EVENT_MAP: Final[Mapping[tuple[str, str], EventMap]] = MappingProxyType(
    {
        # DataRegistry
        ("DataRegistry", "DatasetRegistered"): EventMap(
            rows=(
                to(
                    Dataset,
                    dataset_id="datasetId",
                    owner="owner",
                    owner_epoch=Const(0),
                    owner_share_bps="ownerShareBps",
                    version=Const(1),
                    **_VERSION,
                ),
                to(
                    DatasetVersion,
                    dataset_id="datasetId",
                    version=Const(1),
                    previous_commitment=Const(ZERO_HASH),
                    **_VERSION,
                ),
                to(OwnershipEpoch, dataset_id="datasetId", owner_epoch=Const(0), owner="owner"),
                to(RevenueSplit, dataset_id="datasetId", owner_share_bps="ownerShareBps"),
            ),
        ),
        ("DataRegistry", "DatasetVersionPublished"): EventMap(
            rows=(
                to(
                    DatasetVersion,
                    dataset_id="datasetId",
                    version="version",
                    previous_commitment="previousCommitment",
                    **_VERSION,
                ),
            ),
            touches=(_DATASET,),
        ),
        ("DataRegistry", "OwnerEpochStarted"): EventMap(
            rows=(
                to(OwnershipEpoch, dataset_id="datasetId", owner_epoch="ownerEpoch", owner="owner"),
            ),
            touches=(_DATASET,),
        ),
        ("DataRegistry", "RevenueSplitChanged"): EventMap(
            rows=(to(RevenueSplit, dataset_id="datasetId", owner_share_bps="ownerShareBps"),),
            touches=(_DATASET,),
        ),
        ("DataRegistry", "ExecutorSet"): EventMap(
            rows=(
                to(
                    ExecutorChange,
                    dataset_id="datasetId",
                    executor="executor",
                    owner_epoch="ownerEpoch",
                    allowed="allowed",
                ),
            ),
            touches=(
                touch(
                    "executors",
                    dataset_id="datasetId",
                    executor="executor",
                    owner_epoch="ownerEpoch",
                ),
            ),
        ),
        ("DataRegistry", "Transfer"): EventMap(
            rows=(to(Transfer, dataset_id="tokenId", from_address="from", to_address="to"),),
        ),
        # AccessGrants
        ("AccessGrants", "GrantIssued"): EventMap(
            rows=(
                to(
                    GrantRecord,
                    grant_id="grantId",
                    dataset_id="grant.datasetId",
                    grantor="grant.grantor",
                    grantee="grant.grantee",
                    algorithm_hash="grant.algorithmHash",
                    purpose="grant.purpose",
                    valid_from="grant.validFrom",
                    valid_until="grant.validUntil",
                    max_uses="grant.maxUses",
                    epsilon_budget="grant.epsilonBudget",
                    payment_token="grant.paymentToken",
                    price_per_use="grant.pricePerUse",
                    nonce="grant.nonce",
                    deadline="grant.deadline",
                    owner_epoch="ownerEpoch",
                    relayed="relayed",
                ),
            ),
        ),
        ("AccessGrants", "GrantConsumed"): EventMap(
            rows=(
                to(
                    GrantConsumption,
                    grant_id="grantId",
                    uses="uses",
                    epsilon="epsilon",
                    total_uses="totalUses",
                    total_epsilon="totalEpsilon",
                ),
            ),
            touches=(touch("grants", grant_id="grantId"),),
        ),
        ("AccessGrants", "GrantRevoked"): EventMap(
            rows=(to(Revocation, grant_id="grantId", dataset_id="datasetId", revoked_by="by"),),
            touches=(touch("grants", grant_id="grantId"),),
        ),
        ("AccessGrants", "NoncesInvalidated"): EventMap(
            rows=(to(NonceInvalidation, grantor="grantor", min_nonce="minNonce"),),
            touches=(touch("grants", grantor="grantor"),),
        ),
        ("AccessGrants", "CatalogAlgorithmSet"): EventMap(
            rows=(to(CatalogChange, algorithm_hash="algorithmHash", listed="listed"),),
            touches=(touch("catalog_algorithms", algorithm_hash="algorithmHash"),),
        ),
        # UsageLedger
        ("UsageLedger", "JobRecorded"): EventMap(
            rows=(
                to(
                    JobRecord,
                    job_id="jobId",
                    executor="executor",
                    consumer="consumer",
                    algorithm_hash="algorithmHash",
                    purpose="purpose",
                    receipt_hash="receiptHash",
                    grant_count="grantCount",
                ),
            ),
        ),
        ("UsageLedger", "UsageRecorded"): EventMap(
            rows=(
                to(
                    UsageRecord,
                    job_id="jobId",
                    grant_id="grantId",
                    dataset_id="datasetId",
                    dataset_version="datasetVersion",
                    uses="uses",
                    epsilon="epsilon",
                    token="token",
                    amount="price",
                    fee="fee",
                ),
            ),
        ),
        ("UsageLedger", "BatchAnchored"): EventMap(
            rows=(to(BatchAnchor, root="root", executor="executor", count="count"),),
        ),
        # RevenueVault
        ("RevenueVault", "Escrowed"): EventMap(
            rows=(
                to(
                    Escrow,
                    escrow_id="escrowId",
                    job_id="jobId",
                    grant_id="grantId",
                    payer="payer",
                    token="token",
                    amount="amount",
                    refund_after="refundAfter",
                ),
            ),
        ),
        ("RevenueVault", "Captured"): EventMap(
            rows=(
                to(
                    Capture,
                    escrow_id="escrowId",
                    dataset_id="datasetId",
                    token="token",
                    amount="amount",
                    fee="fee",
                ),
            ),
            touches=(touch("escrows", escrow_id="escrowId"),),
        ),
        ("RevenueVault", "Refunded"): EventMap(
            rows=(to(Refund, escrow_id="escrowId", payer="payer", token="token", amount="amount"),),
            touches=(touch("escrows", escrow_id="escrowId"),),
        ),
        ("RevenueVault", "EpochPublished"): EventMap(
            rows=(to(EpochRecord, token="token", epoch="epoch", root="root", total="total"),),
        ),
        ("RevenueVault", "Claimed"): EventMap(
            rows=(
                to(
                    Claim,
                    token="token",
                    account="account",
                    amount="amount",
                    cumulative="cumulative",
                ),
            ),
        ),
    }
)

_ACCESS_CONTROL = ("RoleAdminChanged", "RoleGranted", "RoleRevoked")
#: Events kept in the raw ``events`` table only (configuration, roles, approvals).
RAW_ONLY: Final = frozenset(
    {
        *(
            (c, e)
            for c in ("DataRegistry", "AccessGrants", "RevenueVault")
            for e in _ACCESS_CONTROL
        ),
        ("DataRegistry", "Approval"),
        ("DataRegistry", "ApprovalForAll"),
        ("DataRegistry", "BaseURIChanged"),
        ("AccessGrants", "EIP712DomainChanged"),
        ("RevenueVault", "FeeChanged"),
        ("RevenueVault", "FeesWithdrawn"),
        ("RevenueVault", "RefundDelayChanged"),
    }
)

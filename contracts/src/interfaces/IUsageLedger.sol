// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessGrants} from "./IAccessGrants.sol";

/// @title IUsageLedger
/// @notice The record of every computation: an allowed executor records a job once, which consumes
/// the grants it used, captures their payments and stores the receipt hash. Also anchors Merkle
/// roots of receipt batches.
interface IUsageLedger {
    /// @notice One grant used by a job.
    /// @param grant The grant's terms (its id is derived from them).
    /// @param datasetVersion The dataset version the job computed on.
    /// @param uses Uses consumed (at least 1).
    /// @param epsilon Privacy budget consumed, in micro-epsilon.
    struct GrantUse {
        IAccessGrants.Grant grant;
        uint32 datasetVersion;
        uint32 uses;
        uint64 epsilon;
    }

    /// @notice A job to record.
    /// @param jobId Unique job id; a job is recorded at most once.
    /// @param consumer Who requested the job (each grant's grantee).
    /// @param algorithmHash Code hash of the algorithm that ran.
    /// @param purpose Purpose code of the request.
    /// @param receiptHash keccak256 of the receipt's canonical JSON (RFC 8785).
    struct Job {
        bytes32 jobId;
        address consumer;
        bytes32 algorithmHash;
        bytes32 purpose;
        bytes32 receiptHash;
    }

    /// @notice A stored batch anchor, in one slot.
    struct Anchor {
        address executor;
        uint40 anchoredAt;
        uint32 count;
    }

    /// @notice The job id was recorded before.
    error UsageLedgerJobExists(bytes32 jobId);
    /// @notice The caller is not an allowed executor of the dataset.
    error UsageLedgerNotExecutor(uint256 datasetId, address caller);
    /// @notice The job names no grant, or too many.
    error UsageLedgerInvalidGrantCount(uint256 count, uint256 max);
    /// @notice A zero hash where one is required; `field` names it.
    error UsageLedgerZeroHash(string field);
    /// @notice The job names a dataset version that does not exist.
    error UsageLedgerUnknownVersion(uint256 datasetId, uint32 version, uint32 latest);
    /// @notice The executor anchored this batch root before.
    error UsageLedgerBatchExists(address executor, bytes32 root);
    /// @notice A batch of zero receipts.
    error UsageLedgerEmptyBatch();
    /// @notice The payment due is above `MAX_PAYMENT`.
    error UsageLedgerPaymentOverflow(uint256 pricePerUse, uint32 uses);

    /// @notice One grant's part of a recorded job; `price` is what the consumer paid (gross) and
    /// `fee` the platform's part of it (`RevenueVault.Captured` reports the net). With
    /// `JobRecorded`, `GrantIssued` and the registry's version events it is everything a
    /// provenance query needs (the version's commitment is bound by the receipt and by
    /// `DataRegistry.versionOf`).
    event UsageRecorded(
        bytes32 indexed jobId,
        bytes32 indexed grantId,
        uint256 indexed datasetId,
        uint32 datasetVersion,
        uint32 uses,
        uint64 epsilon,
        address token,
        uint256 price,
        uint256 fee
    );
    /// @notice A job was recorded with its receipt hash.
    event JobRecorded(
        bytes32 indexed jobId,
        address indexed executor,
        address indexed consumer,
        bytes32 algorithmHash,
        bytes32 purpose,
        bytes32 receiptHash,
        uint256 grantCount
    );
    /// @notice A Merkle root over `count` receipt hashes was anchored by `executor`.
    event BatchAnchored(bytes32 indexed root, address indexed executor, uint32 count);

    /// @notice Records a job once: consumes each grant, captures each priced grant's escrow
    /// (`RevenueVault.escrowIdOf(jobId, grantId)`), stores the receipt hash. The caller must be an
    /// allowed executor of every dataset used.
    function recordUsage(Job calldata job, GrantUse[] calldata uses) external;

    /// @notice Anchors the Merkle root of a batch of `count` receipts under the caller's address
    /// (anchors are per executor, so nobody can pre-empt an executor's root).
    function anchorBatch(bytes32 root, uint32 count) external;

    /// @notice The receipt hash recorded for a job (zero if not recorded).
    function receiptOf(bytes32 jobId) external view returns (bytes32);

    /// @notice The anchor of `root` by `executor` (all zero if not anchored).
    function anchorOf(address executor, bytes32 root) external view returns (Anchor memory);
}

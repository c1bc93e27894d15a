// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessGrants} from "./interfaces/IAccessGrants.sol";
import {IDataRegistry} from "./interfaces/IDataRegistry.sol";
import {EscrowIds, IRevenueVault, MAX_PAYMENT} from "./interfaces/IRevenueVault.sol";
import {IUsageLedger} from "./interfaces/IUsageLedger.sol";

/// @title UsageLedger
/// @notice The on-chain record of every computation. See {IUsageLedger}.
/// @dev The only contract allowed to consume grants and capture escrows: recording a job, consuming
/// its grants and capturing its payments happen in one transaction, so they happen exactly once.
contract UsageLedger is IUsageLedger {
    /// @notice Most grants one job may use (one per dataset of a multi-owner computation).
    uint256 public constant MAX_GRANTS_PER_JOB = 32;

    /// @notice The dataset registry.
    IDataRegistry public immutable registry;
    /// @notice The grants contract.
    IAccessGrants public immutable grants;
    /// @notice The revenue vault.
    IRevenueVault public immutable vault;

    mapping(bytes32 jobId => bytes32 receiptHash) private _receipts;
    mapping(address executor => mapping(bytes32 root => Anchor)) private _anchors;

    /// @param registry_ The dataset registry.
    /// @param grants_ The grants contract (which must give this contract CONSUMER_ROLE).
    /// @param vault_ The revenue vault (which must give this contract CAPTURER_ROLE).
    /// @dev No admin: nothing here is configurable; the other contracts' roles govern it.
    constructor(IDataRegistry registry_, IAccessGrants grants_, IRevenueVault vault_) {
        registry = registry_;
        grants = grants_;
        vault = vault_;
    }

    /// @inheritdoc IUsageLedger
    function recordUsage(Job calldata job, GrantUse[] calldata uses) external {
        uint256 count = uses.length;
        if (count == 0 || count > MAX_GRANTS_PER_JOB) {
            revert UsageLedgerInvalidGrantCount(count, MAX_GRANTS_PER_JOB);
        }
        if (job.jobId == bytes32(0)) revert UsageLedgerZeroHash("jobId");
        if (job.receiptHash == bytes32(0)) revert UsageLedgerZeroHash("receiptHash");
        if (_receipts[job.jobId] != bytes32(0)) revert UsageLedgerJobExists(job.jobId);
        _receipts[job.jobId] = job.receiptHash;
        emit JobRecorded(
            job.jobId,
            msg.sender,
            job.consumer,
            job.algorithmHash,
            job.purpose,
            job.receiptHash,
            count
        );
        for (uint256 i = 0; i < count; ++i) {
            _recordUse(job, uses[i]);
        }
    }

    /// @inheritdoc IUsageLedger
    function anchorBatch(bytes32 root, uint32 count) external {
        if (root == bytes32(0)) revert UsageLedgerZeroHash("root");
        if (count == 0) revert UsageLedgerEmptyBatch();
        // slither-disable-next-line timestamp
        if (_anchors[msg.sender][root].executor != address(0)) {
            revert UsageLedgerBatchExists(msg.sender, root);
        }
        _anchors[msg.sender][root] =
            Anchor({executor: msg.sender, anchoredAt: uint40(block.timestamp), count: count});
        emit BatchAnchored(root, msg.sender, count);
    }

    /// @inheritdoc IUsageLedger
    function receiptOf(bytes32 jobId) external view returns (bytes32) {
        return _receipts[jobId];
    }

    /// @inheritdoc IUsageLedger
    function anchorOf(address executor, bytes32 root) external view returns (Anchor memory) {
        return _anchors[executor][root];
    }

    // The calls go to the project's own registry, grants and vault (immutable, trusted), so the
    // event after them and the calls in `recordUsage`'s bounded loop are accepted.
    // slither-disable-next-line reentrancy-events,calls-loop
    function _recordUse(Job calldata job, GrantUse calldata use) private {
        IAccessGrants.Grant calldata grant = use.grant;
        uint256 datasetId = grant.datasetId;
        IDataRegistry.UsageContext memory ctx = registry.usageContext(datasetId, msg.sender);
        if (!ctx.executorAllowed) revert UsageLedgerNotExecutor(datasetId, msg.sender);
        uint32 latest = ctx.head.version;
        if (use.datasetVersion == 0 || use.datasetVersion > latest) {
            revert UsageLedgerUnknownVersion(datasetId, use.datasetVersion, latest);
        }
        bytes32 grantId = grants.consume(
            grant,
            IAccessGrants.Use({
                consumer: job.consumer,
                algorithmHash: job.algorithmHash,
                purpose: job.purpose,
                uses: use.uses,
                epsilon: use.epsilon
            })
        );
        // Cannot overflow: pricePerUse <= MAX_PAYMENT < 2^88 (checked at issue) and uses < 2^32.
        uint256 due = grant.pricePerUse * use.uses;
        uint256 fee = 0;
        if (due != 0) {
            if (due > MAX_PAYMENT) {
                revert UsageLedgerPaymentOverflow(grant.pricePerUse, use.uses);
            }
            fee = vault.capture(
                EscrowIds.derive(job.jobId, grantId, job.consumer),
                datasetId,
                grant.paymentToken,
                due
            );
        }
        emit UsageRecorded(
            job.jobId,
            grantId,
            datasetId,
            use.datasetVersion,
            use.uses,
            use.epsilon,
            grant.paymentToken,
            due,
            fee
        );
    }
}

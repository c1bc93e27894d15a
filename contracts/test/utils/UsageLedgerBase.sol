// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessGrants} from "../../src/interfaces/IAccessGrants.sol";
import {IRevenueVault} from "../../src/interfaces/IRevenueVault.sol";
import {IUsageLedger} from "../../src/interfaces/IUsageLedger.sol";
import {LedgerTestBase} from "./LedgerTestBase.sol";

/// @notice Shared set-up and helpers of the UsageLedger tests: one registered dataset of `owner`, a
/// third hospital, grants with a chosen price, and the expected events of one grant use.
abstract contract UsageLedgerBase is LedgerTestBase {
    bytes32 internal constant JOB = keccak256("job-1");
    uint64 internal constant EPS = 100_000;

    address internal hospitalC = address(0xC3C3);
    uint256 internal datasetId;

    function setUp() public virtual override {
        super.setUp();
        datasetId = _register(owner);
    }

    /// @dev Issues a grant of `grantor` on `id` priced `price` per use in `payToken`.
    function _grantOn(uint256 id, address grantor, address payToken, uint256 price)
        internal
        returns (IAccessGrants.Grant memory g, bytes32 gid)
    {
        g = _terms(id, grantor);
        g.paymentToken = payToken;
        g.pricePerUse = price;
        gid = _issue(g);
    }

    /// @dev Records as the executor.
    function _record(IUsageLedger.Job memory job, IUsageLedger.GrantUse[] memory list) internal {
        vm.prank(executor);
        usage.recordUsage(job, list);
    }

    function _fee(uint256 due) internal view returns (uint256) {
        return due * vault.feeBps() / 10_000;
    }

    function _status(bytes32 escrowId) internal view returns (uint256) {
        return uint256(vault.escrowOf(escrowId).status);
    }

    function _useOf(IAccessGrants.Grant memory g, uint32 version, uint32 uses, uint64 epsilon)
        internal
        pure
        returns (IUsageLedger.GrantUse memory)
    {
        return
            IUsageLedger.GrantUse({grant: g, datasetVersion: version, uses: uses, epsilon: epsilon});
    }

    /// @dev Expects, in order, the JobRecorded event of `job` recorded by the executor and the
    /// events of each grant use (fresh grants: totals equal the use; the escrows captured are the
    /// job consumer's). Reads everything it needs
    /// before the first expectation, so only the recording call runs in between.
    function _expectRecord(
        IUsageLedger.Job memory job,
        bytes32[] memory gids,
        IUsageLedger.GrantUse[] memory list
    ) internal {
        uint256 n = list.length;
        bytes32[] memory escrowIds = new bytes32[](n);
        uint256 feeBps = vault.feeBps();
        for (uint256 i = 0; i < n; ++i) {
            escrowIds[i] = vault.escrowIdOf(job.jobId, gids[i], job.consumer);
        }
        vm.expectEmit(address(usage));
        emit IUsageLedger.JobRecorded(
            job.jobId, executor, job.consumer, job.algorithmHash, job.purpose, job.receiptHash, n
        );
        for (uint256 i = 0; i < n; ++i) {
            IUsageLedger.GrantUse memory u = list[i];
            uint256 due = u.grant.pricePerUse * u.uses;
            uint256 fee = due * feeBps / 10_000;
            vm.expectEmit(address(grants));
            emit IAccessGrants.GrantConsumed(gids[i], u.uses, u.epsilon, u.uses, u.epsilon);
            if (due != 0) {
                vm.expectEmit(address(vault));
                emit IRevenueVault.Captured(
                    escrowIds[i], u.grant.datasetId, u.grant.paymentToken, due - fee, fee
                );
            }
            vm.expectEmit(address(usage));
            emit IUsageLedger.UsageRecorded(
                job.jobId,
                gids[i],
                u.grant.datasetId,
                u.datasetVersion,
                u.uses,
                u.epsilon,
                u.grant.paymentToken,
                due,
                fee
            );
        }
    }

    /// @dev {_expectRecord} for a one-grant job.
    function _expectRecord(
        IUsageLedger.Job memory job,
        bytes32 gid,
        IUsageLedger.GrantUse[] memory list
    ) internal {
        bytes32[] memory gids = new bytes32[](1);
        gids[0] = gid;
        _expectRecord(job, gids, list);
    }

    function _within(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (x >= min && x <= max) return x;
        return min + x % (max - min + 1);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {IAccessGrants} from "../src/interfaces/IAccessGrants.sol";
import {IDataRegistry} from "../src/interfaces/IDataRegistry.sol";
import {IRevenueVault, MAX_PAYMENT} from "../src/interfaces/IRevenueVault.sol";
import {IUsageLedger} from "../src/interfaces/IUsageLedger.sol";
import {UsageLedgerBase} from "./utils/UsageLedgerBase.sol";

/// @notice UsageLedger.recordUsage: every revert path, with its exact error and arguments, and
/// that a refused job leaves nothing behind.
contract UsageLedgerRevertsTest is UsageLedgerBase {
    uint256 internal constant HELD = uint256(IRevenueVault.EscrowStatus.Held);
    uint256 internal constant CAPTURED = uint256(IRevenueVault.EscrowStatus.Captured);
    uint256 internal constant REFUNDED = uint256(IRevenueVault.EscrowStatus.Refunded);

    IAccessGrants.Grant internal g;
    bytes32 internal gid;

    function setUp() public override {
        super.setUp();
        (g, gid) = _grantOn(datasetId, owner, address(0), 0.01 ether);
    }

    /*//////////////////////////////////////////////////////////////
                          LEDGER'S OWN CHECKS
    //////////////////////////////////////////////////////////////*/

    function test_recordUsage_Revert_WhenNoGrants() public {
        vm.expectRevert(
            abi.encodeWithSelector(IUsageLedger.UsageLedgerInvalidGrantCount.selector, 0, 32)
        );
        _record(_job(JOB), new IUsageLedger.GrantUse[](0));
    }

    function test_recordUsage_Revert_WhenTooManyGrants() public {
        IUsageLedger.GrantUse[] memory list = new IUsageLedger.GrantUse[](33);
        for (uint256 i = 0; i < 33; ++i) {
            list[i] = _useOf(g, 1, 1, 0);
        }
        vm.expectRevert(
            abi.encodeWithSelector(IUsageLedger.UsageLedgerInvalidGrantCount.selector, 33, 32)
        );
        _record(_job(JOB), list);
    }

    function test_recordUsage_Revert_WhenJobIdZero() public {
        IUsageLedger.Job memory job = _job(JOB);
        job.jobId = bytes32(0);
        vm.expectRevert(abi.encodeWithSelector(IUsageLedger.UsageLedgerZeroHash.selector, "jobId"));
        _record(job, _use(g, 1, 0));
    }

    function test_recordUsage_Revert_WhenReceiptHashZero() public {
        IUsageLedger.Job memory job = _job(JOB);
        job.receiptHash = bytes32(0);
        vm.expectRevert(
            abi.encodeWithSelector(IUsageLedger.UsageLedgerZeroHash.selector, "receiptHash")
        );
        _record(job, _use(g, 1, 0));
    }

    function test_recordUsage_Revert_WhenJobExists() public {
        _escrow(JOB, gid, g, 1);
        _record(_job(JOB), _use(g, 1, 0));
        IUsageLedger.Job memory again = _job(JOB);
        again.receiptHash = keccak256("another receipt");

        vm.expectRevert(abi.encodeWithSelector(IUsageLedger.UsageLedgerJobExists.selector, JOB));
        _record(again, _use(g, 1, 0));
        assertEq(usage.receiptOf(JOB), _job(JOB).receiptHash, "first receipt kept");
        assertEq(grants.stateOf(gid).uses, 1, "grant used once");
    }

    function test_recordUsage_Revert_WhenCallerNotExecutor() public {
        _escrow(JOB, gid, g, 1);
        IUsageLedger.Job memory job = _job(JOB);
        IUsageLedger.GrantUse[] memory list = _use(g, 1, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IUsageLedger.UsageLedgerNotExecutor.selector, datasetId, other)
        );
        vm.prank(other);
        usage.recordUsage(job, list);
    }

    function test_recordUsage_Revert_WhenExecutorDisallowed() public {
        vm.prank(owner);
        registry.setExecutor(datasetId, executor, false);
        vm.expectRevert(
            abi.encodeWithSelector(
                IUsageLedger.UsageLedgerNotExecutor.selector, datasetId, executor
            )
        );
        _record(_job(JOB), _use(g, 1, 0));
    }

    /// @dev The executor must be allowed on every dataset of the job, not only the first.
    function test_recordUsage_Revert_WhenNotExecutorOfEveryDataset() public {
        vm.startPrank(other);
        uint256 id2 = registry.register(_version("other"), 7000, "ipfs://other");
        vm.stopPrank();
        (IAccessGrants.Grant memory g2,) = _grantOn(id2, other, address(0), 0);
        IUsageLedger.GrantUse[] memory list = new IUsageLedger.GrantUse[](2);
        list[0] = _useOf(g, 1, 1, 0);
        list[1] = _useOf(g2, 1, 1, 0);
        _escrow(JOB, gid, g, 1);

        vm.expectRevert(
            abi.encodeWithSelector(IUsageLedger.UsageLedgerNotExecutor.selector, id2, executor)
        );
        _record(_job(JOB), list);
    }

    function test_recordUsage_Revert_WhenDatasetUnknown() public {
        IAccessGrants.Grant memory unknown = g;
        unknown.datasetId = 99;
        vm.expectRevert(
            abi.encodeWithSelector(IDataRegistry.DataRegistryUnknownDataset.selector, 99)
        );
        _record(_job(JOB), _use(unknown, 1, 0));
    }

    function test_recordUsage_Revert_WhenVersionZero() public {
        IUsageLedger.GrantUse[] memory list = _use(g, 1, 0);
        list[0].datasetVersion = 0;
        vm.expectRevert(
            abi.encodeWithSelector(
                IUsageLedger.UsageLedgerUnknownVersion.selector, datasetId, uint32(0), uint32(1)
            )
        );
        _record(_job(JOB), list);
    }

    function test_recordUsage_Revert_WhenVersionAboveLatest() public {
        vm.prank(owner);
        registry.publishVersion(datasetId, _version("v2"), "ipfs://v2");
        IUsageLedger.GrantUse[] memory list = _use(g, 1, 0);
        list[0].datasetVersion = 3;
        vm.expectRevert(
            abi.encodeWithSelector(
                IUsageLedger.UsageLedgerUnknownVersion.selector, datasetId, uint32(3), uint32(2)
            )
        );
        _record(_job(JOB), list);
    }

    function test_recordUsage_Revert_WhenPaymentExceedsMaxPayment() public {
        (IAccessGrants.Grant memory big,) = _grantOn(datasetId, owner, address(token), MAX_PAYMENT);
        vm.expectRevert(
            abi.encodeWithSelector(
                IUsageLedger.UsageLedgerPaymentOverflow.selector, uint256(MAX_PAYMENT), uint32(2)
            )
        );
        _record(_job(JOB), _use(big, 2, 0));
    }

    /*//////////////////////////////////////////////////////////////
                    ERRORS OF THE VAULT'S CAPTURE
    //////////////////////////////////////////////////////////////*/

    function test_recordUsage_Revert_WhenEscrowMissing() public {
        bytes32 escrowId = vault.escrowIdOf(JOB, gid, consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                escrowId,
                IRevenueVault.EscrowStatus.None
            )
        );
        _record(_job(JOB), _use(g, 1, 0));
    }

    function test_recordUsage_Revert_WhenEscrowAmountMismatch() public {
        bytes32 escrowId = _escrow(JOB, gid, g, 2);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultCaptureMismatch.selector,
                escrowId,
                address(0),
                0.02 ether,
                address(0),
                0.03 ether
            )
        );
        _record(_job(JOB), _use(g, 3, 0));
        assertEq(_status(escrowId), HELD, "escrow still held");
    }

    function test_recordUsage_Revert_WhenEscrowTokenMismatch() public {
        (IAccessGrants.Grant memory inToken, bytes32 tokenGid) =
            _grantOn(datasetId, owner, address(token), 0.01 ether);
        // The consumer escrows the right amount, but in ETH.
        vm.prank(consumer);
        bytes32 escrowId = vault.escrow{value: 0.01 ether}(JOB, tokenGid, address(0), 0.01 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultCaptureMismatch.selector,
                escrowId,
                address(0),
                0.01 ether,
                address(token),
                0.01 ether
            )
        );
        _record(_job(JOB), _use(inToken, 1, 0));
        assertEq(_status(escrowId), HELD, "escrow still held");
    }

    function test_recordUsage_Revert_WhenEscrowRefunded() public {
        bytes32 escrowId = _escrow(JOB, gid, g, 1);
        vm.prank(executor); // REFUNDER_ROLE: the job cannot run
        vault.refund(escrowId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                escrowId,
                IRevenueVault.EscrowStatus.Refunded
            )
        );
        _record(_job(JOB), _use(g, 1, 0));
    }

    /// @dev Escrow ids are bound to the payer: a third party who sees the consumer's escrow coming
    /// and escrows 1 wei for the same (job, grant) first gets an escrow id of its own, so neither
    /// the consumer's escrow nor the job is blocked, and the third party's escrow is not touched.
    function test_recordUsage_EscrowFrontRunByThirdPartyDoesNotBlockJob() public {
        vm.deal(other, 1);
        vm.prank(other);
        bytes32 theirs = vault.escrow{value: 1}(JOB, gid, address(0), 1);
        assertEq(theirs, vault.escrowIdOf(JOB, gid, other), "third party's id");

        bytes32 mine = _escrow(JOB, gid, g, 1);
        assertEq(mine, vault.escrowIdOf(JOB, gid, consumer), "consumer's id");
        assertTrue(mine != theirs, "distinct escrow ids");

        _expectRecord(_job(JOB), gid, _use(g, 1, 0));
        _record(_job(JOB), _use(g, 1, 0));

        assertEq(usage.receiptOf(JOB), _job(JOB).receiptHash, "job recorded");
        assertEq(_status(mine), CAPTURED, "consumer's escrow captured");
        assertEq(_status(theirs), HELD, "third party's escrow untouched");
        assertEq(vault.revenueOf(datasetId, address(0)), 0.01 ether - _fee(0.01 ether), "revenue");

        // The third party gets its wei back after the delay; the captured payment stays.
        vm.warp(block.timestamp + REFUND_DELAY);
        vm.prank(other);
        vault.refund(theirs);
        assertEq(other.balance, 1, "third party refunded");
        assertEq(address(vault).balance, 0.01 ether, "captured payment kept");
    }

    /// @dev The ledger captures the job consumer's escrow only: the exact payment escrowed by
    /// anyone else is not captured, and the job is refused for the consumer's missing escrow.
    function test_recordUsage_Revert_WhenEscrowPaidByOtherThanConsumer() public {
        vm.deal(other, 1 ether);
        vm.prank(other);
        bytes32 theirs = vault.escrow{value: 0.01 ether}(JOB, gid, address(0), 0.01 ether);
        bytes32 consumerId = vault.escrowIdOf(JOB, gid, consumer);
        assertTrue(theirs != consumerId, "not the consumer's escrow id");

        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                consumerId,
                IRevenueVault.EscrowStatus.None
            )
        );
        _record(_job(JOB), _use(g, 1, 0));

        assertEq(usage.receiptOf(JOB), bytes32(0), "no receipt");
        assertEq(grants.stateOf(gid).uses, 0, "grant unused");
        assertEq(_status(theirs), HELD, "other payer's escrow still held");
        assertEq(vault.revenueOf(datasetId, address(0)), 0, "no revenue");
    }

    /// @dev One escrow per (job, grant, payer): a priced grant listed twice in one job cannot be paid
    /// twice.
    function test_recordUsage_Revert_WhenPricedGrantListedTwice() public {
        bytes32 escrowId = _escrow(JOB, gid, g, 1);
        IUsageLedger.GrantUse[] memory list = new IUsageLedger.GrantUse[](2);
        list[0] = _useOf(g, 1, 1, 0);
        list[1] = _useOf(g, 1, 1, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                escrowId,
                IRevenueVault.EscrowStatus.Captured
            )
        );
        _record(_job(JOB), list);
    }

    function test_recordUsage_Revert_WhenLedgerNotCapturer() public {
        _escrow(JOB, gid, g, 1);
        bytes32 role = vault.CAPTURER_ROLE();
        vm.prank(admin);
        vault.revokeRole(role, address(usage));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(usage), role
            )
        );
        _record(_job(JOB), _use(g, 1, 0));
    }

    /*//////////////////////////////////////////////////////////////
                 ERRORS OF ACCESS GRANTS, BUBBLED UP
    //////////////////////////////////////////////////////////////*/

    function test_recordUsage_Revert_WhenGrantRevoked() public {
        _escrow(JOB, gid, g, 1);
        vm.prank(owner);
        grants.revoke(g);
        vm.expectRevert(abi.encodeWithSelector(IAccessGrants.AccessGrantsRevoked.selector, gid));
        _record(_job(JOB), _use(g, 1, 0));
    }

    function test_recordUsage_Revert_WhenGrantNonceInvalidated() public {
        _escrow(JOB, gid, g, 1);
        vm.prank(owner);
        grants.invalidateNonces(g.nonce + 1);
        vm.expectRevert(abi.encodeWithSelector(IAccessGrants.AccessGrantsRevoked.selector, gid));
        _record(_job(JOB), _use(g, 1, 0));
    }

    function test_recordUsage_Revert_WhenGrantNeverIssued() public {
        IAccessGrants.Grant memory unissued = _terms(datasetId, owner);
        bytes32 id = grants.grantId(unissued);
        vm.expectRevert(abi.encodeWithSelector(IAccessGrants.AccessGrantsUnknownGrant.selector, id));
        _record(_job(JOB), _use(unissued, 1, 0));
    }

    function test_recordUsage_Revert_WhenConsumerNotGrantee() public {
        IUsageLedger.Job memory job = _job(JOB);
        job.consumer = other;
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsWrongGrantee.selector, gid, consumer, other
            )
        );
        _record(job, _use(g, 1, 0));
    }

    function test_recordUsage_Revert_WhenAlgorithmNotGranted() public {
        IUsageLedger.Job memory job = _job(JOB);
        job.algorithmHash = keccak256("algorithm:raw-export");
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsWrongAlgorithm.selector, gid, ALGO, job.algorithmHash
            )
        );
        _record(job, _use(g, 1, 0));
    }

    function test_recordUsage_Revert_WhenPurposeNotGranted() public {
        IUsageLedger.Job memory job = _job(JOB);
        job.purpose = keccak256("marketing");
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsWrongPurpose.selector, gid, PURPOSE, job.purpose
            )
        );
        _record(job, _use(g, 1, 0));
    }

    function test_recordUsage_Revert_WhenUsesZero() public {
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsInvalidTerms.selector, "uses")
        );
        _record(_job(JOB), _use(g, 0, 0));
    }

    function test_recordUsage_Revert_WhenUsesExceeded() public {
        _escrow(JOB, gid, g, 7);
        _record(_job(JOB), _use(g, 7, 0));
        bytes32 job2 = keccak256("job-2");
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsUsesExceeded.selector,
                gid,
                uint32(7),
                uint32(4),
                uint32(10)
            )
        );
        _record(_job(job2), _use(g, 4, 0));
    }

    function test_recordUsage_Revert_WhenBudgetExceeded() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsBudgetExceeded.selector,
                gid,
                uint64(0),
                uint64(1_000_001),
                uint64(1_000_000)
            )
        );
        _record(_job(JOB), _use(g, 1, 1_000_001));
    }

    function test_recordUsage_Revert_WhenGrantExpired() public {
        vm.warp(g.validUntil + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsOutsideWindow.selector,
                gid,
                g.validFrom,
                g.validUntil,
                uint256(g.validUntil) + 1
            )
        );
        _record(_job(JOB), _use(g, 1, 0));
    }

    /// @dev After a transfer the new owner must allow the executor again, and the previous owner's
    /// grants have lapsed.
    function test_recordUsage_Revert_WhenDatasetChangedHands() public {
        vm.prank(owner);
        registry.transferFrom(owner, other, datasetId);
        vm.expectRevert(
            abi.encodeWithSelector(
                IUsageLedger.UsageLedgerNotExecutor.selector, datasetId, executor
            )
        );
        _record(_job(JOB), _use(g, 1, 0));

        vm.prank(other);
        registry.setExecutor(datasetId, executor, true);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsOwnerChanged.selector, gid, uint32(0), uint32(1)
            )
        );
        _record(_job(JOB), _use(g, 1, 0));
    }

    function test_recordUsage_Revert_WhenLedgerNotConsumer() public {
        bytes32 role = grants.CONSUMER_ROLE();
        vm.prank(admin);
        grants.revokeRole(role, address(usage));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(usage), role
            )
        );
        _record(_job(JOB), _use(g, 1, 0));
    }

    /*//////////////////////////////////////////////////////////////
                     A REFUSED JOB LEAVES NO STATE
    //////////////////////////////////////////////////////////////*/

    /// @dev The first grant is consumed and its escrow captured before the second grant's capture
    /// fails: all of it must roll back.
    function test_recordUsage_Revert_LeavesNoStateBehind() public {
        uint256 id2 = _register(other);
        (IAccessGrants.Grant memory g2, bytes32 gid2) = _grantOn(id2, other, address(token), 1e18);
        bytes32 escrow1 = _escrow(JOB, gid, g, 2);
        bytes32 escrow2 = _escrow(JOB, gid2, g2, 1); // one use paid, two asked
        IUsageLedger.GrantUse[] memory list = new IUsageLedger.GrantUse[](2);
        list[0] = _useOf(g, 1, 2, EPS);
        list[1] = _useOf(g2, 1, 2, EPS);
        uint256 consumerEth = consumer.balance;

        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultCaptureMismatch.selector,
                escrow2,
                address(token),
                1e18,
                address(token),
                2e18
            )
        );
        _record(_job(JOB), list);

        assertEq(usage.receiptOf(JOB), bytes32(0), "no receipt");
        assertEq(grants.stateOf(gid).uses, 0, "first grant unused");
        assertEq(grants.stateOf(gid).epsilonSpent, 0, "first grant budget unspent");
        assertEq(grants.stateOf(gid2).uses, 0, "second grant unused");
        assertEq(_status(escrow1), HELD, "first escrow held");
        assertEq(_status(escrow2), HELD, "second escrow held");
        assertEq(vault.revenueOf(datasetId, address(0)), 0, "no revenue");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(net + fees, 0, "no ETH captured");
        (net, fees) = vault.tokenTotals(address(token));
        assertEq(net + fees, 0, "no token captured");
        assertEq(address(vault).balance, 0.02 ether, "ETH still escrowed");
        assertEq(token.balanceOf(address(vault)), 1e18, "token still escrowed");
        assertEq(consumer.balance, consumerEth, "consumer balance unchanged");

        // The job id is not burnt: the same job with only the first grant records.
        _record(_job(JOB), _use(g, 2, EPS));
        assertEq(usage.receiptOf(JOB), _job(JOB).receiptHash, "recorded afterwards");
        assertEq(_status(escrow1), CAPTURED, "first escrow captured afterwards");
    }

    /// @dev A payment escrowed under a job that was refused stays refundable to its payer.
    function test_recordUsage_Revert_EscrowStaysRefundable() public {
        bytes32 escrowId = _escrow(JOB, gid, g, 1);
        vm.prank(owner);
        grants.revoke(g);
        vm.expectRevert(abi.encodeWithSelector(IAccessGrants.AccessGrantsRevoked.selector, gid));
        _record(_job(JOB), _use(g, 1, 0));

        uint256 before = consumer.balance;
        vm.warp(block.timestamp + REFUND_DELAY);
        vm.prank(consumer);
        vault.refund(escrowId);
        assertEq(consumer.balance, before + 0.01 ether, "refunded");
        assertEq(_status(escrowId), REFUNDED, "escrow refunded");
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {RevenueVault} from "../src/RevenueVault.sol";
import {EscrowIds, IRevenueVault} from "../src/interfaces/IRevenueVault.sol";
import {EthRefuser} from "./utils/Mocks.sol";
import {RevenueVaultBase, Status} from "./utils/RevenueVaultBase.sol";

/// @notice RevenueVault: constructor, fee and refund-delay settings, fee withdrawal and views.
contract RevenueVaultAdminTest is RevenueVaultBase {
    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    function test_constructor_SetsRolesFeeAndDelay() public {
        vm.expectEmit();
        emit IRevenueVault.FeeChanged(300, payeeA);
        vm.expectEmit();
        emit IRevenueVault.RefundDelayChanged(2 days);
        RevenueVault v = new RevenueVault(other, 300, payeeA, 2 days);

        assertTrue(v.hasRole(v.DEFAULT_ADMIN_ROLE(), other), "admin");
        assertTrue(!v.hasRole(v.CAPTURER_ROLE(), other), "no capturer role by default");
        assertEq(v.feeBps(), 300, "feeBps");
        assertEq(v.feeRecipient(), payeeA, "feeRecipient");
        assertEq(v.refundDelay(), 2 days, "refundDelay");
    }

    function test_constructor_Revert_WhenFeeTooHigh() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueVault.RevenueVaultFeeTooHigh.selector, 1001, 1000)
        );
        new RevenueVault(admin, 1001, feeRecipient, 1 days);
    }

    function test_constructor_Revert_WhenFeeRecipientZero() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueVault.RevenueVaultZeroAddress.selector, "recipient")
        );
        new RevenueVault(admin, 100, address(0), 1 days);
    }

    function test_constructor_Revert_WhenRefundDelayInvalid() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueVault.RevenueVaultInvalidRefundDelay.selector, 0)
        );
        new RevenueVault(admin, 100, feeRecipient, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultInvalidRefundDelay.selector, 30 days + 1
            )
        );
        new RevenueVault(admin, 100, feeRecipient, 30 days + 1);
    }

    function test_constants() public view {
        assertEq(vault.CAPTURER_ROLE(), keccak256("CAPTURER_ROLE"), "CAPTURER_ROLE");
        assertEq(vault.SETTLER_ROLE(), keccak256("SETTLER_ROLE"), "SETTLER_ROLE");
        assertEq(vault.REFUNDER_ROLE(), keccak256("REFUNDER_ROLE"), "REFUNDER_ROLE");
        assertEq(vault.MAX_FEE_BPS(), 1000, "MAX_FEE_BPS");
        assertEq(vault.MAX_REFUND_DELAY(), 30 days, "MAX_REFUND_DELAY");
    }

    /*//////////////////////////////////////////////////////////////
                                SET FEE
    //////////////////////////////////////////////////////////////*/

    function test_setFee_UpdatesFeeAndRecipient() public {
        vm.expectEmit(address(vault));
        emit IRevenueVault.FeeChanged(500, payeeA);
        vm.prank(admin);
        vault.setFee(500, payeeA);
        assertEq(vault.feeBps(), 500, "feeBps");
        assertEq(vault.feeRecipient(), payeeA, "feeRecipient");
    }

    function test_setFee_AcceptsBounds() public {
        vm.startPrank(admin);
        vault.setFee(1000, feeRecipient);
        assertEq(vault.feeBps(), 1000, "max fee");
        vault.setFee(0, feeRecipient);
        assertEq(vault.feeBps(), 0, "zero fee");
        vm.stopPrank();
    }

    function test_setFee_Revert_WhenNotAdmin() public {
        bytes32 role = vault.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, settler, role
            )
        );
        vm.prank(settler);
        vault.setFee(0, settler);
    }

    function test_setFee_Revert_WhenFeeTooHigh() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueVault.RevenueVaultFeeTooHigh.selector, 1001, 1000)
        );
        vm.prank(admin);
        vault.setFee(1001, feeRecipient);
        assertEq(vault.feeBps(), FEE_BPS, "unchanged");
    }

    function test_setFee_Revert_WhenRecipientZero() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueVault.RevenueVaultZeroAddress.selector, "recipient")
        );
        vm.prank(admin);
        vault.setFee(100, address(0));
    }

    function testFuzz_setFee_AcceptsOnlyUpToMax(uint16 bps) public {
        if (bps > 1000) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IRevenueVault.RevenueVaultFeeTooHigh.selector, uint256(bps), 1000
                )
            );
        }
        vm.prank(admin);
        vault.setFee(bps, payeeB);
        assertEq(vault.feeBps(), bps > 1000 ? FEE_BPS : bps, "feeBps");
    }

    /*//////////////////////////////////////////////////////////////
                            SET REFUND DELAY
    //////////////////////////////////////////////////////////////*/

    /// @dev A new delay applies to escrows made after it; earlier escrows keep their refund time.
    function test_setRefundDelay_AppliesToLaterEscrows() public {
        bytes32 before = _escrowOf(address(0), keccak256("before"), 1 ether);
        vm.expectEmit(address(vault));
        emit IRevenueVault.RefundDelayChanged(7 days);
        vm.prank(admin);
        vault.setRefundDelay(7 days);
        bytes32 later = _escrowOf(address(0), keccak256("later"), 1 ether);

        assertEq(vault.refundDelay(), 7 days, "refundDelay");
        assertEq(vault.escrowOf(before).refundAfter, block.timestamp + 1 days, "earlier escrow");
        assertEq(vault.escrowOf(later).refundAfter, block.timestamp + 7 days, "later escrow");
    }

    function test_setRefundDelay_AcceptsBounds() public {
        vm.startPrank(admin);
        vault.setRefundDelay(30 days);
        assertEq(vault.refundDelay(), 30 days, "max delay");
        vault.setRefundDelay(1);
        assertEq(vault.refundDelay(), 1, "one second");
        vm.stopPrank();
    }

    function test_setRefundDelay_Revert_WhenNotAdmin() public {
        bytes32 role = vault.DEFAULT_ADMIN_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, executor, role
            )
        );
        vm.prank(executor);
        vault.setRefundDelay(2 days);
    }

    function test_setRefundDelay_Revert_WhenZero() public {
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueVault.RevenueVaultInvalidRefundDelay.selector, 0)
        );
        vm.prank(admin);
        vault.setRefundDelay(0);
    }

    function test_setRefundDelay_Revert_WhenAboveMax() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultInvalidRefundDelay.selector, 30 days + 1
            )
        );
        vm.prank(admin);
        vault.setRefundDelay(30 days + 1);
        assertEq(vault.refundDelay(), REFUND_DELAY, "unchanged");
    }

    /*//////////////////////////////////////////////////////////////
                             WITHDRAW FEES
    //////////////////////////////////////////////////////////////*/

    function test_withdrawFees_PaysEthFeesToRecipient() public {
        _fund(address(0), 2 ether);
        bytes32 held = _escrowOf(address(0), keccak256("held"), 1 ether);
        vm.expectEmit(address(vault));
        emit IRevenueVault.FeesWithdrawn(address(0), feeRecipient, 0.05 ether);
        vm.prank(other); // anyone may trigger it; the recipient is paid
        uint256 paid = vault.withdrawFees(address(0));

        assertEq(paid, 0.05 ether, "returned");
        assertEq(feeRecipient.balance, 0.05 ether, "recipient paid");
        assertEq(other.balance, 0, "caller not paid");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(fees, 0, "fees reset");
        assertEq(net, 1.95 ether, "revenue untouched");
        assertEq(address(vault).balance, 1.95 ether + 1 ether, "revenue and escrow stay");
        assertEq(_statusOf(held), Status.HELD, "escrow untouched");
    }

    function test_withdrawFees_PaysTokenFeesToRecipient() public {
        _fund(address(token), 1000e18);
        vm.expectEmit(address(vault));
        emit IRevenueVault.FeesWithdrawn(address(token), feeRecipient, 25e18);
        assertEq(vault.withdrawFees(address(token)), 25e18, "returned");
        assertEq(token.balanceOf(feeRecipient), 25e18, "recipient paid");
        assertEq(token.balanceOf(address(vault)), 975e18, "revenue stays");
    }

    function test_withdrawFees_PaysNothingWhenNoneAccrued() public {
        _fund(address(0), 1 ether);
        vault.withdrawFees(address(0));
        vm.expectEmit(address(vault));
        emit IRevenueVault.FeesWithdrawn(address(0), feeRecipient, 0);
        assertEq(vault.withdrawFees(address(0)), 0, "nothing the second time");
        assertEq(feeRecipient.balance, 0.025 ether, "paid once");
    }

    /// @dev Accrued fees go to the recipient at withdrawal time, not the one at capture time.
    function test_withdrawFees_PaysCurrentRecipient() public {
        _fund(address(0), 1 ether);
        vm.prank(admin);
        vault.setFee(uint16(FEE_BPS), payeeA);
        vault.withdrawFees(address(0));
        assertEq(payeeA.balance, 0.025 ether, "current recipient paid");
        assertEq(feeRecipient.balance, 0, "former recipient not paid");
    }

    function test_withdrawFees_Revert_WhenRecipientRefusesEth() public {
        _fund(address(0), 1 ether);
        address refuser = address(new EthRefuser());
        vm.prank(admin);
        vault.setFee(uint16(FEE_BPS), refuser);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEthTransferFailed.selector, refuser, 0.025 ether
            )
        );
        vault.withdrawFees(address(0));
        (, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(fees, 0.025 ether, "fees still accrued");
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function test_escrowIdOf_DerivesFromJobGrantAndPayer() public view {
        bytes32 id = vault.escrowIdOf(JOB, GRANT, consumer);
        assertEq(id, keccak256(abi.encode(JOB, GRANT, consumer)), "encoding");
        assertEq(id, EscrowIds.derive(JOB, GRANT, consumer), "shared library");
        assertTrue(id != vault.escrowIdOf(GRANT, JOB, consumer), "order matters");
        assertTrue(id != vault.escrowIdOf(JOB, GRANT, other), "payer matters");
    }

    /// @dev Two payers never share an escrow id for the same (job, grant), so no payer can take
    /// another's.
    function testFuzz_escrowIdOf_DiffersPerPayer(
        bytes32 jobId,
        bytes32 grantId,
        address payerA,
        address payerB
    ) public view {
        vm.assume(payerA != payerB);
        assertTrue(
            vault.escrowIdOf(jobId, grantId, payerA) != vault.escrowIdOf(jobId, grantId, payerB),
            "distinct ids"
        );
        assertEq(
            vault.escrowIdOf(jobId, grantId, payerA),
            EscrowIds.derive(jobId, grantId, payerA),
            "shared library"
        );
    }

    function test_escrowOf_ZeroWhenUnknown() public view {
        IRevenueVault.Escrow memory e = vault.escrowOf(keccak256("unknown"));
        assertEq(e.payer, address(0), "payer");
        assertEq(e.token, address(0), "token");
        assertEq(e.amount, 0, "amount");
        assertEq(e.refundAfter, 0, "refundAfter");
        assertEq(uint256(e.status), Status.NONE, "status");
    }

    function test_views_ZeroBeforeAnyActivity() public view {
        assertEq(vault.revenueOf(DATASET, address(0)), 0, "revenueOf");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(token));
        assertEq(net + fees, 0, "tokenTotals");
        IRevenueVault.Distribution memory d = vault.distributionOf(address(0));
        assertEq(d.root, bytes32(0), "root");
        assertEq(d.epoch, 0, "epoch");
        assertEq(d.publishedTotal + d.totalClaimed, 0, "totals");
        assertEq(vault.epochRoot(address(0), 1), bytes32(0), "epochRoot");
        assertEq(vault.claimedOf(address(0), payeeA), 0, "claimedOf");
    }
}

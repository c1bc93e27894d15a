// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {IRevenueVault, MAX_PAYMENT} from "../src/interfaces/IRevenueVault.sol";
import {EthRefuser, FeeOnTransferToken} from "./utils/Mocks.sol";
import {Reenterer, RevenueVaultBase, Status} from "./utils/RevenueVaultBase.sol";

/// @notice RevenueVault: escrow, capture and refund, with their fuzzed arithmetic. Settings and
/// views are in RevenueVault.admin.t.sol, epochs and claims in RevenueVault.claims.t.sol.
contract RevenueVaultTest is RevenueVaultBase {
    /*//////////////////////////////////////////////////////////////
                                 ESCROW
    //////////////////////////////////////////////////////////////*/

    function test_escrow_HoldsEth() public {
        bytes32 expectedId = keccak256(abi.encode(JOB, GRANT, consumer));
        uint40 refundAfter = uint40(block.timestamp) + REFUND_DELAY;
        uint256 before = consumer.balance;
        vm.expectEmit(address(vault));
        emit IRevenueVault.Escrowed(
            expectedId, JOB, GRANT, consumer, address(0), 1 ether, refundAfter
        );
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);

        assertEq(id, expectedId, "escrow id");
        IRevenueVault.Escrow memory e = vault.escrowOf(id);
        assertEq(e.payer, consumer, "payer");
        assertEq(e.refundAfter, refundAfter, "refundAfter");
        assertEq(uint256(e.status), Status.HELD, "status");
        assertEq(e.token, address(0), "token");
        assertEq(e.amount, 1 ether, "amount");
        assertEq(address(vault).balance, 1 ether, "vault balance");
        assertEq(consumer.balance, before - 1 ether, "payer balance");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(net + fees, 0, "nothing captured");
    }

    function test_escrow_HoldsToken() public {
        uint40 refundAfter = uint40(block.timestamp) + REFUND_DELAY;
        bytes32 expectedId = vault.escrowIdOf(JOB, GRANT, consumer);
        vm.prank(consumer);
        token.approve(address(vault), 5e18);
        vm.expectEmit(address(vault));
        emit IRevenueVault.Escrowed(
            expectedId, JOB, GRANT, consumer, address(token), 5e18, refundAfter
        );
        vm.prank(consumer);
        bytes32 id = vault.escrow(JOB, GRANT, address(token), 5e18);
        assertEq(id, expectedId, "escrow id");

        IRevenueVault.Escrow memory e = vault.escrowOf(id);
        assertEq(e.payer, consumer, "payer");
        assertEq(uint256(e.status), Status.HELD, "status");
        assertEq(e.token, address(token), "token");
        assertEq(e.amount, 5e18, "amount");
        assertEq(token.balanceOf(address(vault)), 5e18, "vault balance");
        assertEq(token.balanceOf(consumer), 1_000_000 ether - 5e18, "payer balance");
        assertEq(address(vault).balance, 0, "no ETH");
    }

    function test_escrow_AcceptsLargestAmount() public {
        uint256 max = MAX_PAYMENT;
        token.mint(consumer, max);
        bytes32 id = _escrowOf(address(token), JOB, max);
        assertEq(vault.escrowOf(id).amount, max, "amount");
        assertEq(token.balanceOf(address(vault)), max, "vault balance");
    }

    function test_escrow_AnyoneMayPay() public {
        vm.deal(other, 1 ether);
        vm.prank(other);
        bytes32 id = vault.escrow{value: 1 ether}(JOB, GRANT, address(0), 1 ether);
        assertEq(id, vault.escrowIdOf(JOB, GRANT, other), "escrow id of the payer");
        assertEq(vault.escrowOf(id).payer, other, "payer");
    }

    /// @dev Escrow ids include the payer: a third party escrowing for a (job, grant) first does not
    /// take the consumer's escrow id, so the consumer's escrow for the same pair still goes through.
    function test_escrow_ThirdPartyFirstDoesNotBlockConsumer() public {
        vm.deal(other, 1);
        vm.prank(other);
        bytes32 theirs = vault.escrow{value: 1}(JOB, GRANT, address(0), 1);

        bytes32 mine = _escrowOf(address(0), JOB, 1 ether);

        assertTrue(mine != theirs, "distinct escrow ids");
        assertEq(mine, vault.escrowIdOf(JOB, GRANT, consumer), "consumer's id");
        IRevenueVault.Escrow memory e = vault.escrowOf(mine);
        assertEq(e.payer, consumer, "consumer's payer");
        assertEq(e.amount, 1 ether, "consumer's amount");
        assertEq(uint256(e.status), Status.HELD, "consumer's escrow held");
        e = vault.escrowOf(theirs);
        assertEq(e.payer, other, "third party's payer");
        assertEq(e.amount, 1, "third party's amount");
        assertEq(uint256(e.status), Status.HELD, "third party's escrow held");
        assertEq(address(vault).balance, 1 ether + 1, "vault holds both");
    }

    function test_escrow_Revert_WhenAmountZero() public {
        vm.expectRevert(abi.encodeWithSelector(IRevenueVault.RevenueVaultInvalidAmount.selector, 0));
        vm.prank(consumer);
        vault.escrow(JOB, GRANT, address(0), 0);
    }

    function test_escrow_Revert_WhenAmountAboveMaxPayment() public {
        uint256 amount = uint256(MAX_PAYMENT) + 1;
        token.mint(consumer, amount);
        vm.startPrank(consumer);
        token.approve(address(vault), amount);
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueVault.RevenueVaultInvalidAmount.selector, amount)
        );
        vault.escrow(JOB, GRANT, address(token), amount);
        vm.stopPrank();
    }

    function test_escrow_Revert_WhenEscrowExists() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        vm.expectRevert(abi.encodeWithSelector(IRevenueVault.RevenueVaultEscrowExists.selector, id));
        vm.prank(consumer);
        vault.escrow{value: 1 ether}(JOB, GRANT, address(0), 1 ether);
    }

    /// @dev Escrow ids are single-use per payer, but another payer's escrow, even escrowed and
    /// refunded first, no longer burns the (job, grant) pair for the consumer.
    function test_escrow_ThirdPartyEscrowRefundedDoesNotBlockConsumer() public {
        vm.deal(other, 1);
        vm.prank(other);
        bytes32 theirs = vault.escrow{value: 1}(JOB, GRANT, address(0), 1);
        vm.prank(executor);
        vault.refund(theirs);
        assertEq(_statusOf(theirs), Status.REFUNDED, "third party's escrow refunded");

        bytes32 mine = _escrowOf(address(0), JOB, 1 ether);
        assertEq(mine, vault.escrowIdOf(JOB, GRANT, consumer), "consumer's id");
        assertEq(_statusOf(mine), Status.HELD, "consumer's escrow held");
        assertEq(_captureAs(mine, address(0), 1 ether), 0.025 ether, "consumer's escrow captured");
    }

    /// @dev Escrow ids are single-use: after a refund the same payer cannot pay the same
    /// (job, grant) again.
    function test_escrow_Revert_WhenPayerReusesEscrowIdAfterRefund() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        vm.prank(executor);
        vault.refund(id);
        vm.expectRevert(abi.encodeWithSelector(IRevenueVault.RevenueVaultEscrowExists.selector, id));
        vm.prank(consumer);
        vault.escrow{value: 1 ether}(JOB, GRANT, address(0), 1 ether);
    }

    function test_escrow_Revert_WhenEthValueShort() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultWrongValue.selector, 1 ether, 1 ether - 1
            )
        );
        vm.prank(consumer);
        vault.escrow{value: 1 ether - 1}(JOB, GRANT, address(0), 1 ether);
    }

    function test_escrow_Revert_WhenEthValueExcess() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultWrongValue.selector, 1 ether, 1 ether + 1
            )
        );
        vm.prank(consumer);
        vault.escrow{value: 1 ether + 1}(JOB, GRANT, address(0), 1 ether);
    }

    function test_escrow_Revert_WhenTokenEscrowSendsEth() public {
        vm.startPrank(consumer);
        token.approve(address(vault), 1e18);
        vm.expectRevert(abi.encodeWithSelector(IRevenueVault.RevenueVaultWrongValue.selector, 0, 1));
        vault.escrow{value: 1}(JOB, GRANT, address(token), 1e18);
        vm.stopPrank();
    }

    function test_escrow_Revert_WhenFeeOnTransferToken() public {
        FeeOnTransferToken fot = new FeeOnTransferToken();
        fot.mint(consumer, 100e18);
        vm.startPrank(consumer);
        fot.approve(address(vault), 100e18);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultTransferMismatch.selector, address(fot), 100e18, 99e18
            )
        );
        vault.escrow(JOB, GRANT, address(fot), 100e18);
        vm.stopPrank();
        assertEq(_statusOf(vault.escrowIdOf(JOB, GRANT, consumer)), Status.NONE, "no escrow");
    }

    function test_escrow_Revert_WhenAllowanceShort() public {
        vm.startPrank(consumer);
        token.approve(address(vault), 1e18 - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IERC20Errors.ERC20InsufficientAllowance.selector, address(vault), 1e18 - 1, 1e18
            )
        );
        vault.escrow(JOB, GRANT, address(token), 1e18);
        vm.stopPrank();
    }

    function test_receive_Revert_WhenEthSentWithoutEscrow() public {
        vm.prank(consumer);
        (bool ok,) = address(vault).call{value: 1 ether}("");
        assertTrue(!ok, "plain ETH refused");
        assertEq(address(vault).balance, 0, "vault balance");
    }

    /*//////////////////////////////////////////////////////////////
                                CAPTURE
    //////////////////////////////////////////////////////////////*/

    function test_capture_TakesFeeOnEth() public {
        bytes32 id = _escrowOf(address(0), JOB, 2 ether);
        vm.expectEmit(address(vault));
        emit IRevenueVault.Captured(id, DATASET, address(0), 1.95 ether, 0.05 ether);
        uint256 fee = _captureAs(id, address(0), 2 ether);

        assertEq(fee, 0.05 ether, "fee returned");
        assertEq(_statusOf(id), Status.CAPTURED, "status");
        assertEq(vault.revenueOf(DATASET, address(0)), 1.95 ether, "revenue");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(net, 1.95 ether, "captured net");
        assertEq(fees, 0.05 ether, "fees accrued");
        assertEq(address(vault).balance, 2 ether, "funds stay in the vault");
    }

    function test_capture_TakesFeeOnToken() public {
        bytes32 id = _escrowOf(address(token), JOB, 400e18);
        vm.expectEmit(address(vault));
        emit IRevenueVault.Captured(id, DATASET, address(token), 390e18, 10e18);
        assertEq(_captureAs(id, address(token), 400e18), 10e18, "fee returned");
        assertEq(vault.revenueOf(DATASET, address(token)), 390e18, "revenue");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(token));
        assertEq(net, 390e18, "captured net");
        assertEq(fees, 10e18, "fees accrued");
        (net, fees) = vault.tokenTotals(address(0));
        assertEq(net + fees, 0, "ETH books untouched");
    }

    function test_capture_AccumulatesPerDatasetAndToken() public {
        bytes32 a = _escrowOf(address(0), keccak256("a"), 1 ether);
        bytes32 b = _escrowOf(address(0), keccak256("b"), 3 ether);
        bytes32 c = _escrowOf(address(token), keccak256("c"), 100e18);
        _captureAs(a, address(0), 1 ether);
        vm.prank(capturer);
        vault.capture(b, DATASET + 1, address(0), 3 ether);
        _captureAs(c, address(token), 100e18);

        assertEq(vault.revenueOf(DATASET, address(0)), 0.975 ether, "dataset ETH");
        assertEq(vault.revenueOf(DATASET + 1, address(0)), 2.925 ether, "other dataset ETH");
        assertEq(vault.revenueOf(DATASET, address(token)), 97.5e18, "dataset token");
        assertEq(vault.revenueOf(DATASET + 1, address(token)), 0, "other dataset token");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(net, 3.9 ether, "ETH net");
        assertEq(fees, 0.1 ether, "ETH fees");
    }

    function test_capture_RoundsFeeDown() public {
        bytes32 a = _escrowOf(address(0), keccak256("a"), 39);
        bytes32 b = _escrowOf(address(0), keccak256("b"), 40);
        assertEq(_captureAs(a, address(0), 39), 0, "fee of 39 wei at 2.5%");
        assertEq(_captureAs(b, address(0), 40), 1, "fee of 40 wei at 2.5%");
        assertEq(vault.revenueOf(DATASET, address(0)), 78, "revenue");
    }

    /// @dev The fee is the one in force at capture, not at escrow.
    function test_capture_AppliesFeeInForceAtCapture() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        vm.prank(admin);
        vault.setFee(1000, feeRecipient);
        assertEq(_captureAs(id, address(0), 1 ether), 0.1 ether, "10% fee");
        assertEq(vault.revenueOf(DATASET, address(0)), 0.9 ether, "revenue");
    }

    function test_capture_Revert_WhenNotCapturer() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        bytes32 role = vault.CAPTURER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, executor, role
            )
        );
        vm.prank(executor);
        vault.capture(id, DATASET, address(0), 1 ether);
    }

    function test_capture_Revert_WhenEscrowMissing() public {
        bytes32 id = vault.escrowIdOf(JOB, GRANT, consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                id,
                IRevenueVault.EscrowStatus.None
            )
        );
        _captureAs(id, address(0), 1 ether);
    }

    function test_capture_Revert_WhenCaptured() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        _captureAs(id, address(0), 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                id,
                IRevenueVault.EscrowStatus.Captured
            )
        );
        _captureAs(id, address(0), 1 ether);
        assertEq(vault.revenueOf(DATASET, address(0)), 0.975 ether, "captured once");
    }

    function test_capture_Revert_WhenRefunded() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        vm.prank(executor);
        vault.refund(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                id,
                IRevenueVault.EscrowStatus.Refunded
            )
        );
        _captureAs(id, address(0), 1 ether);
    }

    function test_capture_Revert_WhenAmountMismatch() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultCaptureMismatch.selector,
                id,
                address(0),
                1 ether,
                address(0),
                1 ether - 1
            )
        );
        _captureAs(id, address(0), 1 ether - 1);
    }

    function test_capture_Revert_WhenTokenMismatch() public {
        bytes32 id = _escrowOf(address(token), JOB, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultCaptureMismatch.selector,
                id,
                address(token),
                1 ether,
                address(0),
                1 ether
            )
        );
        _captureAs(id, address(0), 1 ether);
        assertEq(_statusOf(id), Status.HELD, "still held");
    }

    /*//////////////////////////////////////////////////////////////
                                 REFUND
    //////////////////////////////////////////////////////////////*/

    function test_refund_ReturnsEthToPayerAfterDelay() public {
        uint256 before = consumer.balance;
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        vm.warp(vault.escrowOf(id).refundAfter);
        vm.expectEmit(address(vault));
        emit IRevenueVault.Refunded(id, consumer, address(0), 1 ether);
        vm.prank(consumer);
        vault.refund(id);

        assertEq(consumer.balance, before, "payer made whole");
        assertEq(address(vault).balance, 0, "vault empty");
        assertEq(_statusOf(id), Status.REFUNDED, "status");
        assertEq(vault.escrowOf(id).amount, 1 ether, "record kept");
    }

    function test_refund_ReturnsTokenToPayerAfterDelay() public {
        uint256 before = token.balanceOf(consumer);
        bytes32 id = _escrowOf(address(token), JOB, 7e18);
        vm.warp(block.timestamp + REFUND_DELAY);
        vm.expectEmit(address(vault));
        emit IRevenueVault.Refunded(id, consumer, address(token), 7e18);
        vm.prank(consumer);
        vault.refund(id);
        assertEq(token.balanceOf(consumer), before, "payer made whole");
        assertEq(token.balanceOf(address(vault)), 0, "vault empty");
    }

    function test_refund_ByAnyoneAfterDelayPaysPayer() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        uint256 payerBefore = consumer.balance;
        vm.warp(block.timestamp + REFUND_DELAY + 1);
        vm.prank(other);
        vault.refund(id);
        assertEq(consumer.balance, payerBefore + 1 ether, "payer paid");
        assertEq(other.balance, 0, "caller not paid");
    }

    function test_refund_EarlyByRefunder() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        uint256 payerBefore = consumer.balance;
        vm.expectEmit(address(vault));
        emit IRevenueVault.Refunded(id, consumer, address(0), 1 ether);
        vm.prank(executor); // REFUNDER_ROLE
        vault.refund(id);
        assertEq(consumer.balance, payerBefore + 1 ether, "payer paid");
        assertEq(_statusOf(id), Status.REFUNDED, "status");
    }

    function test_refund_LeavesCapturedRevenueAlone() public {
        bytes32 kept = _escrowOf(address(0), keccak256("kept"), 2 ether);
        bytes32 returned = _escrowOf(address(0), keccak256("returned"), 1 ether);
        _captureAs(kept, address(0), 2 ether);
        vm.prank(executor);
        vault.refund(returned);
        (uint256 net, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(net + fees, 2 ether, "captured books");
        assertEq(address(vault).balance, 2 ether, "vault holds what was captured");
    }

    function test_refund_Revert_WhenTooEarly() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        uint256 refundAfter = block.timestamp + REFUND_DELAY;
        vm.warp(refundAfter - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultRefundTooEarly.selector, id, refundAfter, refundAfter - 1
            )
        );
        vm.prank(consumer);
        vault.refund(id);
        assertEq(_statusOf(id), Status.HELD, "still held");
    }

    function test_refund_Revert_WhenEscrowMissing() public {
        bytes32 id = vault.escrowIdOf(JOB, GRANT, consumer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                id,
                IRevenueVault.EscrowStatus.None
            )
        );
        vm.prank(executor);
        vault.refund(id);
    }

    function test_refund_Revert_WhenCaptured() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        _captureAs(id, address(0), 1 ether);
        vm.warp(block.timestamp + REFUND_DELAY);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                id,
                IRevenueVault.EscrowStatus.Captured
            )
        );
        vm.prank(consumer);
        vault.refund(id);
    }

    function test_refund_Revert_WhenRefunded() public {
        bytes32 id = _escrowOf(address(0), JOB, 1 ether);
        vm.warp(block.timestamp + REFUND_DELAY);
        vm.prank(consumer);
        vault.refund(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEscrowNotHeld.selector,
                id,
                IRevenueVault.EscrowStatus.Refunded
            )
        );
        vm.prank(consumer);
        vault.refund(id);
    }

    function test_refund_Revert_WhenPayerRefusesEth() public {
        address refuser = address(new EthRefuser());
        vm.deal(refuser, 1 ether);
        vm.prank(refuser);
        bytes32 id = vault.escrow{value: 1 ether}(JOB, GRANT, address(0), 1 ether);
        vm.warp(block.timestamp + REFUND_DELAY);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEthTransferFailed.selector, refuser, 1 ether
            )
        );
        vault.refund(id);
        assertEq(_statusOf(id), Status.HELD, "still held");
        assertEq(address(vault).balance, 1 ether, "funds kept");
    }

    /// @dev refund is guarded: a payer re-entering from its refund is refused.
    function test_refund_ReentryRefusedByGuard() public {
        Reenterer r = new Reenterer(address(vault));
        vm.deal(address(r), 2 ether);
        vm.startPrank(address(r));
        bytes32 first = vault.escrow{value: 1 ether}(keccak256("a"), GRANT, address(0), 1 ether);
        bytes32 second = vault.escrow{value: 1 ether}(keccak256("b"), GRANT, address(0), 1 ether);
        vm.stopPrank();
        r.setCallback(abi.encodeCall(vault.refund, (second)));
        vm.warp(block.timestamp + REFUND_DELAY);

        vault.refund(first);

        assertTrue(!r.callbackOk(), "re-entered refund refused");
        assertEq(
            keccak256(r.callbackRevert()),
            keccak256(abi.encodeWithSelector(bytes4(keccak256("ReentrancyGuardReentrantCall()")))),
            "ReentrancyGuardReentrantCall"
        );
        assertEq(r.received(), 1 ether, "refunded once");
        assertEq(_statusOf(second), Status.HELD, "second escrow still held");
    }

    /*//////////////////////////////////////////////////////////////
                                  FUZZ
    //////////////////////////////////////////////////////////////*/

    /// @dev fee = due * feeBps / 10_000; net + fee == due; books and balance add up.
    function testFuzz_capture_FeeArithmetic(uint88 due, uint16 feeBps, bool inToken) public {
        due = uint88(_within(due, 1, MAX_PAYMENT));
        feeBps = uint16(_within(feeBps, 0, vault.MAX_FEE_BPS()));
        address tok = inToken ? address(token) : address(0);
        vm.prank(admin);
        vault.setFee(feeBps, feeRecipient);
        vm.deal(consumer, due);
        token.mint(consumer, due);
        bytes32 id = _escrowOf(tok, JOB, due);

        uint256 fee = _captureAs(id, tok, due);

        assertEq(fee, uint256(due) * feeBps / 10_000, "fee formula");
        (uint256 net, uint256 fees) = vault.tokenTotals(tok);
        assertEq(net + fee, due, "net + fee == due");
        assertEq(fees, fee, "fees accrued");
        assertEq(vault.revenueOf(DATASET, tok), net, "revenue");
        assertEq(_balanceOf(tok, address(vault)), net + fees, "vault balance");
    }

    /// @dev A refund returns exactly what was escrowed, whoever triggers it and whenever after
    /// the delay.
    function testFuzz_refund_ReturnsExactAmount(uint88 amount, bool inToken, uint32 wait) public {
        amount = uint88(_within(amount, 1, MAX_PAYMENT));
        address tok = inToken ? address(token) : address(0);
        vm.deal(consumer, amount);
        token.mint(consumer, amount);
        uint256 before = _balanceOf(tok, consumer);
        uint256 vaultBefore = _balanceOf(tok, address(vault));
        bytes32 id = _escrowOf(tok, JOB, amount);
        assertEq(_balanceOf(tok, consumer), before - amount, "paid in");

        vm.warp(block.timestamp + REFUND_DELAY + wait);
        vm.prank(other);
        vault.refund(id);

        assertEq(_balanceOf(tok, consumer), before, "paid back exactly");
        assertEq(_balanceOf(tok, address(vault)), vaultBefore, "vault back to its balance");
    }

    function testFuzz_escrow_Revert_WhenAmountAboveMaxPayment(uint256 amount) public {
        amount = _within(amount, uint256(MAX_PAYMENT) + 1, type(uint256).max - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IRevenueVault.RevenueVaultInvalidAmount.selector, amount)
        );
        vm.prank(consumer);
        vault.escrow(JOB, GRANT, address(token), amount);
    }

    function testFuzz_escrow_Revert_WhenEthValueWrong(uint88 amount, uint88 sent) public {
        amount = uint88(_within(amount, 1, MAX_PAYMENT));
        vm.assume(sent != amount);
        vm.deal(consumer, sent);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultWrongValue.selector, uint256(amount), uint256(sent)
            )
        );
        vm.prank(consumer);
        vault.escrow{value: sent}(JOB, GRANT, address(0), amount);
    }
}

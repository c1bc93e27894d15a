// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IRevenueVault} from "../../src/interfaces/IRevenueVault.sol";
import {LedgerTestBase} from "./LedgerTestBase.sol";
import {MockToken} from "./Mocks.sol";

/// @notice Shared set-up and helpers of the RevenueVault tests: a test capturer (so the vault can be
/// driven without the ledger), escrow and capture helpers, and payees for entitlement trees.
abstract contract RevenueVaultBase is LedgerTestBase {
    bytes32 internal constant JOB = keccak256("job-1");
    bytes32 internal constant GRANT = keccak256("grant-1");
    uint256 internal constant DATASET = 7;

    address internal capturer = address(0xCA);
    address internal payeeA = address(0xA1A1);
    address internal payeeB = address(0xB2B2);
    address internal payeeC = address(0xC3C3);

    uint256 private _fundings;

    function setUp() public virtual override {
        super.setUp();
        bytes32 role = vault.CAPTURER_ROLE();
        vm.prank(admin);
        vault.grantRole(role, capturer);
    }

    /// @dev Escrows `amount` of `tok` (address(0): ETH) for (`jobId`, GRANT) as the consumer.
    function _escrowOf(address tok, bytes32 jobId, uint256 amount) internal returns (bytes32 id) {
        vm.startPrank(consumer);
        if (tok == address(0)) {
            id = vault.escrow{value: amount}(jobId, GRANT, address(0), amount);
        } else {
            MockToken(tok).approve(address(vault), amount);
            id = vault.escrow(jobId, GRANT, tok, amount);
        }
        vm.stopPrank();
    }

    /// @dev Captures an escrow as revenue of DATASET, as the test capturer.
    function _captureAs(bytes32 escrowId, address tok, uint256 due) internal returns (uint256) {
        vm.prank(capturer);
        return vault.capture(escrowId, DATASET, tok, due);
    }

    /// @dev Escrows and captures `amount`, so captured net revenue grows by `amount` less the fee.
    function _fund(address tok, uint256 amount) internal {
        bytes32 jobId = keccak256(abi.encode("funding", ++_fundings));
        if (tok == address(0)) {
            vm.deal(consumer, consumer.balance + amount);
        } else {
            MockToken(tok).mint(consumer, amount);
        }
        _captureAs(_escrowOf(tok, jobId, amount), tok, amount);
    }

    function _balanceOf(address tok, address who) internal view returns (uint256) {
        return tok == address(0) ? who.balance : MockToken(tok).balanceOf(who);
    }

    function _statusOf(bytes32 escrowId) internal view returns (uint256) {
        return uint256(vault.escrowOf(escrowId).status);
    }

    function _within(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        if (x >= min && x <= max) return x;
        return min + x % (max - min + 1);
    }
}

/// @notice Receives ETH and, while receiving, makes one call back into the vault, keeping its
/// outcome: shows that `nonReentrant` holds during payouts.
contract Reenterer {
    address public immutable vault;
    bytes public callback;
    bool public callbackOk;
    bytes public callbackRevert;
    uint256 public received;

    constructor(address vault_) {
        vault = vault_;
    }

    function setCallback(bytes calldata data) external {
        callback = data;
    }

    receive() external payable {
        received += msg.value;
        if (callback.length != 0) {
            (callbackOk, callbackRevert) = vault.call(callback);
        }
    }
}

/// @dev Used by tests to name the vault's escrow status values.
library Status {
    uint256 internal constant NONE = uint256(IRevenueVault.EscrowStatus.None);
    uint256 internal constant HELD = uint256(IRevenueVault.EscrowStatus.Held);
    uint256 internal constant CAPTURED = uint256(IRevenueVault.EscrowStatus.Captured);
    uint256 internal constant REFUNDED = uint256(IRevenueVault.EscrowStatus.Refunded);
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title PushPayouts
/// @notice Baseline for the settlement benchmark (benchmarks/bench_settlement.py): pays every
/// recipient in one transaction, one ETH transfer each, the way split contracts push payouts.
/// Not part of the product.
contract PushPayouts {
    /// @notice A recipient refused its payment.
    error PushPayoutsTransferFailed(address to, uint256 amount);
    /// @notice The lists differ in length, or the ETH sent is not their sum.
    error PushPayoutsBadInput();

    /// @notice Sends `amounts[i]` wei to `recipients[i]` for every i.
    function push(address[] calldata recipients, uint256[] calldata amounts) external payable {
        if (recipients.length != amounts.length) revert PushPayoutsBadInput();
        uint256 sum = 0;
        for (uint256 i = 0; i < recipients.length; ++i) {
            sum += amounts[i];
            // slither-disable-next-line arbitrary-send-eth,low-level-calls,calls-loop
            (bool ok,) = recipients[i].call{value: amounts[i]}("");
            if (!ok) revert PushPayoutsTransferFailed(recipients[i], amounts[i]);
        }
        if (sum != msg.value) revert PushPayoutsBadInput();
    }
}

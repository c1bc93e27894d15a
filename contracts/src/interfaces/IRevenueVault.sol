// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Largest payment one escrow can hold (and so the largest price of a use): 2^88 - 1 base units,
// over 3 * 10^8 tokens of 18 decimals. The bound lets an escrow's token, amount and status share
// one slot, so capturing it reads and writes a single slot.
uint256 constant MAX_PAYMENT = type(uint88).max;

/// @notice How escrow ids are derived, shared by the vault and its callers (no call needed).
library EscrowIds {
    /// @notice The escrow id of one grant's payment for a job, by its payer. The payer is part of
    /// the id so that nobody else can take a job's escrow id first and block the job.
    function derive(bytes32 jobId, bytes32 grantId, address payer) internal pure returns (bytes32) {
        return keccak256(abi.encode(jobId, grantId, payer));
    }
}

/// @title IRevenueVault
/// @notice Escrow for job payments (ETH or ERC-20), capture with a platform fee, refunds, per-dataset
/// revenue accounting, and epochs of cumulative Merkle entitlements that contributors claim.
/// @dev Entitlement trees use OpenZeppelin's StandardMerkleTree with leaves `(address, uint256)`:
/// the account and its cumulative entitlement in the token, so claimable = cumulative - claimed.
/// Published totals never exceed captured revenue net of fees, and claims never exceed the total.
interface IRevenueVault {
    /// @notice Escrow status.
    enum EscrowStatus {
        None,
        Held,
        Captured,
        Refunded
    }

    /// @notice A job's escrowed payment, in two slots (the first is all a capture touches).
    struct Escrow {
        address token;
        uint88 amount;
        EscrowStatus status;
        address payer;
        uint40 refundAfter;
    }

    /// @notice Per-token distribution state.
    struct Distribution {
        bytes32 root;
        uint128 publishedTotal;
        uint128 totalClaimed;
        uint64 epoch;
    }

    /// @notice An escrow id was used before.
    error RevenueVaultEscrowExists(bytes32 escrowId);
    /// @notice No escrow is held under this id.
    error RevenueVaultEscrowNotHeld(bytes32 escrowId, EscrowStatus status);
    /// @notice The amount is zero or above `MAX_PAYMENT`.
    error RevenueVaultInvalidAmount(uint256 amount);
    /// @notice ETH sent does not match (ETH escrow: must equal amount; ERC-20 escrow: must be zero).
    error RevenueVaultWrongValue(uint256 expected, uint256 sent);
    /// @notice The token moved a different amount than asked (fee-on-transfer tokens are refused).
    error RevenueVaultTransferMismatch(address token, uint256 expected, uint256 received);
    /// @notice Capture does not match the escrow's token or amount.
    error RevenueVaultCaptureMismatch(
        bytes32 escrowId, address escrowedToken, uint256 escrowed, address token, uint256 due
    );
    /// @notice Refund asked before the escrow's refund time, by someone without REFUNDER_ROLE.
    error RevenueVaultRefundTooEarly(bytes32 escrowId, uint256 refundAfter, uint256 nowTimestamp);
    /// @notice Epochs per token must follow one another without gaps.
    error RevenueVaultWrongEpoch(address token, uint64 expected, uint64 given);
    /// @notice A published total below the previous one (entitlements are cumulative).
    error RevenueVaultTotalDecreased(address token, uint256 previous, uint256 given);
    /// @notice A published total above captured revenue net of fees.
    error RevenueVaultTotalExceedsRevenue(address token, uint256 total, uint256 distributable);
    /// @notice The root is zero.
    error RevenueVaultZeroRoot();
    /// @notice The proof does not show the leaf in the token's current tree.
    error RevenueVaultInvalidProof(address token, address account, uint256 cumulative);
    /// @notice Nothing is left to claim.
    error RevenueVaultNothingToClaim(
        address token, address account, uint256 cumulative, uint256 claimed
    );
    /// @notice The claim would take the token's claims above its published total.
    error RevenueVaultClaimsExceedTotal(
        address token, uint256 totalClaimed, uint256 amount, uint256 total
    );
    /// @notice A fee above `MAX_FEE_BPS`.
    error RevenueVaultFeeTooHigh(uint256 feeBps, uint256 maxFeeBps);
    /// @notice The address is zero.
    error RevenueVaultZeroAddress(string field);
    /// @notice An ETH transfer was refused by its recipient.
    error RevenueVaultEthTransferFailed(address to, uint256 amount);
    /// @notice A refund delay of zero or above `MAX_REFUND_DELAY`.
    error RevenueVaultInvalidRefundDelay(uint256 delay);

    /// @notice A job's payment was escrowed.
    event Escrowed(
        bytes32 indexed escrowId,
        bytes32 indexed jobId,
        bytes32 indexed grantId,
        address payer,
        address token,
        uint256 amount,
        uint40 refundAfter
    );
    /// @notice An escrow was captured as revenue of a dataset, less the platform fee.
    event Captured(
        bytes32 indexed escrowId,
        uint256 indexed datasetId,
        address indexed token,
        uint256 amount,
        uint256 fee
    );
    /// @notice An escrow was returned to its payer.
    event Refunded(bytes32 indexed escrowId, address indexed payer, address token, uint256 amount);
    /// @notice A settler published a token's entitlement tree for an epoch.
    event EpochPublished(address indexed token, uint64 indexed epoch, bytes32 root, uint256 total);
    /// @notice An account claimed its entitlement.
    event Claimed(
        address indexed token, address indexed account, uint256 amount, uint256 cumulative
    );
    /// @notice The platform fee changed.
    event FeeChanged(uint16 feeBps, address indexed recipient);
    /// @notice The escrow window changed.
    event RefundDelayChanged(uint40 delay);
    /// @notice Accrued platform fees were paid out.
    event FeesWithdrawn(address indexed token, address indexed to, uint256 amount);

    /// @notice Escrows the payment for one grant of a job. Send ETH with `token == address(0)`,
    /// otherwise approve the vault for `amount` first. `UsageLedger` captures the escrow of the
    /// job's consumer, so the consumer (the grantee) is the one who pays.
    /// @return escrowId `keccak256(abi.encode(jobId, grantId, msg.sender))`.
    function escrow(bytes32 jobId, bytes32 grantId, address token, uint256 amount)
        external
        payable
        returns (bytes32 escrowId);

    /// @notice Captures an escrow as revenue of `datasetId` (CAPTURER_ROLE, i.e. `UsageLedger`).
    /// @return fee The platform fee taken.
    function capture(bytes32 escrowId, uint256 datasetId, address token, uint256 due)
        external
        returns (uint256 fee);

    /// @notice Returns an escrow to its payer: by anyone after its refund time, or early by
    /// REFUNDER_ROLE (the service, for a job that cannot run).
    function refund(bytes32 escrowId) external;

    /// @notice Publishes the next epoch's entitlement tree for a token (SETTLER_ROLE).
    /// @param total Sum of all cumulative entitlements in the tree.
    function publishEpoch(address token, uint64 epoch, bytes32 root, uint256 total) external;

    /// @notice Pays `account` what its cumulative entitlement exceeds what it already claimed.
    /// Anyone may submit; the payment always goes to `account`.
    /// @return amount What was paid.
    function claim(address token, address account, uint256 cumulative, bytes32[] calldata proof)
        external
        returns (uint256 amount);

    /// @notice Sets the platform fee (DEFAULT_ADMIN_ROLE).
    function setFee(uint16 feeBps, address recipient) external;

    /// @notice Sets the escrow window after which payers may take refunds (DEFAULT_ADMIN_ROLE).
    function setRefundDelay(uint40 delay) external;

    /// @notice Pays accrued fees of a token to the fee recipient.
    function withdrawFees(address token) external returns (uint256 amount);

    /// @notice The escrow id of one grant's payment for a job by `payer`.
    function escrowIdOf(bytes32 jobId, bytes32 grantId, address payer)
        external
        pure
        returns (bytes32);

    /// @notice An escrow.
    function escrowOf(bytes32 escrowId) external view returns (Escrow memory);

    /// @notice Revenue captured for a dataset in a token, net of fees.
    function revenueOf(uint256 datasetId, address token) external view returns (uint256);

    /// @notice Totals of a token: revenue captured net of fees, and fees accrued and unpaid.
    function tokenTotals(address token)
        external
        view
        returns (uint256 capturedNet, uint256 feesAccrued);

    /// @notice A token's distribution: current root, epoch, published total and total claimed.
    function distributionOf(address token) external view returns (Distribution memory);

    /// @notice The root published for a token's epoch (zero if none).
    function epochRoot(address token, uint64 epoch) external view returns (bytes32);

    /// @notice What an account has claimed of a token so far.
    function claimedOf(address token, address account) external view returns (uint256);
}

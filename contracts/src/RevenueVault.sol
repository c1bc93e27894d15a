// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {EscrowIds, IRevenueVault, MAX_PAYMENT} from "./interfaces/IRevenueVault.sol";

/// @title RevenueVault
/// @notice Job escrow, revenue capture, refunds and Merkle-epoch payouts. See {IRevenueVault}.
/// @dev Solvency: for every token the vault holds at least the amounts of its held escrows plus
/// `capturedNet - totalClaimed + feesAccrued`; publication is capped by `capturedNet` and claims
/// by the published total, so what can ever be claimed never exceeds what was captured net of
/// fees.
contract RevenueVault is IRevenueVault, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Role allowed to capture escrows (`UsageLedger`).
    bytes32 public constant CAPTURER_ROLE = keccak256("CAPTURER_ROLE");
    /// @notice Role allowed to publish entitlement epochs.
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");
    /// @notice Role allowed to refund an escrow before its refund time (the compute service).
    bytes32 public constant REFUNDER_ROLE = keccak256("REFUNDER_ROLE");
    /// @notice Highest platform fee: 10%.
    uint16 public constant MAX_FEE_BPS = 1000;
    /// @notice Longest escrow window.
    uint40 public constant MAX_REFUND_DELAY = 30 days;
    uint256 private constant _BPS = 10_000;

    /// One slot per token, so a capture writes it once. Held escrows are not summed here (that
    /// would cost every escrow and capture another write); each escrow records its own amount.
    struct TokenBook {
        uint128 capturedNet;
        uint128 feesAccrued;
    }

    /// @notice Platform fee in basis points, taken at capture.
    uint16 public feeBps;
    /// @notice Escrow window: payers may take refunds this long after escrowing.
    uint40 public refundDelay;
    /// @notice Recipient of platform fees.
    address public feeRecipient;

    mapping(bytes32 escrowId => Escrow) private _escrows;
    mapping(address token => TokenBook) private _books;
    mapping(uint256 datasetId => mapping(address token => uint256)) private _revenue;
    mapping(address token => Distribution) private _distributions;
    mapping(address token => mapping(uint64 epoch => bytes32)) private _epochRoots;
    mapping(address token => mapping(address account => uint256)) private _claimed;

    /// @param admin Holder of DEFAULT_ADMIN_ROLE.
    /// @param feeBps_ Initial platform fee in basis points.
    /// @param feeRecipient_ Initial fee recipient.
    /// @param refundDelay_ Initial escrow window in seconds.
    constructor(address admin, uint16 feeBps_, address feeRecipient_, uint40 refundDelay_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setFee(feeBps_, feeRecipient_);
        _setRefundDelay(refundDelay_);
    }

    /// @inheritdoc IRevenueVault
    function escrow(bytes32 jobId, bytes32 grantId, address token, uint256 amount)
        external
        payable
        nonReentrant
        returns (bytes32 escrowId)
    {
        if (amount == 0 || amount > MAX_PAYMENT) {
            revert RevenueVaultInvalidAmount(amount);
        }
        escrowId = EscrowIds.derive(jobId, grantId, msg.sender);
        if (_escrows[escrowId].status != EscrowStatus.None) {
            revert RevenueVaultEscrowExists(escrowId);
        }
        uint40 refundAfter = uint40(block.timestamp) + refundDelay;
        _escrows[escrowId] = Escrow({
            token: token,
            amount: uint88(amount),
            status: EscrowStatus.Held,
            payer: msg.sender,
            refundAfter: refundAfter
        });
        emit Escrowed(escrowId, jobId, grantId, msg.sender, token, amount, refundAfter);
        if (token == address(0)) {
            if (msg.value != amount) revert RevenueVaultWrongValue(amount, msg.value);
        } else {
            if (msg.value != 0) revert RevenueVaultWrongValue(0, msg.value);
            uint256 before = IERC20(token).balanceOf(address(this));
            IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
            uint256 received = IERC20(token).balanceOf(address(this)) - before;
            if (received != amount) revert RevenueVaultTransferMismatch(token, amount, received);
        }
    }

    /// @inheritdoc IRevenueVault
    function capture(bytes32 escrowId, uint256 datasetId, address token, uint256 due)
        external
        onlyRole(CAPTURER_ROLE)
        returns (uint256 fee)
    {
        Escrow storage e = _escrows[escrowId];
        if (e.status != EscrowStatus.Held) revert RevenueVaultEscrowNotHeld(escrowId, e.status);
        if (e.token != token || e.amount != due) {
            revert RevenueVaultCaptureMismatch(escrowId, e.token, e.amount, token, due);
        }
        e.status = EscrowStatus.Captured;
        fee = due * feeBps / _BPS;
        uint256 net = due - fee;
        TokenBook storage book = _books[token];
        // Cannot truncate: net and fee are at most `due` <= MAX_PAYMENT < 2^88; the sums are
        // bounded by what was ever escrowed, which a token's supply bounds far below 2^128
        // (and the arithmetic is checked anyway).
        book.capturedNet += uint128(net);
        book.feesAccrued += uint128(fee);
        _revenue[datasetId][token] += net;
        emit Captured(escrowId, datasetId, token, net, fee);
    }

    /// @inheritdoc IRevenueVault
    function refund(bytes32 escrowId) external nonReentrant {
        Escrow storage e = _escrows[escrowId];
        if (e.status != EscrowStatus.Held) revert RevenueVaultEscrowNotHeld(escrowId, e.status);
        // slither-disable-next-line timestamp
        if (block.timestamp < e.refundAfter && !hasRole(REFUNDER_ROLE, msg.sender)) {
            revert RevenueVaultRefundTooEarly(escrowId, e.refundAfter, block.timestamp);
        }
        e.status = EscrowStatus.Refunded;
        (address payer, address token, uint256 amount) = (e.payer, e.token, e.amount);
        emit Refunded(escrowId, payer, token, amount);
        _pay(token, payer, amount);
    }

    /// @inheritdoc IRevenueVault
    function publishEpoch(address token, uint64 epoch, bytes32 root, uint256 total)
        external
        onlyRole(SETTLER_ROLE)
    {
        if (root == bytes32(0)) revert RevenueVaultZeroRoot();
        Distribution storage d = _distributions[token];
        if (epoch != d.epoch + 1) revert RevenueVaultWrongEpoch(token, d.epoch + 1, epoch);
        if (total < d.publishedTotal) {
            revert RevenueVaultTotalDecreased(token, d.publishedTotal, total);
        }
        uint256 distributable = _books[token].capturedNet;
        if (total > distributable) {
            revert RevenueVaultTotalExceedsRevenue(token, total, distributable);
        }
        d.root = root;
        d.epoch = epoch;
        // Cannot truncate: total <= capturedNet, a uint128.
        d.publishedTotal = uint128(total);
        _epochRoots[token][epoch] = root;
        emit EpochPublished(token, epoch, root, total);
    }

    /// @inheritdoc IRevenueVault
    // No reentrancy guard: every state change precedes the one external call (the payment), and a
    // re-entered claim finds nothing left to pay; the guard would cost every claim ~400 gas.
    function claim(address token, address account, uint256 cumulative, bytes32[] calldata proof)
        external
        returns (uint256 amount)
    {
        Distribution storage d = _distributions[token];
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))));
        if (!MerkleProof.verifyCalldata(proof, d.root, leaf)) {
            revert RevenueVaultInvalidProof(token, account, cumulative);
        }
        uint256 already = _claimed[token][account];
        if (cumulative <= already) {
            revert RevenueVaultNothingToClaim(token, account, cumulative, already);
        }
        amount = cumulative - already;
        uint256 totalClaimed = d.totalClaimed;
        if (totalClaimed + amount > d.publishedTotal) {
            revert RevenueVaultClaimsExceedTotal(token, totalClaimed, amount, d.publishedTotal);
        }
        _claimed[token][account] = cumulative;
        // Cannot truncate: bounded by publishedTotal, a uint128.
        d.totalClaimed = uint128(totalClaimed + amount);
        emit Claimed(token, account, amount, cumulative);
        _pay(token, account, amount);
    }

    /// @inheritdoc IRevenueVault
    function setFee(uint16 feeBps_, address recipient) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setFee(feeBps_, recipient);
    }

    /// @inheritdoc IRevenueVault
    function setRefundDelay(uint40 delay) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRefundDelay(delay);
    }

    /// @inheritdoc IRevenueVault
    function withdrawFees(address token) external nonReentrant returns (uint256 amount) {
        amount = _books[token].feesAccrued;
        _books[token].feesAccrued = 0;
        address to = feeRecipient;
        emit FeesWithdrawn(token, to, amount);
        if (amount != 0) _pay(token, to, amount);
    }

    /// @inheritdoc IRevenueVault
    function escrowIdOf(bytes32 jobId, bytes32 grantId, address payer)
        external
        pure
        returns (bytes32)
    {
        return EscrowIds.derive(jobId, grantId, payer);
    }

    /// @inheritdoc IRevenueVault
    function escrowOf(bytes32 escrowId) external view returns (Escrow memory) {
        return _escrows[escrowId];
    }

    /// @inheritdoc IRevenueVault
    function revenueOf(uint256 datasetId, address token) external view returns (uint256) {
        return _revenue[datasetId][token];
    }

    /// @inheritdoc IRevenueVault
    function tokenTotals(address token)
        external
        view
        returns (uint256 capturedNet, uint256 feesAccrued)
    {
        TokenBook storage book = _books[token];
        return (book.capturedNet, book.feesAccrued);
    }

    /// @inheritdoc IRevenueVault
    function distributionOf(address token) external view returns (Distribution memory) {
        return _distributions[token];
    }

    /// @inheritdoc IRevenueVault
    function epochRoot(address token, uint64 epoch) external view returns (bytes32) {
        return _epochRoots[token][epoch];
    }

    /// @inheritdoc IRevenueVault
    function claimedOf(address token, address account) external view returns (uint256) {
        return _claimed[token][account];
    }

    function _setFee(uint16 feeBps_, address recipient) private {
        if (feeBps_ > MAX_FEE_BPS) revert RevenueVaultFeeTooHigh(feeBps_, MAX_FEE_BPS);
        if (recipient == address(0)) revert RevenueVaultZeroAddress("recipient");
        feeBps = feeBps_;
        feeRecipient = recipient;
        emit FeeChanged(feeBps_, recipient);
    }

    function _setRefundDelay(uint40 delay) private {
        if (delay == 0 || delay > MAX_REFUND_DELAY) revert RevenueVaultInvalidRefundDelay(delay);
        refundDelay = delay;
        emit RefundDelayChanged(delay);
    }

    function _pay(address token, address to, uint256 amount) private {
        if (token == address(0)) {
            // slither-disable-next-line arbitrary-send-eth,low-level-calls
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert RevenueVaultEthTransferFailed(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }
}

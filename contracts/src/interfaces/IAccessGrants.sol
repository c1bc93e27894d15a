// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IAccessGrants
/// @notice Grants of computation rights on a dataset, issued by its owner directly or relayed with an
/// EIP-712 signature (EOA or ERC-1271 wallet), revocable, and consumed only through `UsageLedger`.
/// @dev A grant is stored as one slot of mutable state keyed by its id, the EIP-712 digest of the
/// `Grant` struct: the id is exactly what the owner's wallet signed. Its terms travel in calldata and
/// in the `GrantIssued` event; every use re-derives the id from the terms.
interface IAccessGrants {
    /// @notice The terms of a grant, as signed (EIP-712 type `Grant`).
    /// @param datasetId The dataset (data asset token id).
    /// @param grantor The dataset owner issuing the grant (the signer).
    /// @param grantee Who may receive results of computations under the grant.
    /// @param algorithmHash Code hash of the one algorithm allowed, or `ANY_CATALOG_ALGORITHM`.
    /// @param purpose Purpose code (e.g. keccak256 of "research.oncology").
    /// @param validFrom First second the grant may be used.
    /// @param validUntil Last second the grant may be used.
    /// @param maxUses Maximum number of uses (at least 1).
    /// @param epsilonBudget Differential-privacy budget in micro-epsilon (1e-6); 0 allows no DP spend.
    /// @param paymentToken ERC-20 token of payment, or address(0) for ETH.
    /// @param pricePerUse Price of one use in the token's base units (at most `MAX_PAYMENT`, 2^88 - 1).
    /// @param nonce The grantor's nonce; each nonce issues at most one grant.
    /// @param deadline Last second the grant may be issued (signature expiry).
    struct Grant {
        uint256 datasetId;
        address grantor;
        address grantee;
        bytes32 algorithmHash;
        bytes32 purpose;
        uint64 validFrom;
        uint64 validUntil;
        uint32 maxUses;
        uint64 epsilonBudget;
        address paymentToken;
        uint256 pricePerUse;
        uint256 nonce;
        uint256 deadline;
    }

    /// @notice What a job asks of a grant.
    /// @param consumer Who requested the job (must be the grantee).
    /// @param algorithmHash Code hash of the algorithm that ran.
    /// @param purpose Purpose code the job was requested under.
    /// @param uses Uses consumed (at least 1).
    /// @param epsilon Privacy budget consumed, in micro-epsilon.
    struct Use {
        address consumer;
        bytes32 algorithmHash;
        bytes32 purpose;
        uint32 uses;
        uint64 epsilon;
    }

    /// @notice Grant life-cycle status.
    enum Status {
        None,
        Active,
        Revoked
    }

    /// @notice Mutable state of an issued grant, packed into one slot.
    struct GrantState {
        uint32 uses;
        uint64 epsilonSpent;
        uint32 ownerEpoch;
        uint40 issuedAt;
        Status status;
    }

    /// @notice The dataset's owner is not the grant's grantor.
    error AccessGrantsNotDatasetOwner(uint256 datasetId, address grantor, address owner);
    /// @notice The caller may not act for this grantor.
    error AccessGrantsUnauthorized(address caller, address grantor);
    /// @notice The signature is not the grantor's (EOA or ERC-1271), or it is malleable (high s).
    error AccessGrantsInvalidSignature(address grantor, bytes32 grantId);
    /// @notice The signature's deadline has passed.
    error AccessGrantsExpiredDeadline(uint256 deadline, uint256 nowTimestamp);
    /// @notice The grantor's nonce was used or invalidated.
    error AccessGrantsNonceUsed(address grantor, uint256 nonce);
    /// @notice A term is out of range; `field` names it.
    error AccessGrantsInvalidTerms(string field);
    /// @notice No grant has this id.
    error AccessGrantsUnknownGrant(bytes32 grantId);
    /// @notice The grant was revoked (individually or by nonce).
    error AccessGrantsRevoked(bytes32 grantId);
    /// @notice The dataset changed hands after the grant was issued.
    error AccessGrantsOwnerChanged(bytes32 grantId, uint32 grantEpoch, uint32 currentEpoch);
    /// @notice The grant is not valid at this time.
    error AccessGrantsOutsideWindow(
        bytes32 grantId, uint64 validFrom, uint64 validUntil, uint256 nowTimestamp
    );
    /// @notice The job's consumer is not the grantee.
    error AccessGrantsWrongGrantee(bytes32 grantId, address grantee, address consumer);
    /// @notice The algorithm is not the granted one (nor a catalog algorithm under a catalog grant).
    error AccessGrantsWrongAlgorithm(bytes32 grantId, bytes32 granted, bytes32 requested);
    /// @notice The job's purpose is not the granted purpose.
    error AccessGrantsWrongPurpose(bytes32 grantId, bytes32 granted, bytes32 requested);
    /// @notice The job would exceed the grant's maximum uses.
    error AccessGrantsUsesExceeded(bytes32 grantId, uint32 used, uint32 requested, uint32 maxUses);
    /// @notice The job would exceed the grant's privacy budget.
    error AccessGrantsBudgetExceeded(
        bytes32 grantId, uint64 spent, uint64 requested, uint64 budget
    );
    /// @notice A new minimum nonce must be higher than the current one.
    error AccessGrantsNonceNotIncreasing(address grantor, uint256 current, uint256 requested);

    /// @notice A grant was issued; its terms are in the event so the index needs no other source.
    event GrantIssued(
        bytes32 indexed grantId,
        uint256 indexed datasetId,
        address indexed grantee,
        Grant grant,
        uint32 ownerEpoch,
        bool relayed
    );
    /// @notice A grant was revoked by `by`.
    event GrantRevoked(bytes32 indexed grantId, uint256 indexed datasetId, address indexed by);
    /// @notice Every grant of `grantor` with a nonce below `minNonce` was revoked.
    event NoncesInvalidated(address indexed grantor, uint256 minNonce);
    /// @notice A job consumed part of a grant; the totals are after this use.
    event GrantConsumed(
        bytes32 indexed grantId, uint32 uses, uint64 epsilon, uint32 totalUses, uint64 totalEpsilon
    );
    /// @notice The catalog admin listed or delisted an algorithm for catalog grants.
    event CatalogAlgorithmSet(bytes32 indexed algorithmHash, bool listed);

    /// @notice Issues a grant on a dataset the caller owns (`grant.grantor` must be the caller).
    /// @return id The grant's id (its EIP-712 digest).
    function issue(Grant calldata grant) external returns (bytes32 id);

    /// @notice Issues a grant signed by its grantor (EIP-712; ERC-1271 for contract wallets).
    /// @return id The grant's id (the digest that was signed).
    function issueWithSig(Grant calldata grant, bytes calldata signature)
        external
        returns (bytes32 id);

    /// @notice Revokes a grant. Allowed to its grantor and to the dataset's current owner.
    function revoke(Grant calldata grant) external;

    /// @notice Revokes every grant of the caller with a nonce below `minNonce`, issued or not.
    function invalidateNonces(uint256 minNonce) external;

    /// @notice Consumes uses and budget of a grant for a job. Only `UsageLedger` (CONSUMER_ROLE).
    /// @return id The grant's id.
    function consume(Grant calldata grant, Use calldata use) external returns (bytes32 id);

    /// @notice Lists or delists a catalog algorithm (CATALOG_ROLE).
    function setCatalogAlgorithm(bytes32 algorithmHash, bool listed) external;

    /// @notice Reverts with the error `consume` would raise, without changing anything.
    /// @return id The grant's id.
    /// @return state The grant's state before the use.
    function checkUse(Grant calldata grant, Use calldata use)
        external
        view
        returns (bytes32 id, GrantState memory state);

    /// @notice The id (EIP-712 digest) of a grant's terms on this contract and chain.
    function grantId(Grant calldata grant) external view returns (bytes32);

    /// @notice The state of a grant (all zero if never issued).
    function stateOf(bytes32 id) external view returns (GrantState memory);

    /// @notice Whether `nonce` of `grantor` is used or below the grantor's minimum.
    function isNonceUsed(address grantor, uint256 nonce) external view returns (bool);

    /// @notice The grantor's minimum valid nonce.
    function minNonceOf(address grantor) external view returns (uint256);

    /// @notice Whether an algorithm is listed in the catalog.
    function isCatalogAlgorithm(bytes32 algorithmHash) external view returns (bool);
}

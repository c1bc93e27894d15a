// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {IAccessGrants} from "./interfaces/IAccessGrants.sol";
import {IDataRegistry} from "./interfaces/IDataRegistry.sol";
import {MAX_PAYMENT} from "./interfaces/IRevenueVault.sol";

/// @title AccessGrants
/// @notice Grants of computation rights on datasets. See {IAccessGrants}.
/// @dev Signatures go through OpenZeppelin's SignatureChecker: ECDSA for EOAs (which refuses
/// high-s signatures) and ERC-1271 for contract wallets. The EIP-712 domain binds the chain id and
/// this contract's address, so a signature cannot be replayed on another chain or deployment.
contract AccessGrants is IAccessGrants, AccessControl, EIP712 {
    /// @notice Role of the contract allowed to consume grants (`UsageLedger`).
    bytes32 public constant CONSUMER_ROLE = keccak256("CONSUMER_ROLE");
    /// @notice Role allowed to list catalog algorithms.
    bytes32 public constant CATALOG_ROLE = keccak256("CATALOG_ROLE");
    /// @notice `algorithmHash` value of a grant that allows any listed catalog algorithm.
    bytes32 public constant ANY_CATALOG_ALGORITHM = keccak256("ledger.algorithm.any-catalog");
    /// @notice The EIP-712 type hash of `Grant`.
    bytes32 public constant GRANT_TYPEHASH = keccak256(
        "Grant(uint256 datasetId,address grantor,address grantee,bytes32 algorithmHash,"
        "bytes32 purpose,uint64 validFrom,uint64 validUntil,uint32 maxUses,uint64 epsilonBudget,"
        "address paymentToken,uint256 pricePerUse,uint256 nonce,uint256 deadline)"
    );

    /// @notice The dataset registry grants refer to.
    IDataRegistry public immutable registry;

    mapping(bytes32 grantId => GrantState) private _states;
    mapping(address grantor => mapping(uint256 word => uint256 bits)) private _nonceBitmap;
    mapping(address grantor => uint256) private _minNonce;
    mapping(bytes32 algorithmHash => bool) private _catalog;

    /// @param registry_ The dataset registry.
    /// @param admin Holder of DEFAULT_ADMIN_ROLE and CATALOG_ROLE.
    constructor(IDataRegistry registry_, address admin) EIP712("Ledger AccessGrants", "1") {
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(CATALOG_ROLE, admin);
    }

    /// @inheritdoc IAccessGrants
    function issue(Grant calldata grant) external returns (bytes32 id) {
        if (msg.sender != grant.grantor) {
            revert AccessGrantsUnauthorized(msg.sender, grant.grantor);
        }
        id = _hashGrant(grant);
        _issue(grant, id, false);
    }

    /// @inheritdoc IAccessGrants
    function issueWithSig(Grant calldata grant, bytes calldata signature)
        external
        returns (bytes32 id)
    {
        id = _hashGrant(grant);
        if (!SignatureChecker.isValidSignatureNowCalldata(grant.grantor, id, signature)) {
            revert AccessGrantsInvalidSignature(grant.grantor, id);
        }
        _issue(grant, id, true);
    }

    /// @inheritdoc IAccessGrants
    function revoke(Grant calldata grant) external {
        bytes32 id = _hashGrant(grant);
        GrantState storage state = _states[id];
        if (state.status == Status.None) revert AccessGrantsUnknownGrant(id);
        if (state.status == Status.Revoked) revert AccessGrantsRevoked(id);
        if (msg.sender != grant.grantor) {
            address owner = registry.ownerOf(grant.datasetId);
            if (msg.sender != owner) revert AccessGrantsUnauthorized(msg.sender, grant.grantor);
        }
        state.status = Status.Revoked;
        emit GrantRevoked(id, grant.datasetId, msg.sender);
    }

    /// @inheritdoc IAccessGrants
    function invalidateNonces(uint256 minNonce) external {
        uint256 current = _minNonce[msg.sender];
        if (minNonce <= current) {
            revert AccessGrantsNonceNotIncreasing(msg.sender, current, minNonce);
        }
        _minNonce[msg.sender] = minNonce;
        emit NoncesInvalidated(msg.sender, minNonce);
    }

    /// @inheritdoc IAccessGrants
    function consume(Grant calldata grant, Use calldata use)
        external
        onlyRole(CONSUMER_ROLE)
        returns (bytes32 id)
    {
        GrantState memory state;
        (id, state) = _checkUse(grant, use);
        // Cannot overflow: _checkUse bounded both totals by the grant's uint32/uint64 maxima.
        unchecked {
            state.uses += use.uses;
            state.epsilonSpent += use.epsilon;
        }
        _states[id] = state;
        emit GrantConsumed(id, use.uses, use.epsilon, state.uses, state.epsilonSpent);
    }

    /// @inheritdoc IAccessGrants
    function setCatalogAlgorithm(bytes32 algorithmHash, bool listed)
        external
        onlyRole(CATALOG_ROLE)
    {
        if (algorithmHash == bytes32(0) || algorithmHash == ANY_CATALOG_ALGORITHM) {
            revert AccessGrantsInvalidTerms("algorithmHash");
        }
        _catalog[algorithmHash] = listed;
        emit CatalogAlgorithmSet(algorithmHash, listed);
    }

    /// @inheritdoc IAccessGrants
    function checkUse(Grant calldata grant, Use calldata use)
        external
        view
        returns (bytes32 id, GrantState memory state)
    {
        return _checkUse(grant, use);
    }

    /// @inheritdoc IAccessGrants
    function grantId(Grant calldata grant) external view returns (bytes32) {
        return _hashGrant(grant);
    }

    /// @inheritdoc IAccessGrants
    function stateOf(bytes32 id) external view returns (GrantState memory) {
        return _states[id];
    }

    /// @inheritdoc IAccessGrants
    function isNonceUsed(address grantor, uint256 nonce) public view returns (bool) {
        if (nonce < _minNonce[grantor]) return true;
        return _nonceBitmap[grantor][nonce >> 8] & (uint256(1) << (nonce & 0xff)) != 0;
    }

    /// @inheritdoc IAccessGrants
    function minNonceOf(address grantor) external view returns (uint256) {
        return _minNonce[grantor];
    }

    /// @inheritdoc IAccessGrants
    function isCatalogAlgorithm(bytes32 algorithmHash) external view returns (bool) {
        return _catalog[algorithmHash];
    }

    /// @notice The EIP-712 domain separator of this contract on this chain.
    // The conventional EIP-2612/EIP-712 name, so tools find it.
    // slither-disable-next-line naming-convention
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function _issue(Grant calldata grant, bytes32 id, bool relayed) private {
        _checkTerms(grant);
        uint32 epoch = registry.ownerEpochOf(grant.datasetId);
        address owner = registry.ownerOf(grant.datasetId);
        if (owner != grant.grantor) {
            revert AccessGrantsNotDatasetOwner(grant.datasetId, grant.grantor, owner);
        }
        _useNonce(grant.grantor, grant.nonce);
        // A fresh nonce makes a fresh id, so the slot is empty here.
        _states[id] = GrantState({
            uses: 0,
            epsilonSpent: 0,
            ownerEpoch: epoch,
            issuedAt: uint40(block.timestamp),
            status: Status.Active
        });
        emit GrantIssued(id, grant.datasetId, grant.grantee, grant, epoch, relayed);
    }

    function _useNonce(address grantor, uint256 nonce) private {
        if (nonce < _minNonce[grantor]) revert AccessGrantsNonceUsed(grantor, nonce);
        uint256 bit = uint256(1) << (nonce & 0xff);
        uint256 word = _nonceBitmap[grantor][nonce >> 8];
        if (word & bit != 0) revert AccessGrantsNonceUsed(grantor, nonce);
        _nonceBitmap[grantor][nonce >> 8] = word | bit;
    }

    function _checkTerms(Grant calldata grant) private view {
        // slither-disable-next-line timestamp
        if (grant.deadline < block.timestamp) {
            revert AccessGrantsExpiredDeadline(grant.deadline, block.timestamp);
        }
        if (grant.grantee == address(0)) revert AccessGrantsInvalidTerms("grantee");
        if (grant.algorithmHash == bytes32(0)) revert AccessGrantsInvalidTerms("algorithmHash");
        if (grant.purpose == bytes32(0)) revert AccessGrantsInvalidTerms("purpose");
        if (grant.maxUses == 0) revert AccessGrantsInvalidTerms("maxUses");
        // slither-disable-next-line timestamp
        if (grant.validUntil <= grant.validFrom || grant.validUntil < block.timestamp) {
            revert AccessGrantsInvalidTerms("validUntil");
        }
        if (grant.pricePerUse > MAX_PAYMENT) revert AccessGrantsInvalidTerms("pricePerUse");
    }

    function _checkUse(Grant calldata grant, Use calldata use)
        private
        view
        returns (bytes32 id, GrantState memory state)
    {
        id = _hashGrant(grant);
        state = _states[id];
        if (state.status == Status.None) revert AccessGrantsUnknownGrant(id);
        if (state.status == Status.Revoked || grant.nonce < _minNonce[grant.grantor]) {
            revert AccessGrantsRevoked(id);
        }
        uint32 epoch = registry.ownerEpochOf(grant.datasetId);
        if (epoch != state.ownerEpoch) {
            revert AccessGrantsOwnerChanged(id, state.ownerEpoch, epoch);
        }
        // slither-disable-next-line timestamp
        if (block.timestamp < grant.validFrom || block.timestamp > grant.validUntil) {
            revert AccessGrantsOutsideWindow(id, grant.validFrom, grant.validUntil, block.timestamp);
        }
        if (use.consumer != grant.grantee) {
            revert AccessGrantsWrongGrantee(id, grant.grantee, use.consumer);
        }
        if (grant.algorithmHash == ANY_CATALOG_ALGORITHM
                ? !_catalog[use.algorithmHash]
                : use.algorithmHash != grant.algorithmHash) {
            revert AccessGrantsWrongAlgorithm(id, grant.algorithmHash, use.algorithmHash);
        }
        if (use.purpose != grant.purpose) {
            revert AccessGrantsWrongPurpose(id, grant.purpose, use.purpose);
        }
        if (use.uses == 0) revert AccessGrantsInvalidTerms("uses");
        if (uint256(state.uses) + use.uses > grant.maxUses) {
            revert AccessGrantsUsesExceeded(id, state.uses, use.uses, grant.maxUses);
        }
        if (uint256(state.epsilonSpent) + use.epsilon > grant.epsilonBudget) {
            revert AccessGrantsBudgetExceeded(
                id, state.epsilonSpent, use.epsilon, grant.epsilonBudget
            );
        }
    }

    function _hashGrant(Grant calldata grant) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(GRANT_TYPEHASH, grant)));
    }
}

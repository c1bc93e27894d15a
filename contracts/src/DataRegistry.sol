// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

import {IDataRegistry} from "./interfaces/IDataRegistry.sol";

/// @title DataRegistry
/// @notice One ERC-721 data asset per dataset, with versioned commitments, revenue split and executor
/// approvals. See {IDataRegistry}.
/// @dev What happens to grants when a dataset changes hands: a transfer starts a new ownership
/// epoch. Grants and executor approvals are bound to the epoch in which the owner gave them, so every
/// live grant and approval of the previous owner lapses at once: the new owner never inherits
/// promises it did not sign, and the previous owner, who can no longer revoke, no longer answers for
/// them. Escrowed payments of jobs that can no longer be recorded are refundable as usual.
contract DataRegistry is IDataRegistry, ERC721, AccessControl {
    uint16 private constant _BPS = 10_000;

    uint256 private _lastId;
    string private _baseTokenURI;
    mapping(uint256 datasetId => Head) private _heads;
    mapping(uint256 datasetId => mapping(uint32 version => StoredVersion)) private _versions;
    mapping(uint256 datasetId => mapping(uint32 epoch => mapping(address executor => bool))) private
        _executors;

    /// @param admin Holder of DEFAULT_ADMIN_ROLE (may set the base token URI).
    constructor(address admin) ERC721("Ledger Data Asset", "DATA") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IDataRegistry
    function register(Version calldata version, uint16 ownerShareBps, string calldata metadataURI)
        external
        returns (uint256 datasetId)
    {
        _checkVersion(version);
        _checkShare(ownerShareBps);
        // Cannot overflow: one id per transaction.
        unchecked {
            datasetId = ++_lastId;
        }
        uint40 nowTs = uint40(block.timestamp);
        _heads[datasetId] = Head({
            version: 1,
            ownerEpoch: 0,
            ownerShareBps: ownerShareBps,
            registeredAt: nowTs,
            updatedAt: nowTs
        });
        _versions[datasetId][1] = _stored(version);
        _mint(msg.sender, datasetId);
        emit DatasetRegistered(
            datasetId,
            msg.sender,
            version.commitment,
            version.contributorsRoot,
            version.schemaHash,
            version.metadataHash,
            ownerShareBps,
            metadataURI
        );
    }

    /// @inheritdoc IDataRegistry
    function publishVersion(
        uint256 datasetId,
        Version calldata version,
        string calldata metadataURI
    ) external returns (uint32 newVersion) {
        _checkOwner(datasetId);
        _checkVersion(version);
        Head storage head = _heads[datasetId];
        uint32 previous = head.version;
        bytes32 previousCommitment = _versions[datasetId][previous].commitment;
        if (previousCommitment == version.commitment) {
            revert DataRegistryUnchangedCommitment(datasetId, version.commitment);
        }
        newVersion = previous + 1;
        head.version = newVersion;
        head.updatedAt = uint40(block.timestamp);
        _versions[datasetId][newVersion] = _stored(version);
        emit DatasetVersionPublished(
            datasetId,
            newVersion,
            version.commitment,
            version.contributorsRoot,
            version.schemaHash,
            version.metadataHash,
            previousCommitment,
            metadataURI
        );
    }

    /// @inheritdoc IDataRegistry
    function setRevenueSplit(uint256 datasetId, uint16 ownerShareBps) external {
        _checkOwner(datasetId);
        _checkShare(ownerShareBps);
        Head storage head = _heads[datasetId];
        head.ownerShareBps = ownerShareBps;
        head.updatedAt = uint40(block.timestamp);
        emit RevenueSplitChanged(datasetId, ownerShareBps);
    }

    /// @inheritdoc IDataRegistry
    function setExecutor(uint256 datasetId, address executor, bool allowed) external {
        _checkOwner(datasetId);
        if (executor == address(0)) revert DataRegistryZeroExecutor();
        uint32 epoch = _heads[datasetId].ownerEpoch;
        _executors[datasetId][epoch][executor] = allowed;
        emit ExecutorSet(datasetId, executor, epoch, allowed);
    }

    /// @notice Sets the base of `tokenURI` (DEFAULT_ADMIN_ROLE), e.g. the catalog's metadata route.
    function setBaseURI(string calldata baseURI) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _baseTokenURI = baseURI;
        emit BaseURIChanged(baseURI);
    }

    /// @inheritdoc IDataRegistry
    function headOf(uint256 datasetId) external view returns (Head memory) {
        _checkExists(datasetId);
        return _heads[datasetId];
    }

    /// @inheritdoc IDataRegistry
    function versionOf(uint256 datasetId, uint32 version)
        external
        view
        returns (StoredVersion memory)
    {
        _checkVersionExists(datasetId, version);
        return _versions[datasetId][version];
    }

    /// @inheritdoc IDataRegistry
    function matchesDescriptor(uint256 datasetId, uint32 version, Version calldata claimed)
        external
        view
        returns (bool)
    {
        _checkVersionExists(datasetId, version);
        StoredVersion storage stored = _versions[datasetId][version];
        return stored.commitment == claimed.commitment
            && stored.descriptorHash == _descriptorHash(claimed);
    }

    /// @inheritdoc IDataRegistry
    function ownerEpochOf(uint256 datasetId) external view returns (uint32) {
        _checkExists(datasetId);
        return _heads[datasetId].ownerEpoch;
    }

    /// @inheritdoc IDataRegistry
    function isExecutor(uint256 datasetId, address executor) external view returns (bool) {
        _checkExists(datasetId);
        return _executors[datasetId][_heads[datasetId].ownerEpoch][executor];
    }

    /// @inheritdoc IDataRegistry
    function usageContext(uint256 datasetId, address executor)
        external
        view
        returns (UsageContext memory ctx)
    {
        ctx.head = _heads[datasetId];
        // Every registered dataset has a version (1 or later); datasets are never burnt. Slither
        // taints the whole head with the timestamps packed beside the version: a false positive.
        // slither-disable-next-line incorrect-equality,timestamp
        if (ctx.head.version == 0) revert DataRegistryUnknownDataset(datasetId);
        ctx.executorAllowed = _executors[datasetId][ctx.head.ownerEpoch][executor];
    }

    /// @inheritdoc IDataRegistry
    function verifyRecord(
        uint256 datasetId,
        uint32 version,
        bytes calldata encodedRow,
        bytes32[] calldata proof
    ) external view returns (bool) {
        _checkVersionExists(datasetId, version);
        bytes32 leaf = keccak256(bytes.concat(keccak256(encodedRow)));
        return MerkleProof.verifyCalldata(proof, _versions[datasetId][version].commitment, leaf);
    }

    /// @inheritdoc IDataRegistry
    function datasetCount() external view returns (uint256) {
        return _lastId;
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, AccessControl, IERC165)
        returns (bool)
    {
        return
            interfaceId == type(IDataRegistry).interfaceId || super.supportsInterface(interfaceId);
    }

    /// @dev A transfer (not a mint) starts a new ownership epoch; see the contract's notes.
    function _update(address to, uint256 tokenId, address auth)
        internal
        override
        returns (address)
    {
        address from = super._update(to, tokenId, auth);
        if (from != address(0) && to != address(0) && from != to) {
            Head storage head = _heads[tokenId];
            uint32 epoch = head.ownerEpoch + 1;
            head.ownerEpoch = epoch;
            emit OwnerEpochStarted(tokenId, to, epoch);
        }
        return from;
    }

    function _baseURI() internal view override returns (string memory) {
        return _baseTokenURI;
    }

    function _checkOwner(uint256 datasetId) private view {
        address owner = _ownerOf(datasetId);
        if (owner == address(0)) revert DataRegistryUnknownDataset(datasetId);
        if (owner != msg.sender) revert DataRegistryNotOwner(datasetId, msg.sender, owner);
    }

    function _checkExists(uint256 datasetId) private view {
        // The head, not the ERC-721 owner slot: callers read the head next, so it is one cold read.
        // slither-disable-next-line incorrect-equality,timestamp
        if (_heads[datasetId].version == 0) revert DataRegistryUnknownDataset(datasetId);
    }

    function _checkVersionExists(uint256 datasetId, uint32 version) private view {
        _checkExists(datasetId);
        // slither-disable-next-line timestamp
        if (version == 0 || version > _heads[datasetId].version) {
            revert DataRegistryUnknownVersion(datasetId, version);
        }
    }

    function _stored(Version calldata version) private pure returns (StoredVersion memory) {
        return
            StoredVersion({
                commitment: version.commitment, descriptorHash: _descriptorHash(version)
            });
    }

    function _descriptorHash(Version calldata version) private pure returns (bytes32) {
        return
            keccak256(
                abi.encode(version.contributorsRoot, version.schemaHash, version.metadataHash)
            );
    }

    function _checkVersion(Version calldata version) private pure {
        if (version.commitment == bytes32(0)) revert DataRegistryZeroHash("commitment");
        if (version.schemaHash == bytes32(0)) revert DataRegistryZeroHash("schemaHash");
        if (version.contributorsRoot == bytes32(0)) {
            revert DataRegistryZeroHash("contributorsRoot");
        }
        if (version.metadataHash == bytes32(0)) revert DataRegistryZeroHash("metadataHash");
    }

    function _checkShare(uint16 ownerShareBps) private pure {
        if (ownerShareBps > _BPS) revert DataRegistryInvalidShare(ownerShareBps);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";

/// @title IDataRegistry
/// @notice Ownership of governed datasets: one ERC-721 "data asset" per dataset, with its versioned
/// commitments, revenue split and the executors its owner allows to compute on it.
/// @dev Versions live inside one token: version 1 is written by `register`, every later version by
/// `publishVersion` and links the one before it (version n-1). Ownership is the token: a transfer
/// starts a new ownership epoch, which ends every grant and executor approval of the previous owner.
interface IDataRegistry is IERC721 {
    /// @notice The commitments of one version of a dataset.
    /// @param commitment Merkle root (OpenZeppelin StandardMerkleTree) over the canonical rows.
    /// @param contributorsRoot Commitment to the contributor table (contributor id to payout address).
    /// @param schemaHash Hash of the canonical schema the rows conform to.
    /// @param metadataHash Hash of the canonical FAIR metadata document.
    struct Version {
        bytes32 commitment;
        bytes32 contributorsRoot;
        bytes32 schemaHash;
        bytes32 metadataHash;
    }

    /// @notice What is stored of a version: two slots instead of four keep `register` cheap. The
    /// other hashes are bound by `descriptorHash` and appear in full in the events.
    /// @param commitment Merkle root over the canonical rows (checked on chain by `verifyRecord`).
    /// @param descriptorHash `keccak256(abi.encode(contributorsRoot, schemaHash, metadataHash))`.
    struct StoredVersion {
        bytes32 commitment;
        bytes32 descriptorHash;
    }

    /// @notice The mutable head of a dataset, packed into one storage slot.
    /// @param version Latest version number (1-based).
    /// @param ownerEpoch Increases on every transfer; grants and executors are bound to one epoch.
    /// @param ownerShareBps Owner's share of revenue in basis points; the rest is the contributor pool.
    /// @param registeredAt Block timestamp of registration.
    /// @param updatedAt Block timestamp of the latest change to the version or split.
    struct Head {
        uint32 version;
        uint32 ownerEpoch;
        uint16 ownerShareBps;
        uint40 registeredAt;
        uint40 updatedAt;
    }

    /// @notice What recording a use needs about a dataset, read in one call.
    /// @param head The dataset head.
    /// @param executorAllowed Whether the executor asked about is allowed in the current epoch.
    struct UsageContext {
        Head head;
        bool executorAllowed;
    }

    /// @notice The dataset does not exist.
    error DataRegistryUnknownDataset(uint256 datasetId);
    /// @notice The caller is not the dataset's current owner.
    error DataRegistryNotOwner(uint256 datasetId, address caller, address owner);
    /// @notice A version field that must be set is zero.
    error DataRegistryZeroHash(string field);
    /// @notice A share above 10,000 basis points.
    error DataRegistryInvalidShare(uint256 ownerShareBps);
    /// @notice The version asked for was never published.
    error DataRegistryUnknownVersion(uint256 datasetId, uint32 version);
    /// @notice The executor address is zero.
    error DataRegistryZeroExecutor();
    /// @notice A new version repeats the latest commitment.
    error DataRegistryUnchangedCommitment(uint256 datasetId, bytes32 commitment);

    /// @notice A dataset was registered and its data asset minted to `owner`.
    event DatasetRegistered(
        uint256 indexed datasetId,
        address indexed owner,
        bytes32 commitment,
        bytes32 contributorsRoot,
        bytes32 schemaHash,
        bytes32 metadataHash,
        uint16 ownerShareBps,
        string metadataURI
    );
    /// @notice Version `version` of a dataset was published; it links version `version - 1`.
    event DatasetVersionPublished(
        uint256 indexed datasetId,
        uint32 indexed version,
        bytes32 commitment,
        bytes32 contributorsRoot,
        bytes32 schemaHash,
        bytes32 metadataHash,
        bytes32 previousCommitment,
        string metadataURI
    );
    /// @notice The owner changed the revenue split of a dataset.
    event RevenueSplitChanged(uint256 indexed datasetId, uint16 ownerShareBps);
    /// @notice The owner allowed or disallowed an executor for the current ownership epoch.
    event ExecutorSet(
        uint256 indexed datasetId, address indexed executor, uint32 ownerEpoch, bool allowed
    );
    /// @notice The dataset changed hands; earlier grants and executor approvals have lapsed.
    event OwnerEpochStarted(uint256 indexed datasetId, address indexed owner, uint32 ownerEpoch);
    /// @notice The admin changed the base of `tokenURI`.
    event BaseURIChanged(string baseURI);

    /// @notice Registers a dataset (version 1) and mints its data asset to the caller.
    /// @param version The commitments of version 1; all four hashes must be non-zero.
    /// @param ownerShareBps The owner's revenue share in basis points (at most 10,000).
    /// @param metadataURI Where the FAIR metadata document lives (emitted, not stored).
    /// @return datasetId The new dataset id (= token id), counting from 1.
    function register(Version calldata version, uint16 ownerShareBps, string calldata metadataURI)
        external
        returns (uint256 datasetId);

    /// @notice Publishes the next version of a dataset the caller owns.
    /// @return newVersion The number of the version just published.
    function publishVersion(
        uint256 datasetId,
        Version calldata version,
        string calldata metadataURI
    ) external returns (uint32 newVersion);

    /// @notice Sets the owner's share of future revenue of a dataset the caller owns.
    function setRevenueSplit(uint256 datasetId, uint16 ownerShareBps) external;

    /// @notice Allows or disallows `executor` to record computations on a dataset the caller owns.
    /// @dev The approval belongs to the current ownership epoch and lapses on transfer.
    function setExecutor(uint256 datasetId, address executor, bool allowed) external;

    /// @notice The head of a dataset. Reverts with `DataRegistryUnknownDataset` if none.
    function headOf(uint256 datasetId) external view returns (Head memory);

    /// @notice What is stored of one version. Reverts for an unknown dataset or version.
    function versionOf(uint256 datasetId, uint32 version)
        external
        view
        returns (StoredVersion memory);

    /// @notice Whether the contributor root, schema hash and metadata hash are those of a version.
    function matchesDescriptor(uint256 datasetId, uint32 version, Version calldata claimed)
        external
        view
        returns (bool);

    /// @notice The current ownership epoch of a dataset. Reverts for an unknown dataset.
    function ownerEpochOf(uint256 datasetId) external view returns (uint32);

    /// @notice Whether `executor` may record computations on the dataset in its current epoch.
    function isExecutor(uint256 datasetId, address executor) external view returns (bool);

    /// @notice What recording a use needs in one call. Reverts for an unknown dataset.
    function usageContext(uint256 datasetId, address executor)
        external
        view
        returns (UsageContext memory);

    /// @notice Checks a record's inclusion in a version's commitment (StandardMerkleTree).
    /// @param encodedRow The row's ABI encoding (`abi.encode` of its canonical values); the leaf
    /// is computed here as `keccak256(bytes.concat(keccak256(encodedRow)))`, so an inner node of
    /// the tree can never pass for a record.
    function verifyRecord(
        uint256 datasetId,
        uint32 version,
        bytes calldata encodedRow,
        bytes32[] calldata proof
    ) external view returns (bool);

    /// @notice Number of datasets registered so far (the highest dataset id).
    function datasetCount() external view returns (uint256);
}

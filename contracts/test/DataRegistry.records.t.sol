// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IDataRegistry} from "../src/interfaces/IDataRegistry.sol";
import {DataRegistryBase} from "./DataRegistry.t.sol";

/// @notice DataRegistry: what a version commits to, `matchesDescriptor` and `verifyRecord`.
contract DataRegistryRecordsTest is DataRegistryBase {
    /* ---------------------------- matchesDescriptor ---------------------------- */

    function test_matchesDescriptor_BindsEveryField() public {
        uint256 id = _reg(owner, "v1", 7000);
        IDataRegistry.Version memory v = _version("v1");
        assertTrue(registry.matchesDescriptor(id, 1, v), "exact version");
        IDataRegistry.Version memory w = _version("v1");
        w.commitment = keccak256("other rows");
        assertTrue(!registry.matchesDescriptor(id, 1, w), "commitment");
        w = _version("v1");
        w.contributorsRoot = keccak256("other contributors");
        assertTrue(!registry.matchesDescriptor(id, 1, w), "contributorsRoot");
        w = _version("v1");
        w.schemaHash = keccak256("other schema");
        assertTrue(!registry.matchesDescriptor(id, 1, w), "schemaHash");
        w = _version("v1");
        w.metadataHash = keccak256("other metadata");
        assertTrue(!registry.matchesDescriptor(id, 1, w), "metadataHash");
        // Fields are not interchangeable.
        w = _version("v1");
        (w.schemaHash, w.metadataHash) = (v.metadataHash, v.schemaHash);
        assertTrue(!registry.matchesDescriptor(id, 1, w), "swapped fields");
    }

    function test_matchesDescriptor_ChecksTheRequestedVersion() public {
        uint256 id = _reg(owner, "v1", 7000);
        vm.prank(owner);
        registry.publishVersion(id, _version("v2"), "");
        assertTrue(registry.matchesDescriptor(id, 2, _version("v2")), "v2 at 2");
        assertTrue(!registry.matchesDescriptor(id, 2, _version("v1")), "v1 at 2");
        assertTrue(registry.matchesDescriptor(id, 1, _version("v1")), "v1 at 1");
    }

    function test_matchesDescriptor_Revert_WhenUnknownVersion() public {
        uint256 id = _reg(owner, "v1", 7000);
        vm.expectRevert(
            abi.encodeWithSelector(IDataRegistry.DataRegistryUnknownVersion.selector, id, 2)
        );
        registry.matchesDescriptor(id, 2, _version("v1"));
    }

    function test_matchesDescriptor_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(4));
        registry.matchesDescriptor(4, 1, _version("v1"));
    }

    /* ------------------------------- verifyRecord ------------------------------ */

    // A 4-leaf OpenZeppelin StandardMerkleTree over ["uint256", "bytes32"] rows
    // (i, keccak256("row-i")), i = 0..3, computed off-chain with the StandardMerkleTree algorithm.
    bytes32 internal constant ROOT =
        0x7bebda6400b425abe77eec37ece35dad2ef9ed6b05c075cb209c632f017ef998;
    bytes32 internal constant L0 =
        0x645acaa603fe2afef9716749109cefe972f8cedcf2dcb1bd13ddf496d4f0e636;
    bytes32 internal constant L1 =
        0xb7a407daa07b42eb08c493dd2e357bb010bdf55caf8a2f40a0044f71a2c45e33;
    bytes32 internal constant L2 =
        0x918e034b5a6e45d643b11db29705ff7006c1d83d14d346350f6576b2a7f20249;
    bytes32 internal constant L3 =
        0x48689013cae4228778a90b85530e189b71550d87bff623488c4296537e27b2a5;
    bytes32 internal constant N03 =
        0x1f1e6b458dd08a8763beee2217bfc679c6738ca3a4e90f86a4294b7a822fbd5b;
    bytes32 internal constant N12 =
        0x756d1e0c8658615d57a3ed141b24f37461e12f4aaeeceab25a3f867b8383c2f8;

    /// @dev The ABI encoding of row `i`: what `verifyRecord` is given.
    function _row(uint256 i, string memory row) internal pure returns (bytes memory) {
        return abi.encode(i, keccak256(bytes(row)));
    }

    function _leaf(uint256 i, string memory row) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(_row(i, row))));
    }

    function _pair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    /// @dev The 64 bytes an inner node is the hash of (its children, sorted).
    function _pairRow(bytes32 a, bytes32 b) internal pure returns (bytes memory) {
        return a < b ? abi.encode(a, b) : abi.encode(b, a);
    }

    function _proof(bytes32 a, bytes32 b) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](2);
        p[0] = a;
        p[1] = b;
    }

    function _proof(bytes32 a) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](1);
        p[0] = a;
    }

    function _registerTree() internal returns (uint256 id) {
        IDataRegistry.Version memory v = _version("tree");
        v.commitment = ROOT;
        vm.prank(owner);
        id = registry.register(v, 7000, "");
    }

    function test_verifyRecord_AcceptsStandardMerkleTreeProofs() public {
        // Leaves are the double-hashed ABI encoding of each row.
        assertEq(_leaf(0, "row-0"), L0, "leaf 0");
        assertEq(_leaf(1, "row-1"), L1, "leaf 1");
        assertEq(_leaf(2, "row-2"), L2, "leaf 2");
        assertEq(_leaf(3, "row-3"), L3, "leaf 3");
        // Sorted-pair hashing reproduces the root.
        assertEq(_pair(L0, L3), N03, "node 0-3");
        assertEq(_pair(L1, L2), N12, "node 1-2");
        assertEq(_pair(N03, N12), ROOT, "root");

        uint256 id = _registerTree();
        assertTrue(registry.verifyRecord(id, 1, _row(0, "row-0"), _proof(L3, N12)), "row 0");
        assertTrue(registry.verifyRecord(id, 1, _row(1, "row-1"), _proof(L2, N03)), "row 1");
        assertTrue(registry.verifyRecord(id, 1, _row(2, "row-2"), _proof(L1, N03)), "row 2");
        assertTrue(registry.verifyRecord(id, 1, _row(3, "row-3"), _proof(L0, N12)), "row 3");
    }

    function test_verifyRecord_RejectsWrongRowOrProof() public {
        uint256 id = _registerTree();
        assertTrue(!registry.verifyRecord(id, 1, _row(0, "row-X"), _proof(L3, N12)), "tampered row");
        assertTrue(
            !registry.verifyRecord(id, 1, _row(1, "row-0"), _proof(L3, N12)), "tampered index"
        );
        assertTrue(
            !registry.verifyRecord(id, 1, _row(0, "row-0"), _proof(L2, N12)), "wrong sibling"
        );
        assertTrue(!registry.verifyRecord(id, 1, _row(0, "row-0"), new bytes32[](0)), "empty proof");
        assertTrue(!registry.verifyRecord(id, 1, "", _proof(L3, N12)), "empty row");
        // The row is hashed by the registry: a leaf, or a single-hashed leaf, given as the row is
        // not a record of the tree.
        assertTrue(!registry.verifyRecord(id, 1, abi.encode(L0), _proof(L3, N12)), "leaf as row");
        bytes32 single = keccak256(_row(0, "row-0"));
        assertTrue(
            !registry.verifyRecord(id, 1, abi.encode(single), _proof(L3, N12)), "single hash"
        );
    }

    /// @dev With a caller-supplied leaf, an inner node and the rest of its path would prove a
    /// "record" that is no row of the dataset (a second preimage). The registry hashes the row
    /// itself, so neither the node nor its children's pair, given as the row, is accepted.
    function test_verifyRecord_RejectsInnerNodeAsRow() public {
        uint256 id = _registerTree();
        // The inner node N03 with the proof [N12] does reach the root...
        assertTrue(MerkleProof.verify(_proof(N12), ROOT, N03), "inner node reaches the root");
        // ...but passed as a row, in any form, it is refused.
        bytes memory pairRow = _pairRow(L0, L3);
        assertEq(keccak256(pairRow), N03, "pair preimage of the node");
        assertTrue(!registry.verifyRecord(id, 1, pairRow, _proof(N12)), "node's pair as row");
        assertTrue(!registry.verifyRecord(id, 1, abi.encode(N03), _proof(N12)), "node as row");
        assertTrue(
            !registry.verifyRecord(id, 1, abi.encodePacked(N03), _proof(N12)), "packed node as row"
        );
        // The root itself, with an empty proof, is not a record either.
        assertTrue(
            !registry.verifyRecord(id, 1, _pairRow(N03, N12), new bytes32[](0)), "root's pair"
        );
        assertTrue(!registry.verifyRecord(id, 1, abi.encode(ROOT), new bytes32[](0)), "root");
    }

    /// @dev Any row other than row 0's encoding fails with row 0's proof.
    function testFuzz_verifyRecord_RejectsOtherRows(bytes memory row) public {
        vm.assume(keccak256(row) != keccak256(_row(0, "row-0")));
        uint256 id = _registerTree();
        assertTrue(!registry.verifyRecord(id, 1, row, _proof(L3, N12)), "other row");
    }

    function test_verifyRecord_ChecksTheRequestedVersion() public {
        uint256 id = _registerTree();
        vm.prank(owner);
        registry.publishVersion(id, _version("v2"), "");
        assertTrue(
            !registry.verifyRecord(id, 2, _row(0, "row-0"), _proof(L3, N12)), "not in version 2"
        );
        assertTrue(
            registry.verifyRecord(id, 1, _row(0, "row-0"), _proof(L3, N12)), "still in version 1"
        );
    }

    function test_verifyRecord_Revert_WhenUnknownVersion() public {
        uint256 id = _registerTree();
        vm.expectRevert(
            abi.encodeWithSelector(IDataRegistry.DataRegistryUnknownVersion.selector, id, 2)
        );
        registry.verifyRecord(id, 2, _row(0, "row-0"), _proof(L3, N12));
    }

    function test_verifyRecord_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(9));
        registry.verifyRecord(9, 1, _row(0, "row-0"), _proof(L3, N12));
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessGrants} from "../../contracts/src/interfaces/IAccessGrants.sol";
import {IUsageLedger} from "../../contracts/src/interfaces/IUsageLedger.sol";
import {LedgerTestBase} from "../../contracts/test/utils/LedgerTestBase.sol";

/// @notice Gas of each user-facing operation in a realistic warm state: each bench does the
/// operation once cold, then ROUNDS more times warm; `make bench-gas` takes the median of the calls
/// from forge's gas report. Run with FOUNDRY_TEST=benchmarks/gas (see the Makefile).
contract GasBench is LedgerTestBase {
    uint256 internal constant ROUNDS = 10;
    /// Depth of a proof in a tree of 1,000,000 leaves: ceil(log2(1e6)).
    uint256 internal constant MILLION_LEAF_DEPTH = 20;

    function testGas_register() public {
        vm.startPrank(owner);
        for (uint256 i = 0; i <= ROUNDS; ++i) {
            registry.register(_version(bytes32(i + 1)), 7000, "https://hospital-a.example/meta");
        }
        vm.stopPrank();
    }

    function testGas_grant() public {
        uint256 id = _register(owner);
        for (uint256 i = 0; i <= ROUNDS; ++i) {
            _issue(_terms(id, owner));
            IAccessGrants.Grant memory g = _terms(id, owner);
            grants.issueWithSig(g, _sign(OWNER_KEY, g));
        }
    }

    function testGas_revoke() public {
        uint256 id = _register(owner);
        IAccessGrants.Grant[] memory list = new IAccessGrants.Grant[](ROUNDS + 1);
        for (uint256 i = 0; i <= ROUNDS; ++i) {
            list[i] = _terms(id, owner);
            _issue(list[i]);
        }
        vm.startPrank(owner);
        for (uint256 i = 0; i <= ROUNDS; ++i) {
            grants.revoke(list[i]);
        }
        vm.stopPrank();
    }

    function testGas_recordUsage() public {
        uint256 id = _register(owner);
        IAccessGrants.Grant memory g = _terms(id, owner);
        g.maxUses = uint32(ROUNDS + 1);
        bytes32 grantId = _issue(g);
        for (uint256 i = 0; i <= ROUNDS; ++i) {
            bytes32 jobId = keccak256(abi.encode("job", i));
            _escrow(jobId, grantId, g, 1);
            vm.prank(executor);
            usage.recordUsage(_job(jobId), _use(g, 1, 50_000));
        }
    }

    function testGas_anchorBatch() public {
        vm.startPrank(executor);
        for (uint256 i = 0; i <= ROUNDS; ++i) {
            // The batch size is a parameter only: the cost does not depend on it.
            usage.anchorBatch(keccak256(abi.encode("batch", i)), uint32(10 ** (i % 7)));
        }
        vm.stopPrank();
    }

    /// @dev Captures `n` paid jobs so the vault has ETH revenue to distribute.
    function _captureRevenue(uint256 n) internal {
        uint256 id = _register(owner);
        IAccessGrants.Grant memory g = _terms(id, owner);
        g.maxUses = uint32(n);
        g.pricePerUse = 1 ether;
        bytes32 grantId = _issue(g);
        for (uint256 i = 0; i < n; ++i) {
            bytes32 jobId = keccak256(abi.encode("paid", i));
            _escrow(jobId, grantId, g, 1);
            vm.prank(executor);
            usage.recordUsage(_job(jobId), _use(g, 1, 0));
        }
    }

    function testGas_publishEpoch() public {
        _captureRevenue(1);
        vm.startPrank(settler);
        for (uint256 i = 0; i <= ROUNDS; ++i) {
            // The tree's size is off chain: one root and one total per epoch, whatever the count.
            vault.publishEpoch(address(0), uint64(i + 1), keccak256(abi.encode("root", i)), i);
        }
        vm.stopPrank();
    }

    function testGas_claimFromMillionLeafTree() public {
        _captureRevenue(ROUNDS + 1);
        for (uint256 i = 0; i <= ROUNDS; ++i) {
            // A contributor's wallet that already holds ETH, as a real payee's would.
            address account = address(uint160(0xC0FFEE00 + i));
            vm.deal(account, 0.1 ether);
            uint256 cumulative = 0.5 ether;
            (bytes32 root, bytes32[] memory proof) = _millionLeafProof(account, cumulative, i);
            vm.prank(settler);
            vault.publishEpoch(address(0), uint64(i + 1), root, (i + 1) * cumulative);
            vault.claim(address(0), account, cumulative, proof);
        }
    }

    /// @dev A proof of depth 20 (a tree of 2^20 >= 1,000,000 leaves) for one leaf: the siblings
    /// stand for the rest of the tree, and the root is hashed up exactly as OpenZeppelin's
    /// StandardMerkleTree and MerkleProof do (sorted pairs), so verification does the same work.
    function _millionLeafProof(address account, uint256 cumulative, uint256 salt)
        internal
        pure
        returns (bytes32 node, bytes32[] memory proof)
    {
        node = keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))));
        proof = new bytes32[](MILLION_LEAF_DEPTH);
        for (uint256 d = 0; d < MILLION_LEAF_DEPTH; ++d) {
            proof[d] = keccak256(abi.encode("sibling", salt, d));
            node = node < proof[d]
                ? keccak256(abi.encode(node, proof[d]))
                : keccak256(abi.encode(proof[d], node));
        }
    }
}

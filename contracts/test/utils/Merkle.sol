// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Builds OpenZeppelin StandardMerkleTree trees of `(address account, uint256 cumulative)`
/// leaves in memory, with the library's exact layout, so tests can publish real roots and prove real
/// leaves.
/// @dev Mirrors `@openzeppelin/merkle-tree`: leaf = keccak256(bytes.concat(keccak256(abi.encode(
/// account, cumulative)))); leaves sorted by hash; `tree[len - 1 - i] = sorted[i]`; node `i` is the
/// hash of the sorted pair of its children `2i + 1` and `2i + 2`; a proof lists the siblings from the
/// leaf up to the root.
library Merkle {
    /// @notice The leaf of an entitlement, as `RevenueVault.claim` hashes it.
    function leaf(address account, uint256 cumulative) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(account, cumulative))));
    }

    /// @notice keccak256 of the sorted pair (OpenZeppelin's commutative hash).
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? keccak256(abi.encode(a, b)) : keccak256(abi.encode(b, a));
    }

    /// @notice The whole tree (root at index 0) over the entitlements `accounts[i] => amounts[i]`.
    function build(address[] memory accounts, uint256[] memory amounts)
        internal
        pure
        returns (bytes32[] memory tree)
    {
        uint256 n = accounts.length;
        require(n != 0 && n == amounts.length, "Merkle: bad leaves");
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            leaves[i] = leaf(accounts[i], amounts[i]);
        }
        _sort(leaves);
        tree = new bytes32[](2 * n - 1);
        for (uint256 i = 0; i < n; ++i) {
            tree[tree.length - 1 - i] = leaves[i];
        }
        for (uint256 i = tree.length - n; i > 0; --i) {
            tree[i - 1] = hashPair(tree[2 * i - 1], tree[2 * i]);
        }
    }

    /// @notice The root of a tree made by {build}.
    function root(bytes32[] memory tree) internal pure returns (bytes32) {
        return tree[0];
    }

    /// @notice The proof of the entitlement `account => cumulative` in `tree`.
    function proof(bytes32[] memory tree, address account, uint256 cumulative)
        internal
        pure
        returns (bytes32[] memory path)
    {
        bytes32 target = leaf(account, cumulative);
        uint256 index = type(uint256).max;
        for (uint256 i = tree.length / 2; i < tree.length; ++i) {
            if (tree[i] == target) {
                index = i;
                break;
            }
        }
        require(index != type(uint256).max, "Merkle: leaf not in tree");
        path = new bytes32[](256);
        uint256 len;
        while (index > 0) {
            path[len++] = tree[index % 2 == 1 ? index + 1 : index - 1];
            index = (index - 1) / 2;
        }
        assembly {
            mstore(path, len)
        }
    }

    /// @notice One-call helper: root and the proof of the entitlement at `index`.
    function rootAndProof(address[] memory accounts, uint256[] memory amounts, uint256 index)
        internal
        pure
        returns (bytes32, bytes32[] memory)
    {
        bytes32[] memory tree = build(accounts, amounts);
        return (tree[0], proof(tree, accounts[index], amounts[index]));
    }

    function _sort(bytes32[] memory a) private pure {
        for (uint256 i = 1; i < a.length; ++i) {
            bytes32 key = a[i];
            uint256 j = i;
            while (j > 0 && a[j - 1] > key) {
                a[j] = a[j - 1];
                --j;
            }
            a[j] = key;
        }
    }
}

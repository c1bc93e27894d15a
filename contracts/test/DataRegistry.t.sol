// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Metadata} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Metadata.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

import {IAccessGrants} from "../src/interfaces/IAccessGrants.sol";
import {IDataRegistry} from "../src/interfaces/IDataRegistry.sol";
import {LedgerTestBase} from "./utils/LedgerTestBase.sol";
import {MockWallet} from "./utils/Mocks.sol";

/// @notice Helpers shared by the DataRegistry suites.
abstract contract DataRegistryBase is LedgerTestBase {
    uint256 internal constant BPS = 10_000;

    function _reg(address who, bytes32 seed, uint16 share) internal returns (uint256 id) {
        vm.prank(who);
        id = registry.register(_version(seed), share, "ipfs://meta");
    }

    function _assertVersion(uint256 id, uint32 number, IDataRegistry.Version memory v)
        internal
        view
    {
        IDataRegistry.StoredVersion memory got = registry.versionOf(id, number);
        assertEq(got.commitment, v.commitment, "commitment");
        assertEq(got.descriptorHash, _descriptor(v), "descriptorHash");
        assertTrue(registry.matchesDescriptor(id, number, v), "matchesDescriptor");
    }

    /// @dev The documented descriptor hash, computed independently of the registry.
    function _descriptor(IDataRegistry.Version memory v) internal pure returns (bytes32) {
        return keccak256(abi.encode(v.contributorsRoot, v.schemaHash, v.metadataHash));
    }

    function _zeroHash(string memory field) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IDataRegistry.DataRegistryZeroHash.selector, field);
    }

    function _unknown(uint256 id) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IDataRegistry.DataRegistryUnknownDataset.selector, id);
    }

    function _notOwner(uint256 id, address caller, address holder)
        internal
        pure
        returns (bytes memory)
    {
        return
            abi.encodeWithSelector(IDataRegistry.DataRegistryNotOwner.selector, id, caller, holder);
    }
}

/// @notice DataRegistry: registration, versions, split, executors, owner epochs, views, token URI.
contract DataRegistryTest is DataRegistryBase {
    /* -------------------------------- register --------------------------------- */

    function test_constructor_SetsTokenAndAdmin() public view {
        assertEq(keccak256(bytes(registry.name())), keccak256("Ledger Data Asset"), "name");
        assertEq(keccak256(bytes(registry.symbol())), keccak256("DATA"), "symbol");
        assertTrue(registry.hasRole(registry.DEFAULT_ADMIN_ROLE(), admin), "admin");
        assertEq(registry.datasetCount(), 0, "no datasets");
    }

    function test_register_MintsVersionOne() public {
        IDataRegistry.Version memory v = _version("v1");
        vm.expectEmit(address(registry));
        emit IERC721.Transfer(address(0), owner, 1);
        vm.expectEmit(address(registry));
        emit IDataRegistry.DatasetRegistered(
            1,
            owner,
            v.commitment,
            v.contributorsRoot,
            v.schemaHash,
            v.metadataHash,
            7000,
            "ipfs://meta"
        );
        vm.prank(owner);
        uint256 id = registry.register(v, 7000, "ipfs://meta");
        assertEq(id, 1, "first id");
        assertEq(registry.datasetCount(), 1, "count");
        assertEq(registry.ownerOf(id), owner, "token owner");
        assertEq(registry.balanceOf(owner), 1, "balance");
        IDataRegistry.Head memory head = registry.headOf(id);
        assertEq(head.version, 1, "version");
        assertEq(head.ownerEpoch, 0, "epoch");
        assertEq(head.ownerShareBps, 7000, "share");
        assertEq(head.registeredAt, block.timestamp, "registeredAt");
        assertEq(head.updatedAt, block.timestamp, "updatedAt");
        _assertVersion(id, 1, v);
    }

    function test_register_IdsCountFromOne() public {
        assertEq(_reg(owner, "a", 0), 1, "id 1");
        assertEq(_reg(other, "b", 1), 2, "id 2");
        assertEq(_reg(owner, "c", 2), 3, "id 3");
        assertEq(registry.datasetCount(), 3, "count");
        assertEq(registry.ownerOf(2), other, "owner of 2");
        assertEq(registry.balanceOf(owner), 2, "owner balance");
        _assertVersion(2, 1, _version("b"));
    }

    function test_register_AcceptsShareBounds() public {
        uint256 a = _reg(owner, "a", 0);
        uint256 b = _reg(owner, "b", uint16(BPS));
        assertEq(registry.headOf(a).ownerShareBps, 0, "zero share");
        assertEq(registry.headOf(b).ownerShareBps, BPS, "full share");
    }

    function test_register_Revert_WhenZeroCommitment() public {
        IDataRegistry.Version memory v = _version("v");
        v.commitment = bytes32(0);
        vm.expectRevert(_zeroHash("commitment"));
        vm.prank(owner);
        registry.register(v, 7000, "");
    }

    function test_register_Revert_WhenZeroSchemaHash() public {
        IDataRegistry.Version memory v = _version("v");
        v.schemaHash = bytes32(0);
        vm.expectRevert(_zeroHash("schemaHash"));
        vm.prank(owner);
        registry.register(v, 7000, "");
    }

    function test_register_Revert_WhenZeroContributorsRoot() public {
        IDataRegistry.Version memory v = _version("v");
        v.contributorsRoot = bytes32(0);
        vm.expectRevert(_zeroHash("contributorsRoot"));
        vm.prank(owner);
        registry.register(v, 7000, "");
    }

    function test_register_Revert_WhenZeroMetadataHash() public {
        IDataRegistry.Version memory v = _version("v");
        v.metadataHash = bytes32(0);
        vm.expectRevert(_zeroHash("metadataHash"));
        vm.prank(owner);
        registry.register(v, 7000, "");
    }

    function test_register_Revert_WhenInvalidShare() public {
        vm.expectRevert(
            abi.encodeWithSelector(IDataRegistry.DataRegistryInvalidShare.selector, BPS + 1)
        );
        vm.prank(owner);
        registry.register(_version("v"), uint16(BPS + 1), "");
    }

    function testFuzz_register_Revert_WhenShareAboveBps(uint16 share) public {
        vm.assume(share > BPS);
        vm.expectRevert(
            abi.encodeWithSelector(IDataRegistry.DataRegistryInvalidShare.selector, share)
        );
        vm.prank(owner);
        registry.register(_version("v"), share, "");
        assertEq(registry.datasetCount(), 0, "nothing registered");
    }

    /* ------------------------------ publishVersion ----------------------------- */

    function test_publishVersion_LinksPreviousCommitment() public {
        uint256 id = _reg(owner, "v1", 7000);
        IDataRegistry.Version memory v1 = _version("v1");
        IDataRegistry.Version memory v2 = _version("v2");
        IDataRegistry.Version memory v3 = _version("v3");
        vm.warp(block.timestamp + 1 days);
        vm.expectEmit(address(registry));
        emit IDataRegistry.DatasetVersionPublished(
            id,
            2,
            v2.commitment,
            v2.contributorsRoot,
            v2.schemaHash,
            v2.metadataHash,
            v1.commitment,
            "ipfs://v2"
        );
        vm.prank(owner);
        assertEq(registry.publishVersion(id, v2, "ipfs://v2"), 2, "version 2");

        vm.expectEmit(address(registry));
        emit IDataRegistry.DatasetVersionPublished(
            id,
            3,
            v3.commitment,
            v3.contributorsRoot,
            v3.schemaHash,
            v3.metadataHash,
            v2.commitment,
            "ipfs://v3"
        );
        vm.prank(owner);
        assertEq(registry.publishVersion(id, v3, "ipfs://v3"), 3, "version 3");

        IDataRegistry.Head memory head = registry.headOf(id);
        assertEq(head.version, 3, "head version");
        assertEq(head.updatedAt, block.timestamp, "updatedAt");
        assertEq(head.registeredAt, block.timestamp - 1 days, "registeredAt unchanged");
        _assertVersion(id, 1, v1);
        _assertVersion(id, 2, v2);
        _assertVersion(id, 3, v3);
    }

    function test_publishVersion_Revert_WhenUnchangedCommitment() public {
        uint256 id = _reg(owner, "v1", 7000);
        IDataRegistry.Version memory v = _version("v2");
        v.commitment = _version("v1").commitment;
        vm.expectRevert(
            abi.encodeWithSelector(
                IDataRegistry.DataRegistryUnchangedCommitment.selector, id, v.commitment
            )
        );
        vm.prank(owner);
        registry.publishVersion(id, v, "");
    }

    function test_publishVersion_Revert_WhenNotOwner() public {
        uint256 id = _reg(owner, "v1", 7000);
        vm.expectRevert(_notOwner(id, other, owner));
        vm.prank(other);
        registry.publishVersion(id, _version("v2"), "");
    }

    function test_publishVersion_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(42));
        vm.prank(owner);
        registry.publishVersion(42, _version("v2"), "");
    }

    function test_publishVersion_Revert_WhenZeroHash() public {
        uint256 id = _reg(owner, "v1", 7000);
        IDataRegistry.Version memory v = _version("v2");
        v.schemaHash = bytes32(0);
        vm.expectRevert(_zeroHash("schemaHash"));
        vm.prank(owner);
        registry.publishVersion(id, v, "");
    }

    /* ----------------------------- setRevenueSplit ----------------------------- */

    function test_setRevenueSplit_UpdatesShare() public {
        uint256 id = _reg(owner, "v1", 7000);
        vm.warp(block.timestamp + 1 hours);
        vm.expectEmit(address(registry));
        emit IDataRegistry.RevenueSplitChanged(id, 2500);
        vm.prank(owner);
        registry.setRevenueSplit(id, 2500);
        IDataRegistry.Head memory head = registry.headOf(id);
        assertEq(head.ownerShareBps, 2500, "share");
        assertEq(head.updatedAt, block.timestamp, "updatedAt");
        assertEq(head.version, 1, "version unchanged");
    }

    function test_setRevenueSplit_Revert_WhenInvalidShare() public {
        uint256 id = _reg(owner, "v1", 7000);
        vm.expectRevert(
            abi.encodeWithSelector(IDataRegistry.DataRegistryInvalidShare.selector, BPS + 1)
        );
        vm.prank(owner);
        registry.setRevenueSplit(id, uint16(BPS + 1));
    }

    function test_setRevenueSplit_Revert_WhenNotOwner() public {
        uint256 id = _reg(owner, "v1", 7000);
        vm.expectRevert(_notOwner(id, admin, owner));
        vm.prank(admin);
        registry.setRevenueSplit(id, 1);
    }

    function test_setRevenueSplit_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(1));
        vm.prank(owner);
        registry.setRevenueSplit(1, 1);
    }

    /* ------------------------------- setExecutor ------------------------------- */

    function test_setExecutor_AllowsAndDisallows() public {
        uint256 id = _reg(owner, "v1", 7000);
        assertTrue(!registry.isExecutor(id, executor), "not yet");
        vm.expectEmit(address(registry));
        emit IDataRegistry.ExecutorSet(id, executor, 0, true);
        vm.prank(owner);
        registry.setExecutor(id, executor, true);
        assertTrue(registry.isExecutor(id, executor), "allowed");
        assertTrue(!registry.isExecutor(id, other), "others not");

        vm.expectEmit(address(registry));
        emit IDataRegistry.ExecutorSet(id, executor, 0, false);
        vm.prank(owner);
        registry.setExecutor(id, executor, false);
        assertTrue(!registry.isExecutor(id, executor), "disallowed");
    }

    function test_setExecutor_Revert_WhenZeroExecutor() public {
        uint256 id = _reg(owner, "v1", 7000);
        vm.expectRevert(IDataRegistry.DataRegistryZeroExecutor.selector);
        vm.prank(owner);
        registry.setExecutor(id, address(0), true);
    }

    function test_setExecutor_Revert_WhenNotOwner() public {
        uint256 id = _reg(owner, "v1", 7000);
        vm.expectRevert(_notOwner(id, executor, owner));
        vm.prank(executor);
        registry.setExecutor(id, executor, true);
    }

    function test_setExecutor_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(3));
        vm.prank(owner);
        registry.setExecutor(3, executor, true);
    }

    /* ------------------------ transfers and owner epochs ----------------------- */

    function test_transferFrom_StartsEpochAndLapsesExecutor() public {
        uint256 id = _register(owner);
        assertTrue(registry.isExecutor(id, executor), "allowed in epoch 0");
        vm.expectEmit(address(registry));
        emit IERC721.Transfer(owner, other, id);
        vm.expectEmit(address(registry));
        emit IDataRegistry.OwnerEpochStarted(id, other, 1);
        vm.prank(owner);
        registry.transferFrom(owner, other, id);
        assertEq(registry.headOf(id).ownerEpoch, 1, "epoch 1");
        assertTrue(!registry.isExecutor(id, executor), "approval lapsed");
        assertEq(registry.ownerOf(id), other, "new owner");
        assertEq(registry.ownerEpochOf(id), 1, "ownerEpochOf");
        IDataRegistry.UsageContext memory ctx = registry.usageContext(id, executor);
        assertEq(ctx.head.ownerEpoch, 1, "context epoch");
        assertTrue(!ctx.executorAllowed, "context executor lapsed");

        // The former owner can no longer manage it; the new owner approves in epoch 1.
        vm.expectRevert(_notOwner(id, owner, other));
        vm.prank(owner);
        registry.setExecutor(id, executor, true);
        vm.expectEmit(address(registry));
        emit IDataRegistry.ExecutorSet(id, executor, 1, true);
        vm.prank(other);
        registry.setExecutor(id, executor, true);
        assertTrue(registry.isExecutor(id, executor), "allowed in epoch 1");
    }

    function test_safeTransferFrom_StartsEpochForWallet() public {
        uint256 id = _register(owner);
        MockWallet wallet = new MockWallet(other);
        vm.expectEmit(address(registry));
        emit IDataRegistry.OwnerEpochStarted(id, address(wallet), 1);
        vm.prank(owner);
        registry.safeTransferFrom(owner, address(wallet), id);
        vm.expectEmit(address(registry));
        emit IDataRegistry.OwnerEpochStarted(id, owner, 2);
        vm.prank(other);
        wallet.execute(
            address(registry),
            abi.encodeWithSignature(
                "safeTransferFrom(address,address,uint256,bytes)", address(wallet), owner, id, ""
            )
        );
        assertEq(registry.ownerOf(id), owner, "back to owner");
        assertEq(registry.headOf(id).ownerEpoch, 2, "epoch 2");
        // An approval from the owner's first epoch does not revive.
        assertTrue(!registry.isExecutor(id, executor), "epoch-0 approval stays lapsed");
    }

    function test_transferFrom_ToSelfKeepsEpoch() public {
        uint256 id = _register(owner);
        vm.prank(owner);
        registry.transferFrom(owner, owner, id);
        assertEq(registry.headOf(id).ownerEpoch, 0, "same epoch");
        assertTrue(registry.isExecutor(id, executor), "approval kept");
    }

    function test_transferFrom_LapsesEarlierGrants() public {
        uint256 id = _register(owner);
        IAccessGrants.Grant memory g = _terms(id, owner);
        bytes32 grantId = _issue(g);
        IAccessGrants.Use memory use = IAccessGrants.Use({
            consumer: consumer, algorithmHash: ALGO, purpose: PURPOSE, uses: 1, epsilon: 0
        });
        (bytes32 checked,) = grants.checkUse(g, use);
        assertEq(checked, grantId, "usable before transfer");
        vm.prank(owner);
        registry.transferFrom(owner, other, id);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsOwnerChanged.selector, grantId, 0, 1)
        );
        grants.checkUse(g, use);
    }

    /* ----------------------------------- views --------------------------------- */

    function test_headOf_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(0));
        registry.headOf(0);
        _reg(owner, "v1", 7000);
        vm.expectRevert(_unknown(2));
        registry.headOf(2);
    }

    function test_versionOf_Revert_WhenUnknownVersion() public {
        uint256 id = _reg(owner, "v1", 7000);
        vm.expectRevert(
            abi.encodeWithSelector(IDataRegistry.DataRegistryUnknownVersion.selector, id, 0)
        );
        registry.versionOf(id, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IDataRegistry.DataRegistryUnknownVersion.selector, id, 2)
        );
        registry.versionOf(id, 2);
    }

    function test_versionOf_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(5));
        registry.versionOf(5, 1);
    }

    function test_isExecutor_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(5));
        registry.isExecutor(5, executor);
    }

    function test_usageContext_ReturnsOwnerHeadAndExecutor() public {
        uint256 id = _register(owner);
        vm.prank(owner);
        registry.publishVersion(id, _version("v2"), "");
        IDataRegistry.UsageContext memory ctx = registry.usageContext(id, executor);
        assertEq(ctx.head.version, 2, "version");
        assertEq(ctx.head.ownerEpoch, 0, "epoch");
        assertEq(ctx.head.ownerShareBps, 7000, "share");
        assertEq(ctx.head.registeredAt, block.timestamp, "registeredAt");
        assertTrue(ctx.executorAllowed, "executor allowed");
        assertTrue(!registry.usageContext(id, other).executorAllowed, "other not allowed");
    }

    function test_ownerEpochOf_CountsTransfers() public {
        uint256 id = _register(owner);
        assertEq(registry.ownerEpochOf(id), 0, "epoch 0 at registration");
        vm.prank(owner);
        registry.transferFrom(owner, other, id);
        assertEq(registry.ownerEpochOf(id), 1, "epoch 1");
        vm.prank(other);
        registry.transferFrom(other, owner, id);
        assertEq(registry.ownerEpochOf(id), 2, "epoch 2");
        assertEq(registry.headOf(id).ownerEpoch, 2, "head agrees");
    }

    function test_ownerEpochOf_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(1));
        registry.ownerEpochOf(1);
    }

    function test_usageContext_Revert_WhenUnknownDataset() public {
        vm.expectRevert(_unknown(5));
        registry.usageContext(5, executor);
    }

    /* ------------------------- token URI and interfaces ------------------------ */

    function test_setBaseURI_SetsTokenURI() public {
        uint256 id = _reg(owner, "v1", 7000);
        assertEq(keccak256(bytes(registry.tokenURI(id))), keccak256(""), "empty without base");
        vm.expectEmit(address(registry));
        emit IDataRegistry.BaseURIChanged("https://catalog.example/datasets/");
        vm.prank(admin);
        registry.setBaseURI("https://catalog.example/datasets/");
        assertEq(
            keccak256(bytes(registry.tokenURI(id))),
            keccak256("https://catalog.example/datasets/1"),
            "tokenURI"
        );
    }

    function test_setBaseURI_Revert_WhenNotAdmin() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, owner, bytes32(0)
            )
        );
        vm.prank(owner);
        registry.setBaseURI("https://evil.example/");
    }

    function test_tokenURI_Revert_WhenUnknownToken() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 1));
        registry.tokenURI(1);
    }

    function test_supportsInterface() public view {
        assertTrue(registry.supportsInterface(type(IERC165).interfaceId), "ERC165");
        assertTrue(registry.supportsInterface(type(IERC721).interfaceId), "ERC721");
        assertTrue(registry.supportsInterface(type(IERC721Metadata).interfaceId), "metadata");
        assertTrue(registry.supportsInterface(type(IAccessControl).interfaceId), "AccessControl");
        assertTrue(registry.supportsInterface(type(IDataRegistry).interfaceId), "IDataRegistry");
        assertTrue(registry.supportsInterface(0x80ac58cd), "ERC721 literal");
        assertTrue(registry.supportsInterface(0x7965db0b), "AccessControl literal");
        assertTrue(!registry.supportsInterface(0xffffffff), "0xffffffff");
        assertTrue(!registry.supportsInterface(type(IAccessGrants).interfaceId), "IAccessGrants");
    }
}

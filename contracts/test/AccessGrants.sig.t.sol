// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessGrants} from "../src/AccessGrants.sol";
import {IAccessGrants} from "../src/interfaces/IAccessGrants.sol";
import {IDataRegistry} from "../src/interfaces/IDataRegistry.sol";
import {AccessGrantsBase} from "./AccessGrants.t.sol";
import {MockWallet} from "./utils/Mocks.sol";

/// @notice AccessGrants: relayed issue (`issueWithSig`) for EOAs and ERC-1271 wallets, and every
/// way a signature must be refused.
contract AccessGrantsSigTest is AccessGrantsBase {
    /// @dev Order of the secp256k1 group.
    uint256 internal constant SECP256K1_N =
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    uint256 internal constant WALLET_KEY = 0xCAFE;

    address internal relayer = address(0x7E1A);
    address internal walletSigner;
    MockWallet internal wallet;
    uint256 internal walletDataset;

    function setUp() public override {
        super.setUp();
        walletSigner = vm.addr(WALLET_KEY);
        wallet = new MockWallet(walletSigner);
        vm.prank(walletSigner);
        bytes memory ret = wallet.execute(
            address(registry),
            abi.encodeCall(
                IDataRegistry.register, (_version(keccak256("wallet")), 5000, "ipfs://wallet")
            )
        );
        walletDataset = abi.decode(ret, (uint256));
    }

    function _invalidSig(address grantor, bytes32 id) internal pure returns (bytes memory) {
        return
            abi.encodeWithSelector(IAccessGrants.AccessGrantsInvalidSignature.selector, grantor, id);
    }

    /* ------------------------------- happy paths ------------------------------- */

    function test_issueWithSig_EOA() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        bytes32 expected = _idOf(g);
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantIssued(expected, datasetId, consumer, g, 0, true);
        vm.prank(relayer);
        bytes32 id = grants.issueWithSig(g, sig);
        assertEq(id, expected, "id");
        _assertState(id, 0, 0, 0, block.timestamp, IAccessGrants.Status.Active);
        assertTrue(grants.isNonceUsed(owner, g.nonce), "nonce used");
    }

    function test_issueWithSig_ERC1271Wallet() public {
        assertEq(registry.ownerOf(walletDataset), address(wallet), "wallet owns its dataset");
        IAccessGrants.Grant memory g = _terms(walletDataset, address(wallet));
        bytes32 expected = _idOf(g);
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantIssued(expected, walletDataset, consumer, g, 0, true);
        vm.prank(relayer);
        bytes32 id = grants.issueWithSig(g, _sign(WALLET_KEY, g));
        assertEq(id, expected, "id");
        _assertState(id, 0, 0, 0, block.timestamp, IAccessGrants.Status.Active);
        assertTrue(grants.isNonceUsed(address(wallet), g.nonce), "wallet nonce used");
        assertTrue(!grants.isNonceUsed(walletSigner, g.nonce), "not the signer's nonce");
    }

    function test_issue_ByWalletThroughExecute() public {
        IAccessGrants.Grant memory g = _terms(walletDataset, address(wallet));
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantIssued(_idOf(g), walletDataset, consumer, g, 0, false);
        vm.prank(walletSigner);
        wallet.execute(address(grants), abi.encodeCall(IAccessGrants.issue, (g)));
        _assertState(_idOf(g), 0, 0, 0, block.timestamp, IAccessGrants.Status.Active);
    }

    function test_issueWithSig_AcceptsSignatureAtDeadline() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        vm.warp(g.deadline);
        bytes32 id = grants.issueWithSig(g, sig);
        _assertState(id, 0, 0, 0, g.deadline, IAccessGrants.Status.Active);
    }

    /* ------------------------------ wrong signers ------------------------------ */

    function test_issueWithSig_Revert_WhenWrongSigner() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OTHER_KEY, g);
        vm.expectRevert(_invalidSig(owner, _idOf(g)));
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenSignedForOtherTerms() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        g.pricePerUse = 1 wei;
        vm.expectRevert(_invalidSig(owner, _idOf(g)));
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenWalletWrongKey() public {
        IAccessGrants.Grant memory g = _terms(walletDataset, address(wallet));
        bytes memory sig = _sign(OWNER_KEY, g);
        vm.expectRevert(_invalidSig(address(wallet), _idOf(g)));
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenWalletSignerSignsAsItself() public {
        // The wallet's key is not a grantor of the wallet's dataset in its own name.
        IAccessGrants.Grant memory g = _terms(walletDataset, walletSigner);
        bytes memory sig = _sign(WALLET_KEY, g);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsNotDatasetOwner.selector,
                walletDataset,
                walletSigner,
                address(wallet)
            )
        );
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenWalletDoesNotOwnDataset() public {
        IAccessGrants.Grant memory g = _terms(datasetId, address(wallet));
        bytes memory sig = _sign(WALLET_KEY, g);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsNotDatasetOwner.selector,
                datasetId,
                address(wallet),
                owner
            )
        );
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenSignerSoldDatasetBeforeRelay() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        _transferDataset(other);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsNotDatasetOwner.selector, datasetId, owner, other
            )
        );
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenHighS() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes32 id = _idOf(g);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_KEY, id);
        bytes32 highS = bytes32(SECP256K1_N - uint256(s));
        uint8 flippedV = v == 27 ? 28 : 27;
        // The malleated signature is mathematically valid for the owner...
        assertEq(ecrecover(id, flippedV, r, highS), owner, "malleated signature recovers owner");
        // ...but AccessGrants refuses the high-s form.
        vm.expectRevert(_invalidSig(owner, id));
        grants.issueWithSig(g, abi.encodePacked(r, highS, flippedV));
        // The canonical form still works.
        assertEq(grants.issueWithSig(g, abi.encodePacked(r, s, v)), id, "low-s accepted");
    }

    function test_issueWithSig_Revert_WhenMalformedSignature() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        bytes memory truncated = new bytes(64);
        for (uint256 i = 0; i < 64; ++i) {
            truncated[i] = sig[i];
        }
        vm.expectRevert(_invalidSig(owner, _idOf(g)));
        grants.issueWithSig(g, truncated);
        vm.expectRevert(_invalidSig(owner, _idOf(g)));
        grants.issueWithSig(g, "");
    }

    function testFuzz_issueWithSig_RefusesNonOwnerKey(uint256 key) public {
        key = _between(key, 1, SECP256K1_N - 1);
        vm.assume(key != OWNER_KEY);
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(key, g);
        vm.expectRevert(_invalidSig(owner, _idOf(g)));
        grants.issueWithSig(g, sig);
    }

    function testFuzz_issueWithSig_RefusesNonOwnerKeyForWallet(uint256 key) public {
        key = _between(key, 1, SECP256K1_N - 1);
        vm.assume(key != WALLET_KEY);
        IAccessGrants.Grant memory g = _terms(walletDataset, address(wallet));
        bytes memory sig = _sign(key, g);
        vm.expectRevert(_invalidSig(address(wallet), _idOf(g)));
        grants.issueWithSig(g, sig);
    }

    /* --------------------------------- replays --------------------------------- */

    function test_issueWithSig_Revert_WhenReplayedOnOtherChain() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        uint256 home = block.chainid;
        bytes memory sig = _sign(OWNER_KEY, g);
        bytes32 homeId = _idOf(g);
        vm.chainId(home + 1);
        bytes32 forkId = grants.grantId(g);
        assertEq(forkId, _digestOf(g, address(grants), home + 1), "id on the other chain");
        assertTrue(forkId != homeId, "ids differ across chains");
        vm.expectRevert(_invalidSig(owner, forkId));
        grants.issueWithSig(g, sig);
        vm.chainId(home);
        assertEq(grants.issueWithSig(g, sig), homeId, "valid on its own chain");
    }

    function test_issueWithSig_Revert_WhenReplayedOnOtherDeployment() public {
        AccessGrants second = new AccessGrants(registry, admin);
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        grants.issueWithSig(g, sig);
        vm.expectRevert(_invalidSig(owner, _digestOf(g, address(second), block.chainid)));
        second.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenReplayedOnSameDeployment() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        grants.issueWithSig(g, sig);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsNonceUsed.selector, owner, g.nonce)
        );
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenReplayedAfterRevoke() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        grants.issueWithSig(g, sig);
        vm.prank(owner);
        grants.revoke(g);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsNonceUsed.selector, owner, g.nonce)
        );
        grants.issueWithSig(g, sig);
        _assertState(_idOf(g), 0, 0, 0, block.timestamp, IAccessGrants.Status.Revoked);
    }

    /* ----------------------------- deadline & nonces ---------------------------- */

    function test_issueWithSig_Revert_WhenExpiredDeadline() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        vm.warp(g.deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsExpiredDeadline.selector, g.deadline, g.deadline + 1
            )
        );
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenNonceUsedByDirectIssue() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        _issue(g);
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.nonce = g.nonce;
        h.maxUses = 3;
        bytes memory sig = _sign(OWNER_KEY, h);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsNonceUsed.selector, owner, g.nonce)
        );
        grants.issueWithSig(h, sig);
    }

    function test_issueWithSig_Revert_WhenNonceInvalidated() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes memory sig = _sign(OWNER_KEY, g);
        vm.prank(owner);
        grants.invalidateNonces(g.nonce + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsNonceUsed.selector, owner, g.nonce)
        );
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenWalletInvalidatedNonces() public {
        IAccessGrants.Grant memory g = _terms(walletDataset, address(wallet));
        bytes memory sig = _sign(WALLET_KEY, g);
        vm.prank(walletSigner);
        wallet.execute(
            address(grants), abi.encodeCall(IAccessGrants.invalidateNonces, (g.nonce + 1))
        );
        assertEq(grants.minNonceOf(address(wallet)), g.nonce + 1, "wallet minimum");
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsNonceUsed.selector, address(wallet), g.nonce
            )
        );
        grants.issueWithSig(g, sig);
    }

    function test_issueWithSig_Revert_WhenInvalidTerms() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.maxUses = 0;
        bytes memory sig = _sign(OWNER_KEY, g);
        vm.expectRevert(_invalidTerms("maxUses"));
        grants.issueWithSig(g, sig);
    }
}

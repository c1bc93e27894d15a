// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

import {IRevenueVault} from "../src/interfaces/IRevenueVault.sol";
import {Merkle} from "./utils/Merkle.sol";
import {EthRefuser} from "./utils/Mocks.sol";
import {Reenterer, RevenueVaultBase} from "./utils/RevenueVaultBase.sol";

/// @notice RevenueVault: entitlement epochs and claims against real StandardMerkleTree trees.
contract RevenueVaultClaimsTest is RevenueVaultBase {
    bytes32 internal constant ROOT = keccak256("root");

    function setUp() public override {
        super.setUp();
        _fund(address(0), 10 ether); // 9.75 ETH net of the 2.5% fee
        _fund(address(token), 1000e18); // 975 tokens net
    }

    function _tree(uint256 a, uint256 b, uint256 c) internal view returns (bytes32[] memory) {
        address[] memory accounts = new address[](3);
        uint256[] memory amounts = new uint256[](3);
        (accounts[0], accounts[1], accounts[2]) = (payeeA, payeeB, payeeC);
        (amounts[0], amounts[1], amounts[2]) = (a, b, c);
        return Merkle.build(accounts, amounts);
    }

    function _publish(address tok, uint64 epoch, bytes32[] memory tree, uint256 total) internal {
        vm.prank(settler);
        vault.publishEpoch(tok, epoch, Merkle.root(tree), total);
    }

    function _claim(address tok, address account, uint256 cumulative, bytes32[] memory tree)
        internal
        returns (uint256)
    {
        return vault.claim(tok, account, cumulative, Merkle.proof(tree, account, cumulative));
    }

    /*//////////////////////////////////////////////////////////////
                             MERKLE HELPER
    //////////////////////////////////////////////////////////////*/

    /// @dev Known answer from @openzeppelin/merkle-tree's README: the helper builds the library's
    /// trees, and the vault pays against them.
    function test_merkle_MatchesOpenZeppelinReadmeTree() public {
        address[] memory accounts = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (accounts[0], accounts[1]) =
        (0x1111111111111111111111111111111111111111, 0x2222222222222222222222222222222222222222);
        (amounts[0], amounts[1]) = (5 ether, 2.5 ether);
        bytes32[] memory tree = Merkle.build(accounts, amounts);
        assertEq(
            Merkle.root(tree),
            0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77,
            "README root"
        );
        bytes32[] memory proof = Merkle.proof(tree, accounts[0], 5 ether);
        assertEq(proof.length, 1, "proof length");
        assertEq(
            proof[0],
            0xb92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc,
            "README proof"
        );

        _publish(address(0), 1, tree, 7.5 ether);
        assertEq(vault.claim(address(0), accounts[0], 5 ether, proof), 5 ether, "paid");
        assertEq(accounts[0].balance, 5 ether, "account balance");
    }

    function test_merkle_ProvesEveryLeafOfTreesOfOneToNineLeaves() public pure {
        for (uint256 n = 1; n <= 9; ++n) {
            address[] memory accounts = new address[](n);
            uint256[] memory amounts = new uint256[](n);
            for (uint256 i = 0; i < n; ++i) {
                accounts[i] = address(uint160(0x1000 + i));
                amounts[i] = (i + 1) * 1e18;
            }
            bytes32[] memory tree = Merkle.build(accounts, amounts);
            for (uint256 i = 0; i < n; ++i) {
                bytes32[] memory proof = Merkle.proof(tree, accounts[i], amounts[i]);
                assertTrue(
                    MerkleProof.verify(proof, tree[0], Merkle.leaf(accounts[i], amounts[i])),
                    "proof verifies"
                );
                assertTrue(
                    !MerkleProof.verify(proof, tree[0], Merkle.leaf(accounts[i], amounts[i] + 1)),
                    "wrong amount does not verify"
                );
            }
        }
    }

    /*//////////////////////////////////////////////////////////////
                             PUBLISH EPOCH
    //////////////////////////////////////////////////////////////*/

    function test_publishEpoch_PublishesFirstEpoch() public {
        vm.expectEmit(address(vault));
        emit IRevenueVault.EpochPublished(address(0), 1, ROOT, 6 ether);
        vm.prank(settler);
        vault.publishEpoch(address(0), 1, ROOT, 6 ether);

        IRevenueVault.Distribution memory d = vault.distributionOf(address(0));
        assertEq(d.root, ROOT, "root");
        assertEq(d.epoch, 1, "epoch");
        assertEq(d.publishedTotal, 6 ether, "publishedTotal");
        assertEq(d.totalClaimed, 0, "totalClaimed");
        assertEq(vault.epochRoot(address(0), 1), ROOT, "epochRoot 1");
        assertEq(vault.epochRoot(address(0), 2), bytes32(0), "epochRoot 2");
    }

    function test_publishEpoch_FollowsSequenceAndKeepsHistory() public {
        vm.startPrank(settler);
        vault.publishEpoch(address(0), 1, keccak256("r1"), 1 ether);
        vault.publishEpoch(address(0), 2, keccak256("r2"), 1 ether); // equal total is allowed
        vault.publishEpoch(address(0), 3, keccak256("r3"), 9.75 ether); // all captured net
        vm.stopPrank();

        IRevenueVault.Distribution memory d = vault.distributionOf(address(0));
        assertEq(d.root, keccak256("r3"), "current root");
        assertEq(d.epoch, 3, "current epoch");
        assertEq(d.publishedTotal, 9.75 ether, "current total");
        assertEq(vault.epochRoot(address(0), 1), keccak256("r1"), "epoch 1 kept");
        assertEq(vault.epochRoot(address(0), 2), keccak256("r2"), "epoch 2 kept");
    }

    function test_publishEpoch_KeepsTokensApart() public {
        vm.startPrank(settler);
        vault.publishEpoch(address(0), 1, keccak256("eth"), 1 ether);
        vault.publishEpoch(address(token), 1, keccak256("token"), 975e18);
        vm.stopPrank();
        assertEq(vault.distributionOf(address(0)).publishedTotal, 1 ether, "ETH total");
        assertEq(vault.epochRoot(address(token), 1), keccak256("token"), "token root");
        assertEq(vault.distributionOf(address(token)).epoch, 1, "token epoch");
    }

    function test_publishEpoch_Revert_WhenNotSettler() public {
        bytes32 role = vault.SETTLER_ROLE();
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, admin, role
            )
        );
        vm.prank(admin);
        vault.publishEpoch(address(0), 1, ROOT, 1 ether);
    }

    function test_publishEpoch_Revert_WhenRootZero() public {
        vm.expectRevert(abi.encodeWithSelector(IRevenueVault.RevenueVaultZeroRoot.selector));
        vm.prank(settler);
        vault.publishEpoch(address(0), 1, bytes32(0), 1 ether);
    }

    function test_publishEpoch_Revert_WhenEpochSkipped() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultWrongEpoch.selector, address(0), uint64(1), uint64(2)
            )
        );
        vm.prank(settler);
        vault.publishEpoch(address(0), 2, ROOT, 1 ether);
    }

    function test_publishEpoch_Revert_WhenEpochZero() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultWrongEpoch.selector, address(0), uint64(1), uint64(0)
            )
        );
        vm.prank(settler);
        vault.publishEpoch(address(0), 0, ROOT, 1 ether);
    }

    function test_publishEpoch_Revert_WhenEpochRepeated() public {
        vm.prank(settler);
        vault.publishEpoch(address(0), 1, ROOT, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultWrongEpoch.selector, address(0), uint64(2), uint64(1)
            )
        );
        vm.prank(settler);
        vault.publishEpoch(address(0), 1, keccak256("other root"), 2 ether);
        assertEq(vault.epochRoot(address(0), 1), ROOT, "epoch 1 unchanged");
    }

    function test_publishEpoch_Revert_WhenTotalDecreased() public {
        vm.prank(settler);
        vault.publishEpoch(address(0), 1, ROOT, 2 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultTotalDecreased.selector, address(0), 2 ether, 2 ether - 1
            )
        );
        vm.prank(settler);
        vault.publishEpoch(address(0), 2, keccak256("r2"), 2 ether - 1);
    }

    /// @dev The cap is captured revenue net of fees: 9.75 of the 10 ETH captured.
    function test_publishEpoch_Revert_WhenTotalExceedsCapturedNet() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultTotalExceedsRevenue.selector,
                address(0),
                9.75 ether + 1,
                9.75 ether
            )
        );
        vm.prank(settler);
        vault.publishEpoch(address(0), 1, ROOT, 9.75 ether + 1);
    }

    function test_publishEpoch_Revert_WhenTokenHasNoRevenue() public {
        address noRevenue = address(0xDEAD);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultTotalExceedsRevenue.selector, noRevenue, 1, 0
            )
        );
        vm.prank(settler);
        vault.publishEpoch(noRevenue, 1, ROOT, 1);
    }

    /*//////////////////////////////////////////////////////////////
                                 CLAIM
    //////////////////////////////////////////////////////////////*/

    function test_claim_PaysEthEntitlements() public {
        bytes32[] memory tree = _tree(1 ether, 2 ether, 3 ether);
        _publish(address(0), 1, tree, 6 ether);

        address[3] memory accounts = [payeeA, payeeB, payeeC];
        for (uint256 i = 0; i < 3; ++i) {
            uint256 amount = (i + 1) * 1 ether;
            bytes32[] memory proof = Merkle.proof(tree, accounts[i], amount);
            vm.expectEmit(address(vault));
            emit IRevenueVault.Claimed(address(0), accounts[i], amount, amount);
            assertEq(vault.claim(address(0), accounts[i], amount, proof), amount, "returned");
            assertEq(accounts[i].balance, amount, "paid");
            assertEq(vault.claimedOf(address(0), accounts[i]), amount, "claimedOf");
        }
        assertEq(vault.distributionOf(address(0)).totalClaimed, 6 ether, "totalClaimed");
        assertEq(address(vault).balance, 10 ether - 6 ether, "vault balance");
    }

    function test_claim_PaysTokenEntitlements() public {
        bytes32[] memory tree = _tree(100e18, 250e18, 625e18);
        _publish(address(token), 1, tree, 975e18);
        bytes32[] memory proof = Merkle.proof(tree, payeeC, 625e18);
        vm.expectEmit(address(vault));
        emit IRevenueVault.Claimed(address(token), payeeC, 625e18, 625e18);
        vault.claim(address(token), payeeC, 625e18, proof);
        _claim(address(token), payeeA, 100e18, tree);
        _claim(address(token), payeeB, 250e18, tree);

        assertEq(token.balanceOf(payeeA), 100e18, "A paid");
        assertEq(token.balanceOf(payeeB), 250e18, "B paid");
        assertEq(token.balanceOf(payeeC), 625e18, "C paid");
        assertEq(vault.distributionOf(address(token)).totalClaimed, 975e18, "totalClaimed");
        assertEq(token.balanceOf(address(vault)), 25e18, "fees remain");
    }

    function test_claim_NextEpochPaysOnlyTheDifference() public {
        bytes32[] memory tree1 = _tree(1 ether, 2 ether, 0);
        _publish(address(0), 1, tree1, 3 ether);
        _claim(address(0), payeeA, 1 ether, tree1);

        bytes32[] memory tree2 = _tree(2.5 ether, 2 ether, 1 ether);
        _publish(address(0), 2, tree2, 5.5 ether);
        bytes32[] memory proof = Merkle.proof(tree2, payeeA, 2.5 ether);
        vm.expectEmit(address(vault));
        emit IRevenueVault.Claimed(address(0), payeeA, 1.5 ether, 2.5 ether);
        assertEq(vault.claim(address(0), payeeA, 2.5 ether, proof), 1.5 ether, "difference");

        assertEq(payeeA.balance, 2.5 ether, "paid in total the final cumulative");
        assertEq(vault.claimedOf(address(0), payeeA), 2.5 ether, "claimedOf");
        assertEq(vault.distributionOf(address(0)).totalClaimed, 2.5 ether, "totalClaimed");
    }

    function test_claim_AfterSkippedEpochPaysFullCumulative() public {
        _publish(address(0), 1, _tree(1 ether, 1 ether, 1 ether), 3 ether);
        bytes32[] memory tree2 = _tree(2 ether, 1 ether, 1 ether);
        _publish(address(0), 2, tree2, 4 ether);
        assertEq(_claim(address(0), payeeA, 2 ether, tree2), 2 ether, "full cumulative");
    }

    function test_claim_OnBehalfPaysTheAccount() public {
        bytes32[] memory tree = _tree(1 ether, 2 ether, 3 ether);
        _publish(address(0), 1, tree, 6 ether);
        bytes32[] memory proof = Merkle.proof(tree, payeeB, 2 ether);
        uint256 callerBefore = other.balance;
        vm.prank(other);
        vault.claim(address(0), payeeB, 2 ether, proof);
        assertEq(payeeB.balance, 2 ether, "account paid");
        assertEq(other.balance, callerBefore, "caller not paid");
        assertEq(vault.claimedOf(address(0), other), 0, "nothing claimed for the caller");
    }

    function test_claim_SingleLeafTree() public {
        address[] memory accounts = new address[](1);
        uint256[] memory amounts = new uint256[](1);
        (accounts[0], amounts[0]) = (payeeA, 4 ether);
        bytes32[] memory tree = Merkle.build(accounts, amounts);
        assertEq(Merkle.root(tree), Merkle.leaf(payeeA, 4 ether), "root is the leaf");
        _publish(address(0), 1, tree, 4 ether);
        assertEq(vault.claim(address(0), payeeA, 4 ether, new bytes32[](0)), 4 ether, "paid");
    }

    /// @dev claim has no reentrancy guard: an account re-entering from its payout finds nothing
    /// left to claim, and is paid once.
    function test_claim_ReentryFindsNothingToClaim() public {
        Reenterer r = new Reenterer(address(vault));
        address[] memory accounts = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (accounts[0], accounts[1]) = (address(r), payeeA);
        (amounts[0], amounts[1]) = (3 ether, 1 ether);
        bytes32[] memory tree = Merkle.build(accounts, amounts);
        _publish(address(0), 1, tree, 4 ether);
        bytes32[] memory proof = Merkle.proof(tree, address(r), 3 ether);
        r.setCallback(abi.encodeCall(vault.claim, (address(0), address(r), 3 ether, proof)));

        vault.claim(address(0), address(r), 3 ether, proof);

        assertEq(r.received(), 3 ether, "paid once");
        assertTrue(!r.callbackOk(), "re-entered claim refused");
        assertEq(
            keccak256(r.callbackRevert()),
            keccak256(
                abi.encodeWithSelector(
                    IRevenueVault.RevenueVaultNothingToClaim.selector,
                    address(0),
                    address(r),
                    3 ether,
                    3 ether
                )
            ),
            "NothingToClaim"
        );
        assertEq(vault.distributionOf(address(0)).totalClaimed, 3 ether, "totalClaimed");
    }

    function test_claim_Revert_WhenNoEpochPublished() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultInvalidProof.selector, address(0), payeeA, 1 ether
            )
        );
        vault.claim(address(0), payeeA, 1 ether, new bytes32[](0));
    }

    function test_claim_Revert_WhenCumulativeInflated() public {
        bytes32[] memory tree = _tree(1 ether, 2 ether, 3 ether);
        _publish(address(0), 1, tree, 6 ether);
        bytes32[] memory proof = Merkle.proof(tree, payeeA, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultInvalidProof.selector, address(0), payeeA, 2 ether
            )
        );
        vault.claim(address(0), payeeA, 2 ether, proof);
    }

    function test_claim_Revert_WhenAccountNotInTree() public {
        bytes32[] memory tree = _tree(1 ether, 2 ether, 3 ether);
        _publish(address(0), 1, tree, 6 ether);
        bytes32[] memory proof = Merkle.proof(tree, payeeB, 2 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultInvalidProof.selector, address(0), other, 2 ether
            )
        );
        vault.claim(address(0), other, 2 ether, proof);
    }

    function test_claim_Revert_WhenProofTampered() public {
        bytes32[] memory tree = _tree(1 ether, 2 ether, 3 ether);
        _publish(address(0), 1, tree, 6 ether);
        bytes32[] memory proof = Merkle.proof(tree, payeeC, 3 ether);
        proof[proof.length - 1] = bytes32(uint256(proof[proof.length - 1]) ^ 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultInvalidProof.selector, address(0), payeeC, 3 ether
            )
        );
        vault.claim(address(0), payeeC, 3 ether, proof);
    }

    /// @dev Only the token's current root counts: a proof of an earlier epoch is refused.
    function test_claim_Revert_WhenProofFromPreviousEpoch() public {
        bytes32[] memory tree1 = _tree(1 ether, 2 ether, 3 ether);
        _publish(address(0), 1, tree1, 6 ether);
        _publish(address(0), 2, _tree(1.5 ether, 2 ether, 3 ether), 6.5 ether);
        bytes32[] memory proof = Merkle.proof(tree1, payeeA, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultInvalidProof.selector, address(0), payeeA, 1 ether
            )
        );
        vault.claim(address(0), payeeA, 1 ether, proof);
    }

    /// @dev A proof for the ETH tree proves nothing in the token's tree.
    function test_claim_Revert_WhenProofOfAnotherToken() public {
        bytes32[] memory tree = _tree(1 ether, 2 ether, 3 ether);
        _publish(address(0), 1, tree, 6 ether);
        _publish(address(token), 1, _tree(1e18, 2e18, 4e18), 7e18);
        bytes32[] memory proof = Merkle.proof(tree, payeeC, 3 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultInvalidProof.selector, address(token), payeeC, 3 ether
            )
        );
        vault.claim(address(token), payeeC, 3 ether, proof);
    }

    function test_claim_Revert_WhenNothingToClaim() public {
        bytes32[] memory tree = _tree(1 ether, 2 ether, 3 ether);
        _publish(address(0), 1, tree, 6 ether);
        _claim(address(0), payeeA, 1 ether, tree);
        bytes32[] memory proof = Merkle.proof(tree, payeeA, 1 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultNothingToClaim.selector,
                address(0),
                payeeA,
                1 ether,
                1 ether
            )
        );
        vault.claim(address(0), payeeA, 1 ether, proof);
        assertEq(payeeA.balance, 1 ether, "paid once");
    }

    function test_claim_Revert_WhenEntitlementZero() public {
        bytes32[] memory tree = _tree(1 ether, 0, 3 ether);
        _publish(address(0), 1, tree, 4 ether);
        bytes32[] memory proof = Merkle.proof(tree, payeeB, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultNothingToClaim.selector, address(0), payeeB, 0, 0
            )
        );
        vault.claim(address(0), payeeB, 0, proof);
    }

    /// @dev A later tree that lowers an account's cumulative pays it nothing (and takes nothing).
    function test_claim_Revert_WhenCumulativeBelowClaimed() public {
        bytes32[] memory tree1 = _tree(2 ether, 1 ether, 1 ether);
        _publish(address(0), 1, tree1, 4 ether);
        _claim(address(0), payeeA, 2 ether, tree1);
        bytes32[] memory tree2 = _tree(1.5 ether, 1 ether, 1.5 ether);
        _publish(address(0), 2, tree2, 4 ether);
        bytes32[] memory proof = Merkle.proof(tree2, payeeA, 1.5 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultNothingToClaim.selector,
                address(0),
                payeeA,
                1.5 ether,
                2 ether
            )
        );
        vault.claim(address(0), payeeA, 1.5 ether, proof);
    }

    /// @dev A tree whose leaves sum above its published total: claims stop at the total.
    function test_claim_Revert_WhenClaimsExceedTotal() public {
        bytes32[] memory tree = _tree(4 ether, 3 ether, 2 ether); // sums to 9
        _publish(address(0), 1, tree, 8 ether);
        _claim(address(0), payeeA, 4 ether, tree);
        _claim(address(0), payeeB, 3 ether, tree);
        bytes32[] memory proof = Merkle.proof(tree, payeeC, 2 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultClaimsExceedTotal.selector,
                address(0),
                7 ether,
                2 ether,
                8 ether
            )
        );
        vault.claim(address(0), payeeC, 2 ether, proof);
        assertEq(vault.distributionOf(address(0)).totalClaimed, 7 ether, "capped");

        // A corrected epoch with the right total lets the last account claim.
        _publish(address(0), 2, tree, 9 ether);
        assertEq(_claim(address(0), payeeC, 2 ether, tree), 2 ether, "paid after correction");
    }

    function test_claim_Revert_WhenAccountRefusesEth() public {
        address refuser = address(new EthRefuser());
        address[] memory accounts = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (accounts[0], accounts[1]) = (refuser, payeeA);
        (amounts[0], amounts[1]) = (2 ether, 1 ether);
        bytes32[] memory tree = Merkle.build(accounts, amounts);
        _publish(address(0), 1, tree, 3 ether);
        bytes32[] memory proof = Merkle.proof(tree, refuser, 2 ether);
        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultEthTransferFailed.selector, refuser, 2 ether
            )
        );
        vault.claim(address(0), refuser, 2 ether, proof);
        assertEq(vault.claimedOf(address(0), refuser), 0, "nothing claimed");
        assertEq(vault.distributionOf(address(0)).totalClaimed, 0, "totalClaimed");
    }

    /*//////////////////////////////////////////////////////////////
                                  FUZZ
    //////////////////////////////////////////////////////////////*/

    /// @dev Cumulative entitlements growing over four epochs, claimed at random moments: each
    /// account is paid exactly its final cumulative, and the vault keeps the rest.
    function testFuzz_claim_CumulativeAcrossEpochs(
        uint64[4] memory incA,
        uint64[4] memory incB,
        bool[4] memory claimNow
    ) public {
        _fund(address(token), uint256(1) << 70);
        (uint256 net,) = vault.tokenTotals(address(token));
        uint256 cumA;
        uint256 cumB;
        for (uint256 e = 0; e < 4; ++e) {
            cumA += incA[e];
            cumB += incB[e];
            bytes32[] memory tree = _tree(cumA, cumB, 0);
            _publish(address(token), uint64(e + 1), tree, cumA + cumB);
            if (claimNow[e] || e == 3) {
                _claimOrNothing(payeeA, cumA, tree);
                _claimOrNothing(payeeB, cumB, tree);
            }
        }
        assertEq(token.balanceOf(payeeA), cumA, "A paid its final cumulative");
        assertEq(token.balanceOf(payeeB), cumB, "B paid its final cumulative");
        assertEq(vault.claimedOf(address(token), payeeA), cumA, "claimedOf A");
        assertEq(vault.distributionOf(address(token)).totalClaimed, cumA + cumB, "totalClaimed");
        (, uint256 fees) = vault.tokenTotals(address(token));
        assertEq(token.balanceOf(address(vault)), net + fees - cumA - cumB, "vault keeps the rest");
    }

    function _claimOrNothing(address account, uint256 cumulative, bytes32[] memory tree) internal {
        uint256 claimed = vault.claimedOf(address(token), account);
        uint256 before = token.balanceOf(account);
        bytes32[] memory proof = Merkle.proof(tree, account, cumulative);
        if (cumulative == claimed) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IRevenueVault.RevenueVaultNothingToClaim.selector,
                    address(token),
                    account,
                    cumulative,
                    claimed
                )
            );
            vault.claim(address(token), account, cumulative, proof);
        } else {
            uint256 paid = vault.claim(address(token), account, cumulative, proof);
            assertEq(paid, cumulative - claimed, "pays the difference");
            assertEq(token.balanceOf(account), before + paid, "balance");
        }
    }

    /// @dev Trees of 1 to 16 random entitlements: every leaf is claimable and paid exactly.
    function testFuzz_claim_PaysEveryLeafOfAnyTree(uint8 size, uint256 seed) public {
        uint256 n = _within(size, 1, 16);
        address[] memory accounts = new address[](n);
        uint256[] memory amounts = new uint256[](n);
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            accounts[i] = address(uint160(uint256(keccak256(abi.encode(seed, "account", i)))));
            amounts[i] = uint256(keccak256(abi.encode(seed, "amount", i))) % 60e18 + 1;
            total += amounts[i];
        }
        vm.assume(total <= 975e18);
        bytes32[] memory tree = Merkle.build(accounts, amounts);
        _publish(address(token), 1, tree, total);
        for (uint256 i = 0; i < n; ++i) {
            _claim(address(token), accounts[i], amounts[i], tree);
            assertEq(token.balanceOf(accounts[i]), amounts[i], "leaf paid exactly");
        }
        assertEq(vault.distributionOf(address(token)).totalClaimed, total, "totalClaimed");
    }
}

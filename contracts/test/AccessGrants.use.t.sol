// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {IAccessGrants} from "../src/interfaces/IAccessGrants.sol";
import {IUsageLedger} from "../src/interfaces/IUsageLedger.sol";
import {AccessGrantsBase} from "./AccessGrants.t.sol";

/// @notice AccessGrants: consumption (`checkUse` view and `consume`), every refusal and the
/// uses/budget arithmetic.
contract AccessGrantsUseTest is AccessGrantsBase {
    bytes32 internal constant LISTED = keccak256("algorithm:histogram:v2");

    IAccessGrants.Grant internal g;
    bytes32 internal id;

    function setUp() public override {
        super.setUp();
        g = _terms(datasetId, owner);
        id = _issue(g);
    }

    function _expectRevertOnCheckAndConsume(IAccessGrants.Use memory use, bytes memory err)
        internal
    {
        vm.expectRevert(err);
        grants.checkUse(g, use);
        _becomeConsumer();
        vm.expectRevert(err);
        grants.consume(g, use);
    }

    /* -------------------------------- checkUse --------------------------------- */

    function test_checkUse_ReturnsIdAndState() public view {
        (bytes32 checked, IAccessGrants.GrantState memory s) =
            grants.checkUse(g, _useOf(g, 10, 1e6));
        assertEq(checked, id, "id");
        assertEq(uint256(s.status), uint256(IAccessGrants.Status.Active), "status");
        assertEq(s.issuedAt, block.timestamp, "issuedAt");
        assertEq(s.uses, 0, "uses");
    }

    function test_checkUse_Revert_WhenUnknownGrant() public {
        IAccessGrants.Grant memory h = g;
        h.nonce = 1234;
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsUnknownGrant.selector, _idOf(h))
        );
        grants.checkUse(h, _useOf(h, 1, 0));
    }

    function test_checkUse_Revert_WhenTermsAltered() public {
        IAccessGrants.Grant memory h = g;
        h.maxUses = 1000;
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsUnknownGrant.selector, _idOf(h))
        );
        grants.checkUse(h, _useOf(h, 1, 0));
    }

    function test_checkUse_Revert_WhenRevoked() public {
        vm.prank(owner);
        grants.revoke(g);
        _expectRevertOnCheckAndConsume(
            _useOf(g, 1, 0), abi.encodeWithSelector(IAccessGrants.AccessGrantsRevoked.selector, id)
        );
    }

    function test_checkUse_Revert_WhenNonceInvalidated() public {
        vm.prank(owner);
        grants.invalidateNonces(g.nonce + 1);
        _expectRevertOnCheckAndConsume(
            _useOf(g, 1, 0), abi.encodeWithSelector(IAccessGrants.AccessGrantsRevoked.selector, id)
        );
    }

    function test_checkUse_Revert_WhenOwnerChanged() public {
        _transferDataset(other);
        _expectRevertOnCheckAndConsume(
            _useOf(g, 1, 0),
            abi.encodeWithSelector(IAccessGrants.AccessGrantsOwnerChanged.selector, id, 0, 1)
        );
    }

    function test_checkUse_Revert_WhenDatasetReturnsToGrantor() public {
        _transferDataset(other);
        _transferDataset(owner);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsOwnerChanged.selector, id, 0, 2)
        );
        grants.checkUse(g, _useOf(g, 1, 0));
    }

    function test_checkUse_Revert_WhenBeforeWindow() public {
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.validFrom = uint64(block.timestamp + 1 days);
        h.validUntil = uint64(block.timestamp + 2 days);
        bytes32 hid = _issue(h);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsOutsideWindow.selector,
                hid,
                h.validFrom,
                h.validUntil,
                block.timestamp
            )
        );
        grants.checkUse(h, _useOf(h, 1, 0));
        vm.warp(h.validFrom - 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsOutsideWindow.selector,
                hid,
                h.validFrom,
                h.validUntil,
                h.validFrom - 1
            )
        );
        grants.checkUse(h, _useOf(h, 1, 0));
        vm.warp(h.validFrom);
        (bytes32 checked,) = grants.checkUse(h, _useOf(h, 1, 0));
        assertEq(checked, hid, "usable from validFrom");
    }

    function test_checkUse_Revert_WhenAfterWindow() public {
        vm.warp(g.validUntil);
        (bytes32 checked,) = grants.checkUse(g, _useOf(g, 1, 0));
        assertEq(checked, id, "usable until validUntil");
        vm.warp(uint256(g.validUntil) + 1);
        _expectRevertOnCheckAndConsume(
            _useOf(g, 1, 0),
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsOutsideWindow.selector,
                id,
                g.validFrom,
                g.validUntil,
                uint256(g.validUntil) + 1
            )
        );
    }

    function test_checkUse_Revert_WhenWrongGrantee() public {
        IAccessGrants.Use memory use = _useOf(g, 1, 0);
        use.consumer = other;
        _expectRevertOnCheckAndConsume(
            use,
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsWrongGrantee.selector, id, consumer, other
            )
        );
    }

    function test_checkUse_Revert_WhenWrongAlgorithm() public {
        IAccessGrants.Use memory use = _useOf(g, 1, 0);
        use.algorithmHash = LISTED;
        // Being listed in the catalog does not matter for a single-algorithm grant.
        vm.prank(admin);
        grants.setCatalogAlgorithm(LISTED, true);
        _expectRevertOnCheckAndConsume(
            use,
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsWrongAlgorithm.selector, id, ALGO, LISTED
            )
        );
    }

    function test_checkUse_CatalogGrant_AllowsListedAlgorithm() public {
        vm.prank(admin);
        grants.setCatalogAlgorithm(LISTED, true);
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.algorithmHash = ANY_CATALOG;
        bytes32 hid = _issue(h);
        IAccessGrants.Use memory use = _useOf(h, 1, 0);
        use.algorithmHash = LISTED;
        (bytes32 checked,) = grants.checkUse(h, use);
        assertEq(checked, hid, "listed algorithm allowed");
    }

    function test_checkUse_CatalogGrant_Revert_WhenNotListed() public {
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.algorithmHash = ANY_CATALOG;
        bytes32 hid = _issue(h);
        IAccessGrants.Use memory use = _useOf(h, 1, 0);
        use.algorithmHash = LISTED;
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsWrongAlgorithm.selector, hid, ANY_CATALOG, LISTED
            )
        );
        grants.checkUse(h, use);
        // The sentinel itself is never a listed algorithm.
        use.algorithmHash = ANY_CATALOG;
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsWrongAlgorithm.selector, hid, ANY_CATALOG, ANY_CATALOG
            )
        );
        grants.checkUse(h, use);
    }

    function test_checkUse_CatalogGrant_Revert_WhenDelisted() public {
        vm.prank(admin);
        grants.setCatalogAlgorithm(LISTED, true);
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.algorithmHash = ANY_CATALOG;
        bytes32 hid = _issue(h);
        vm.prank(admin);
        grants.setCatalogAlgorithm(LISTED, false);
        IAccessGrants.Use memory use = _useOf(h, 1, 0);
        use.algorithmHash = LISTED;
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsWrongAlgorithm.selector, hid, ANY_CATALOG, LISTED
            )
        );
        grants.checkUse(h, use);
    }

    function test_checkUse_Revert_WhenWrongPurpose() public {
        IAccessGrants.Use memory use = _useOf(g, 1, 0);
        bytes32 marketing = keccak256("marketing");
        use.purpose = marketing;
        _expectRevertOnCheckAndConsume(
            use,
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsWrongPurpose.selector, id, PURPOSE, marketing
            )
        );
    }

    function test_checkUse_Revert_WhenZeroUses() public {
        _expectRevertOnCheckAndConsume(_useOf(g, 0, 0), _invalidTerms("uses"));
    }

    function test_checkUse_Revert_WhenUsesExceeded() public {
        _expectRevertOnCheckAndConsume(
            _useOf(g, 11, 0),
            abi.encodeWithSelector(IAccessGrants.AccessGrantsUsesExceeded.selector, id, 0, 11, 10)
        );
        grants.consume(g, _useOf(g, 9, 0));
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsUsesExceeded.selector, id, 9, 2, 10)
        );
        grants.checkUse(g, _useOf(g, 2, 0));
        grants.consume(g, _useOf(g, 1, 0));
        _assertState(id, 10, 0, 0, block.timestamp, IAccessGrants.Status.Active);
    }

    function test_checkUse_Revert_WhenBudgetExceeded() public {
        _expectRevertOnCheckAndConsume(
            _useOf(g, 1, 1_000_001),
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsBudgetExceeded.selector, id, 0, 1_000_001, 1_000_000
            )
        );
        grants.consume(g, _useOf(g, 1, 600_000));
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsBudgetExceeded.selector, id, 600_000, 400_001, 1_000_000
            )
        );
        grants.checkUse(g, _useOf(g, 1, 400_001));
        grants.consume(g, _useOf(g, 1, 400_000));
        _assertState(id, 2, 1_000_000, 0, block.timestamp, IAccessGrants.Status.Active);
    }

    function test_checkUse_ZeroBudgetAllowsNoEpsilon() public {
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.epsilonBudget = 0;
        bytes32 hid = _issue(h);
        (bytes32 checked,) = grants.checkUse(h, _useOf(h, 1, 0));
        assertEq(checked, hid, "no DP spend is fine");
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsBudgetExceeded.selector, hid, 0, 1, 0)
        );
        grants.checkUse(h, _useOf(h, 1, 1));
    }

    /* --------------------------------- consume --------------------------------- */

    function test_consume_AccumulatesAndEmits() public {
        _becomeConsumer();
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantConsumed(id, 2, 300, 2, 300);
        assertEq(grants.consume(g, _useOf(g, 2, 300)), id, "returned id");
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantConsumed(id, 3, 0, 5, 300);
        grants.consume(g, _useOf(g, 3, 0));
        _assertState(id, 5, 300, 0, block.timestamp, IAccessGrants.Status.Active);
        (, IAccessGrants.GrantState memory s) = grants.checkUse(g, _useOf(g, 1, 0));
        assertEq(s.uses, 5, "checkUse reports state before the use");
    }

    function test_consume_Revert_WhenNotConsumerRole() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, executor, CONSUMER
            )
        );
        vm.prank(executor);
        grants.consume(g, _useOf(g, 1, 0));
    }

    function test_consume_Revert_WhenGranteeCallsDirectly() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, consumer, CONSUMER
            )
        );
        vm.prank(consumer);
        grants.consume(g, _useOf(g, 1, 0));
    }

    function test_consume_ThroughUsageLedger() public {
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.pricePerUse = 0;
        bytes32 hid = _issue(h);
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantConsumed(hid, 3, 250_000, 3, 250_000);
        vm.prank(executor);
        usage.recordUsage(_job(keccak256("job-free")), _use(h, 3, 250_000));
        _assertState(hid, 3, 250_000, 0, block.timestamp, IAccessGrants.Status.Active);
    }

    /* ------------------------- uses / budget arithmetic ------------------------ */

    /// @dev Random grant limits and a random sequence of uses: each use must succeed exactly when
    /// it is non-zero and both running totals stay within the limits, with the exact error
    /// otherwise, from `checkUse` and `consume` alike.
    function testFuzz_consume_UsesAndBudgetArithmetic(
        uint32 maxUses,
        uint64 budget,
        uint256[6] memory rawUses,
        uint256[6] memory rawEpsilon
    ) public {
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.maxUses = uint32(_between(maxUses, 1, type(uint32).max));
        h.epsilonBudget = budget;
        bytes32 hid = _issue(h);
        _becomeConsumer();
        uint256 used;
        uint256 spent;
        for (uint256 i = 0; i < 6; ++i) {
            IAccessGrants.Use memory use = _useOf(
                h,
                uint32(_between(rawUses[i], 0, _min(uint256(h.maxUses) + 1, type(uint32).max))),
                uint64(_between(rawEpsilon[i], 0, _min(uint256(budget) + 1, type(uint64).max)))
            );
            bytes memory expected;
            if (use.uses == 0) {
                expected = _invalidTerms("uses");
            } else if (used + use.uses > h.maxUses) {
                expected = abi.encodeWithSelector(
                    IAccessGrants.AccessGrantsUsesExceeded.selector, hid, used, use.uses, h.maxUses
                );
            } else if (spent + use.epsilon > budget) {
                expected = abi.encodeWithSelector(
                    IAccessGrants.AccessGrantsBudgetExceeded.selector,
                    hid,
                    spent,
                    use.epsilon,
                    budget
                );
            }
            (bool viewOk, bytes memory viewRet) =
                address(grants).staticcall(abi.encodeCall(IAccessGrants.checkUse, (h, use)));
            (bool ok, bytes memory ret) =
                address(grants).call(abi.encodeCall(IAccessGrants.consume, (h, use)));
            if (expected.length == 0) {
                assertTrue(viewOk && ok, "use within limits accepted");
                used += use.uses;
                spent += use.epsilon;
            } else {
                assertTrue(!viewOk && !ok, "use beyond limits refused");
                assertEq(keccak256(viewRet), keccak256(expected), "checkUse error");
                assertEq(keccak256(ret), keccak256(expected), "consume error");
            }
            _assertState(hid, used, spent, 0, block.timestamp, IAccessGrants.Status.Active);
        }
    }

    /// @dev Uses one at a time: exactly `maxUses` succeed, the next one fails.
    function testFuzz_consume_ExactlyMaxUses(uint8 rawMax) public {
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.maxUses = uint32(_between(rawMax, 1, 40));
        bytes32 hid = _issue(h);
        _becomeConsumer();
        for (uint32 i = 0; i < h.maxUses; ++i) {
            grants.consume(h, _useOf(h, 1, 0));
        }
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsUsesExceeded.selector, hid, h.maxUses, 1, h.maxUses
            )
        );
        grants.consume(h, _useOf(h, 1, 0));
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}

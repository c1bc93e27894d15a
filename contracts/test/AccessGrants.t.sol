// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {AccessGrants} from "../src/AccessGrants.sol";
import {IAccessGrants} from "../src/interfaces/IAccessGrants.sol";
import {IDataRegistry} from "../src/interfaces/IDataRegistry.sol";
import {MAX_PAYMENT} from "../src/interfaces/IRevenueVault.sol";
import {LedgerTestBase} from "./utils/LedgerTestBase.sol";

/// @notice Set-up and helpers shared by the AccessGrants suites: one dataset of `owner`, and an
/// EIP-712 digest computed independently of the contract (field by field, from the type string).
abstract contract AccessGrantsBase is LedgerTestBase {
    bytes32 internal constant DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );
    bytes32 internal constant GRANT_TYPE = keccak256(
        "Grant(uint256 datasetId,address grantor,address grantee,bytes32 algorithmHash,"
        "bytes32 purpose,uint64 validFrom,uint64 validUntil,uint32 maxUses,uint64 epsilonBudget,"
        "address paymentToken,uint256 pricePerUse,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant ANY_CATALOG = keccak256("ledger.algorithm.any-catalog");
    bytes32 internal constant CONSUMER = keccak256("CONSUMER_ROLE");
    bytes32 internal constant CATALOG = keccak256("CATALOG_ROLE");

    address internal stranger = address(0x5757);
    uint256 internal datasetId;

    function setUp() public virtual override {
        super.setUp();
        datasetId = _register(owner);
    }

    function _domainOf(address verifier, uint256 chainId) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH, keccak256("Ledger AccessGrants"), keccak256("1"), chainId, verifier
            )
        );
    }

    /// @dev The EIP-712 digest of `g` for `verifier` on `chainId`.
    function _digestOf(IAccessGrants.Grant memory g, address verifier, uint256 chainId)
        internal
        pure
        returns (bytes32)
    {
        bytes memory head = abi.encode(
            GRANT_TYPE, g.datasetId, g.grantor, g.grantee, g.algorithmHash, g.purpose, g.validFrom
        );
        bytes memory tail = abi.encode(
            g.validUntil,
            g.maxUses,
            g.epsilonBudget,
            g.paymentToken,
            g.pricePerUse,
            g.nonce,
            g.deadline
        );
        bytes32 structHash = keccak256(bytes.concat(head, tail));
        return keccak256(abi.encodePacked("\x19\x01", _domainOf(verifier, chainId), structHash));
    }

    /// @dev The id `grants` gives `g` on the current chain.
    function _idOf(IAccessGrants.Grant memory g) internal view returns (bytes32) {
        return _digestOf(g, address(grants), block.chainid);
    }

    /// @dev A use that matches the grant's terms.
    function _useOf(IAccessGrants.Grant memory g, uint32 uses, uint64 epsilon)
        internal
        pure
        returns (IAccessGrants.Use memory)
    {
        return IAccessGrants.Use({
            consumer: g.grantee,
            algorithmHash: g.algorithmHash,
            purpose: g.purpose,
            uses: uses,
            epsilon: epsilon
        });
    }

    function _assertState(
        bytes32 id,
        uint256 uses,
        uint256 epsilon,
        uint256 epoch,
        uint256 issuedAt,
        IAccessGrants.Status status
    ) internal view {
        IAccessGrants.GrantState memory s = grants.stateOf(id);
        assertEq(s.uses, uses, "state.uses");
        assertEq(s.epsilonSpent, epsilon, "state.epsilonSpent");
        assertEq(s.ownerEpoch, epoch, "state.ownerEpoch");
        assertEq(s.issuedAt, issuedAt, "state.issuedAt");
        assertEq(uint256(s.status), uint256(status), "state.status");
    }

    function _becomeConsumer() internal {
        vm.prank(admin);
        grants.grantRole(CONSUMER, address(this));
    }

    function _transferDataset(address to) internal {
        address holder = registry.ownerOf(datasetId);
        vm.prank(holder);
        registry.transferFrom(holder, to, datasetId);
    }

    function _between(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        if (hi == type(uint256).max && lo == 0) return x;
        return lo + x % (hi - lo + 1);
    }

    function _invalidTerms(string memory field) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IAccessGrants.AccessGrantsInvalidTerms.selector, field);
    }
}

/// @notice AccessGrants: configuration, direct issue, terms, revoke, nonces and the catalog.
contract AccessGrantsTest is AccessGrantsBase {
    /* ------------------------------ configuration ------------------------------ */

    function test_constructor_SetsRolesAndRegistry() public view {
        assertEq(address(grants.registry()), address(registry), "registry");
        assertTrue(grants.hasRole(grants.DEFAULT_ADMIN_ROLE(), admin), "admin role");
        assertTrue(grants.hasRole(CATALOG, admin), "catalog role");
        assertTrue(grants.hasRole(CONSUMER, address(usage)), "ledger consumes");
        assertTrue(!grants.hasRole(CONSUMER, admin), "admin does not consume");
    }

    function test_constants_MatchSpec() public view {
        assertEq(MAX_PAYMENT, type(uint88).max, "MAX_PAYMENT");
        assertEq(grants.GRANT_TYPEHASH(), GRANT_TYPE, "GRANT_TYPEHASH");
        assertEq(grants.ANY_CATALOG_ALGORITHM(), ANY_CATALOG, "ANY_CATALOG_ALGORITHM");
        assertEq(grants.CONSUMER_ROLE(), CONSUMER, "CONSUMER_ROLE");
        assertEq(grants.CATALOG_ROLE(), CATALOG, "CATALOG_ROLE");
    }

    function test_DOMAIN_SEPARATOR_BindsChainAndContract() public {
        assertEq(grants.DOMAIN_SEPARATOR(), _domainOf(address(grants), block.chainid), "domain");
        vm.chainId(7);
        assertEq(grants.DOMAIN_SEPARATOR(), _domainOf(address(grants), 7), "domain on chain 7");
    }

    function test_eip712Domain_ReturnsLedgerDomain() public view {
        (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        ) = grants.eip712Domain();
        assertEq(uint256(uint8(fields)), 0x0f, "fields");
        assertEq(keccak256(bytes(name)), keccak256("Ledger AccessGrants"), "name");
        assertEq(keccak256(bytes(version)), keccak256("1"), "version");
        assertEq(chainId, block.chainid, "chainId");
        assertEq(verifyingContract, address(grants), "verifyingContract");
        assertEq(salt, bytes32(0), "salt");
        assertEq(extensions.length, 0, "extensions");
    }

    function test_grantId_IsEIP712Digest() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        assertEq(grants.grantId(g), _idOf(g), "grantId");
    }

    function testFuzz_grantId_IsEIP712Digest(IAccessGrants.Grant memory g) public view {
        assertEq(grants.grantId(g), _idOf(g), "grantId");
    }

    function test_stateOf_IsZeroForUnknownGrant() public view {
        _assertState(keccak256("nothing"), 0, 0, 0, 0, IAccessGrants.Status.None);
    }

    /* ---------------------------------- issue ---------------------------------- */

    function test_issue_StoresActiveGrant() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes32 expected = _idOf(g);
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantIssued(expected, datasetId, consumer, g, 0, false);
        bytes32 id = _issue(g);
        assertEq(id, expected, "id");
        _assertState(id, 0, 0, 0, block.timestamp, IAccessGrants.Status.Active);
        assertTrue(grants.isNonceUsed(owner, g.nonce), "nonce used");
        assertTrue(!grants.isNonceUsed(owner, g.nonce + 1), "next nonce free");
    }

    function test_issue_BindsCurrentOwnerEpoch() public {
        _transferDataset(other);
        IAccessGrants.Grant memory g = _terms(datasetId, other);
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantIssued(_idOf(g), datasetId, consumer, g, 1, false);
        bytes32 id = _issue(g);
        _assertState(id, 0, 0, 1, block.timestamp, IAccessGrants.Status.Active);
    }

    function test_issue_Revert_WhenCallerNotGrantor() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsUnauthorized.selector, other, owner)
        );
        vm.prank(other);
        grants.issue(g);
    }

    function test_issue_Revert_WhenGrantorNotDatasetOwner() public {
        IAccessGrants.Grant memory g = _terms(datasetId, other);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsNotDatasetOwner.selector, datasetId, other, owner
            )
        );
        _issue(g);
    }

    function test_issue_Revert_WhenFormerOwnerAfterTransfer() public {
        _transferDataset(other);
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsNotDatasetOwner.selector, datasetId, owner, other
            )
        );
        _issue(g);
    }

    function test_issue_Revert_WhenUnknownDataset() public {
        IAccessGrants.Grant memory g = _terms(99, owner);
        vm.expectRevert(
            abi.encodeWithSelector(IDataRegistry.DataRegistryUnknownDataset.selector, 99)
        );
        _issue(g);
    }

    function test_issue_Revert_WhenExpiredDeadline() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.deadline = block.timestamp - 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsExpiredDeadline.selector, g.deadline, block.timestamp
            )
        );
        _issue(g);
    }

    function test_issue_AcceptsDeadlineEqualToNow() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.deadline = block.timestamp;
        bytes32 id = _issue(g);
        _assertState(id, 0, 0, 0, block.timestamp, IAccessGrants.Status.Active);
    }

    function test_issue_Revert_WhenReusedNonce() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        _issue(g);
        IAccessGrants.Grant memory h = _terms(datasetId, owner);
        h.nonce = g.nonce;
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsNonceUsed.selector, owner, g.nonce)
        );
        _issue(h);
    }

    function test_issue_Revert_WhenSameGrantTwice() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        _issue(g);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsNonceUsed.selector, owner, g.nonce)
        );
        _issue(g);
    }

    function test_issue_Revert_WhenNonceInvalidated() public {
        vm.prank(owner);
        grants.invalidateNonces(10);
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.nonce = 9;
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsNonceUsed.selector, owner, 9)
        );
        _issue(g);
        g.nonce = 10;
        _assertState(_issue(g), 0, 0, 0, block.timestamp, IAccessGrants.Status.Active);
    }

    function testFuzz_issue_NonceIsSingleUse(uint256 nonce) public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.nonce = nonce;
        assertTrue(!grants.isNonceUsed(owner, nonce), "fresh");
        _issue(g);
        assertTrue(grants.isNonceUsed(owner, nonce), "used");
        assertTrue(!grants.isNonceUsed(other, nonce), "per grantor");
        if (nonce != type(uint256).max) {
            assertTrue(!grants.isNonceUsed(owner, nonce + 1), "neighbour above");
        }
        if (nonce != 0) assertTrue(!grants.isNonceUsed(owner, nonce - 1), "neighbour below");
        g.pricePerUse = 0;
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsNonceUsed.selector, owner, nonce)
        );
        _issue(g);
    }

    /* ------------------------------- grant terms ------------------------------- */

    function test_issue_Revert_WhenZeroGrantee() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.grantee = address(0);
        vm.expectRevert(_invalidTerms("grantee"));
        _issue(g);
    }

    function test_issue_Revert_WhenZeroAlgorithm() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.algorithmHash = bytes32(0);
        vm.expectRevert(_invalidTerms("algorithmHash"));
        _issue(g);
    }

    function test_issue_Revert_WhenZeroPurpose() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.purpose = bytes32(0);
        vm.expectRevert(_invalidTerms("purpose"));
        _issue(g);
    }

    function test_issue_Revert_WhenZeroMaxUses() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.maxUses = 0;
        vm.expectRevert(_invalidTerms("maxUses"));
        _issue(g);
    }

    function test_issue_Revert_WhenValidUntilNotAfterValidFrom() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.validFrom = uint64(block.timestamp + 1 days);
        g.validUntil = g.validFrom;
        vm.expectRevert(_invalidTerms("validUntil"));
        _issue(g);
    }

    function test_issue_Revert_WhenValidUntilInPast() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.validFrom = uint64(block.timestamp - 2 days);
        g.validUntil = uint64(block.timestamp - 1);
        vm.expectRevert(_invalidTerms("validUntil"));
        _issue(g);
    }

    function test_issue_Revert_WhenPriceAboveMaxPayment() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.pricePerUse = MAX_PAYMENT + 1;
        vm.expectRevert(_invalidTerms("pricePerUse"));
        _issue(g);
    }

    function test_issue_AcceptsBoundaryTerms() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.validFrom = 0;
        g.validUntil = uint64(block.timestamp);
        g.maxUses = 1;
        g.epsilonBudget = 0;
        g.pricePerUse = MAX_PAYMENT;
        g.paymentToken = address(token);
        _assertState(_issue(g), 0, 0, 0, block.timestamp, IAccessGrants.Status.Active);
    }

    function testFuzz_issue_RejectsInvalidWindow(uint64 validFrom, uint256 rawUntil) public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        // Any validUntil at or below validFrom, or before now, is invalid.
        uint256 ceiling = validFrom > block.timestamp - 1 ? validFrom : block.timestamp - 1;
        g.validFrom = validFrom;
        g.validUntil = uint64(_between(rawUntil, 0, ceiling));
        vm.expectRevert(_invalidTerms("validUntil"));
        _issue(g);
    }

    function testFuzz_issue_AcceptsValidWindow(uint256 rawFrom, uint256 rawUntil) public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.validFrom = uint64(_between(rawFrom, 0, type(uint64).max - 1));
        uint256 floor = g.validFrom + 1 > block.timestamp ? g.validFrom + 1 : block.timestamp;
        g.validUntil = uint64(_between(rawUntil, floor, type(uint64).max));
        _assertState(_issue(g), 0, 0, 0, block.timestamp, IAccessGrants.Status.Active);
    }

    /* --------------------------------- revoke ---------------------------------- */

    function test_revoke_ByGrantor() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes32 id = _issue(g);
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantRevoked(id, datasetId, owner);
        vm.prank(owner);
        grants.revoke(g);
        _assertState(id, 0, 0, 0, block.timestamp, IAccessGrants.Status.Revoked);
        vm.expectRevert(abi.encodeWithSelector(IAccessGrants.AccessGrantsRevoked.selector, id));
        grants.checkUse(g, _useOf(g, 1, 0));
    }

    function test_revoke_ByCurrentDatasetOwner() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes32 id = _issue(g);
        _transferDataset(other);
        vm.expectEmit(address(grants));
        emit IAccessGrants.GrantRevoked(id, datasetId, other);
        vm.prank(other);
        grants.revoke(g);
        _assertState(id, 0, 0, 0, block.timestamp, IAccessGrants.Status.Revoked);
    }

    function test_revoke_ByFormerOwnerWhoGranted() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes32 id = _issue(g);
        _transferDataset(other);
        vm.prank(owner);
        grants.revoke(g);
        _assertState(id, 0, 0, 0, block.timestamp, IAccessGrants.Status.Revoked);
    }

    function test_revoke_Revert_WhenStranger() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        _issue(g);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsUnauthorized.selector, stranger, owner)
        );
        vm.prank(stranger);
        grants.revoke(g);
    }

    function test_revoke_Revert_WhenGrantee() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        _issue(g);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsUnauthorized.selector, consumer, owner)
        );
        vm.prank(consumer);
        grants.revoke(g);
    }

    function test_revoke_Revert_WhenUnknownGrant() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessGrants.AccessGrantsUnknownGrant.selector, _idOf(g))
        );
        vm.prank(owner);
        grants.revoke(g);
    }

    function test_revoke_Revert_WhenAlreadyRevoked() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes32 id = _issue(g);
        vm.startPrank(owner);
        grants.revoke(g);
        vm.expectRevert(abi.encodeWithSelector(IAccessGrants.AccessGrantsRevoked.selector, id));
        grants.revoke(g);
        vm.stopPrank();
    }

    /* ---------------------------- invalidateNonces ----------------------------- */

    function test_invalidateNonces_RevokesIssuedAndUnissued() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner); // nonce 0
        bytes32 id = _issue(g);
        vm.expectEmit(address(grants));
        emit IAccessGrants.NoncesInvalidated(owner, 5);
        vm.prank(owner);
        grants.invalidateNonces(5);
        assertEq(grants.minNonceOf(owner), 5, "minNonce");
        assertTrue(grants.isNonceUsed(owner, 4), "below minimum");
        assertTrue(!grants.isNonceUsed(owner, 5), "at minimum");
        assertEq(grants.minNonceOf(other), 0, "per grantor");
        // The issued grant is dead although its stored status is still Active.
        _assertState(id, 0, 0, 0, block.timestamp, IAccessGrants.Status.Active);
        vm.expectRevert(abi.encodeWithSelector(IAccessGrants.AccessGrantsRevoked.selector, id));
        grants.checkUse(g, _useOf(g, 1, 0));
    }

    function test_invalidateNonces_DoesNotTouchOtherGrantors() public {
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        bytes32 id = _issue(g);
        vm.prank(other);
        grants.invalidateNonces(100);
        (bytes32 checked,) = grants.checkUse(g, _useOf(g, 1, 0));
        assertEq(checked, id, "still usable");
    }

    function test_invalidateNonces_Revert_WhenNotIncreasing() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsNonceNotIncreasing.selector, owner, 0, 0
            )
        );
        vm.prank(owner);
        grants.invalidateNonces(0);

        vm.prank(owner);
        grants.invalidateNonces(7);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsNonceNotIncreasing.selector, owner, 7, 7
            )
        );
        vm.prank(owner);
        grants.invalidateNonces(7);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessGrants.AccessGrantsNonceNotIncreasing.selector, owner, 7, 6
            )
        );
        vm.prank(owner);
        grants.invalidateNonces(6);
    }

    function testFuzz_invalidateNonces_SetsMinimum(uint256 minNonce, uint256 nonce) public {
        minNonce = _between(minNonce, 1, type(uint256).max);
        vm.prank(owner);
        grants.invalidateNonces(minNonce);
        assertEq(grants.minNonceOf(owner), minNonce, "minNonce");
        assertTrue(grants.isNonceUsed(owner, nonce) == (nonce < minNonce), "isNonceUsed");
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.nonce = nonce;
        if (nonce < minNonce) {
            vm.expectRevert(
                abi.encodeWithSelector(IAccessGrants.AccessGrantsNonceUsed.selector, owner, nonce)
            );
        }
        _issue(g);
    }

    /* --------------------------------- catalog --------------------------------- */

    function test_setCatalogAlgorithm_ListsAndDelists() public {
        bytes32 algo = keccak256("algorithm:histogram:v2");
        vm.expectEmit(address(grants));
        emit IAccessGrants.CatalogAlgorithmSet(algo, true);
        vm.prank(admin);
        grants.setCatalogAlgorithm(algo, true);
        assertTrue(grants.isCatalogAlgorithm(algo), "listed");

        vm.expectEmit(address(grants));
        emit IAccessGrants.CatalogAlgorithmSet(algo, false);
        vm.prank(admin);
        grants.setCatalogAlgorithm(algo, false);
        assertTrue(!grants.isCatalogAlgorithm(algo), "delisted");
    }

    function test_setCatalogAlgorithm_Revert_WhenNotCatalogRole() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, other, CATALOG
            )
        );
        vm.prank(other);
        grants.setCatalogAlgorithm(ALGO, true);
    }

    function test_setCatalogAlgorithm_Revert_WhenZeroHash() public {
        vm.expectRevert(_invalidTerms("algorithmHash"));
        vm.prank(admin);
        grants.setCatalogAlgorithm(bytes32(0), true);
    }

    function test_setCatalogAlgorithm_Revert_WhenAnyCatalogSentinel() public {
        vm.expectRevert(_invalidTerms("algorithmHash"));
        vm.prank(admin);
        grants.setCatalogAlgorithm(ANY_CATALOG, true);
    }

    function test_setCatalogAlgorithm_ByDelegatedCatalogRole() public {
        vm.prank(admin);
        grants.grantRole(CATALOG, other);
        vm.prank(other);
        grants.setCatalogAlgorithm(ALGO, true);
        assertTrue(grants.isCatalogAlgorithm(ALGO), "listed by delegate");
    }
}

/// @notice A second deployment must not share state or ids with the first.
contract AccessGrantsDeploymentTest is AccessGrantsBase {
    function test_grantId_DiffersPerDeployment() public {
        AccessGrants second = new AccessGrants(registry, admin);
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        assertEq(second.grantId(g), _digestOf(g, address(second), block.chainid), "second id");
        assertTrue(second.grantId(g) != grants.grantId(g), "ids differ");
        _issue(g);
        assertTrue(!second.isNonceUsed(owner, g.nonce), "nonces are per deployment");
    }
}

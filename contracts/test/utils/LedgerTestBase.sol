// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessGrants} from "../../src/AccessGrants.sol";
import {DataRegistry} from "../../src/DataRegistry.sol";
import {RevenueVault} from "../../src/RevenueVault.sol";
import {UsageLedger} from "../../src/UsageLedger.sol";
import {IAccessGrants} from "../../src/interfaces/IAccessGrants.sol";
import {IDataRegistry} from "../../src/interfaces/IDataRegistry.sol";
import {IUsageLedger} from "../../src/interfaces/IUsageLedger.sol";
import {MockToken} from "./Mocks.sol";
import {Vm} from "./Vm.sol";

/// @notice Assertions without forge-std: each failure names what differed.
abstract contract Assertions {
    error AssertionFailed(string what, bytes32 left, bytes32 right);

    function assertEq(uint256 a, uint256 b, string memory what) internal pure {
        if (a != b) revert AssertionFailed(what, bytes32(a), bytes32(b));
    }

    function assertEq(bytes32 a, bytes32 b, string memory what) internal pure {
        if (a != b) revert AssertionFailed(what, a, b);
    }

    function assertEq(address a, address b, string memory what) internal pure {
        if (a != b) {
            revert AssertionFailed(what, bytes32(uint256(uint160(a))), bytes32(uint256(uint160(b))));
        }
    }

    function assertTrue(bool c, string memory what) internal pure {
        if (!c) revert AssertionFailed(what, bytes32(0), bytes32(uint256(1)));
    }

    function assertLe(uint256 a, uint256 b, string memory what) internal pure {
        if (a > b) revert AssertionFailed(what, bytes32(a), bytes32(b));
    }

    function assertGe(uint256 a, uint256 b, string memory what) internal pure {
        if (a < b) revert AssertionFailed(what, bytes32(a), bytes32(b));
    }
}

/// @notice Deploys and wires the four contracts as `ledger deploy` does, with named actors.
abstract contract LedgerTestBase is Assertions {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant OWNER_KEY = 0xA11CE;
    uint256 internal constant OTHER_KEY = 0xB0B;
    uint256 internal constant FEE_BPS = 250;
    uint40 internal constant REFUND_DELAY = 1 days;
    bytes32 internal constant ALGO = keccak256("algorithm:dp-mean:v1");
    bytes32 internal constant PURPOSE = keccak256("research.oncology");

    address internal admin = address(0xAD);
    address internal owner;
    address internal other;
    address internal executor = address(0xE1);
    address internal consumer = address(0xC0);
    address internal settler = address(0x5E);
    address internal feeRecipient = address(0xFEE);

    DataRegistry internal registry;
    AccessGrants internal grants;
    RevenueVault internal vault;
    UsageLedger internal usage;
    MockToken internal token;

    uint256 internal nextNonce;

    function setUp() public virtual {
        vm.warp(1_800_000_000);
        owner = vm.addr(OWNER_KEY);
        other = vm.addr(OTHER_KEY);
        registry = new DataRegistry(admin);
        grants = new AccessGrants(registry, admin);
        vault = new RevenueVault(admin, uint16(FEE_BPS), feeRecipient, REFUND_DELAY);
        usage = new UsageLedger(registry, grants, vault);
        token = new MockToken();
        vm.startPrank(admin);
        grants.grantRole(grants.CONSUMER_ROLE(), address(usage));
        vault.grantRole(vault.CAPTURER_ROLE(), address(usage));
        vault.grantRole(vault.SETTLER_ROLE(), settler);
        vault.grantRole(vault.REFUNDER_ROLE(), executor);
        vm.stopPrank();
        vm.deal(consumer, 1000 ether);
        token.mint(consumer, 1_000_000 ether);
    }

    function _version(bytes32 seed) internal pure returns (IDataRegistry.Version memory) {
        return IDataRegistry.Version({
            commitment: keccak256(abi.encode(seed, "rows")),
            contributorsRoot: keccak256(abi.encode(seed, "contributors")),
            schemaHash: keccak256(abi.encode(seed, "schema")),
            metadataHash: keccak256(abi.encode(seed, "metadata"))
        });
    }

    /// @dev Registers a dataset as `who` and allows `executor` on it.
    function _register(address who) internal returns (uint256 id) {
        vm.startPrank(who);
        id = registry.register(_version(bytes32(registry.datasetCount() + 1)), 7000, "ipfs://meta");
        registry.setExecutor(id, executor, true);
        vm.stopPrank();
    }

    /// @dev Default terms: one algorithm, 10 uses, 1 epsilon, 0.01 ETH per use, valid 30 days.
    function _terms(uint256 datasetId, address grantor)
        internal
        returns (IAccessGrants.Grant memory g)
    {
        g = IAccessGrants.Grant({
            datasetId: datasetId,
            grantor: grantor,
            grantee: consumer,
            algorithmHash: ALGO,
            purpose: PURPOSE,
            validFrom: uint64(block.timestamp),
            validUntil: uint64(block.timestamp + 30 days),
            maxUses: 10,
            epsilonBudget: 1_000_000,
            paymentToken: address(0),
            pricePerUse: 0.01 ether,
            nonce: nextNonce++,
            deadline: block.timestamp + 1 hours
        });
    }

    function _sign(uint256 key, IAccessGrants.Grant memory g) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, grants.grantId(g));
        return abi.encodePacked(r, s, v);
    }

    function _issue(IAccessGrants.Grant memory g) internal returns (bytes32 id) {
        vm.prank(g.grantor);
        id = grants.issue(g);
    }

    function _use(IAccessGrants.Grant memory g, uint32 uses, uint64 epsilon)
        internal
        pure
        returns (IUsageLedger.GrantUse[] memory list)
    {
        list = new IUsageLedger.GrantUse[](1);
        list[0] = IUsageLedger.GrantUse({grant: g, datasetVersion: 1, uses: uses, epsilon: epsilon});
    }

    function _job(bytes32 jobId) internal view returns (IUsageLedger.Job memory) {
        return IUsageLedger.Job({
            jobId: jobId,
            consumer: consumer,
            algorithmHash: ALGO,
            purpose: PURPOSE,
            receiptHash: keccak256(abi.encode("receipt", jobId))
        });
    }

    /// @dev Escrows the price of `uses` uses of `g` for `jobId` as the consumer.
    function _escrow(bytes32 jobId, bytes32 grantId, IAccessGrants.Grant memory g, uint32 uses)
        internal
        returns (bytes32 escrowId)
    {
        uint256 amount = g.pricePerUse * uses;
        vm.startPrank(consumer);
        if (g.paymentToken == address(0)) {
            escrowId = vault.escrow{value: amount}(jobId, grantId, address(0), amount);
        } else {
            MockToken(g.paymentToken).approve(address(vault), amount);
            escrowId = vault.escrow(jobId, grantId, g.paymentToken, amount);
        }
        vm.stopPrank();
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessGrants} from "../src/interfaces/IAccessGrants.sol";
import {IRevenueVault, MAX_PAYMENT} from "../src/interfaces/IRevenueVault.sol";
import {IUsageLedger} from "../src/interfaces/IUsageLedger.sol";
import {UsageLedgerBase} from "./utils/UsageLedgerBase.sol";

/// @notice UsageLedger: recording jobs (happy paths), batch anchors, views and payment fuzzing.
/// Revert paths of `recordUsage` are in UsageLedger.reverts.t.sol.
contract UsageLedgerTest is UsageLedgerBase {
    uint256 internal constant HELD = uint256(IRevenueVault.EscrowStatus.Held);
    uint256 internal constant CAPTURED = uint256(IRevenueVault.EscrowStatus.Captured);

    /*//////////////////////////////////////////////////////////////
                              CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    function test_constructor_WiresContracts() public view {
        assertEq(address(usage.registry()), address(registry), "registry");
        assertEq(address(usage.grants()), address(grants), "grants");
        assertEq(address(usage.vault()), address(vault), "vault");
        assertEq(usage.MAX_GRANTS_PER_JOB(), 32, "max grants");
    }

    /// @dev Nothing in the ledger is configurable: it has no admin and no AccessControl surface.
    function test_constructor_HasNoAdmin() public view {
        (bool ok,) = address(usage).staticcall(abi.encodeWithSignature("DEFAULT_ADMIN_ROLE()"));
        assertTrue(!ok, "no DEFAULT_ADMIN_ROLE");
        (ok,) = address(usage)
            .staticcall(abi.encodeWithSignature("hasRole(bytes32,address)", bytes32(0), admin));
        assertTrue(!ok, "no hasRole");
    }

    /*//////////////////////////////////////////////////////////////
                         RECORD USAGE: ONE GRANT
    //////////////////////////////////////////////////////////////*/

    function test_recordUsage_RecordsEthJob() public {
        (IAccessGrants.Grant memory g, bytes32 gid) =
            _grantOn(datasetId, owner, address(0), 0.01 ether);
        bytes32 escrowId = _escrow(JOB, gid, g, 3);
        IUsageLedger.Job memory job = _job(JOB);
        IUsageLedger.GrantUse[] memory list = _use(g, 3, EPS);
        uint256 due = 0.03 ether;
        uint256 fee = due * FEE_BPS / 10_000;

        _expectRecord(job, gid, list);
        _record(job, list);

        assertEq(usage.receiptOf(JOB), job.receiptHash, "receipt");
        IAccessGrants.GrantState memory s = grants.stateOf(gid);
        assertEq(s.uses, 3, "grant uses");
        assertEq(s.epsilonSpent, EPS, "grant epsilon");
        assertEq(_status(escrowId), CAPTURED, "escrow captured");
        assertEq(vault.revenueOf(datasetId, address(0)), due - fee, "revenue");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(net, due - fee, "captured net");
        assertEq(fees, fee, "fees");
        assertEq(address(vault).balance, due, "vault balance");
    }

    function test_recordUsage_RecordsTokenJob() public {
        (IAccessGrants.Grant memory g, bytes32 gid) =
            _grantOn(datasetId, owner, address(token), 25e18);
        bytes32 escrowId = _escrow(JOB, gid, g, 4);
        IUsageLedger.Job memory job = _job(JOB);
        IUsageLedger.GrantUse[] memory list = _use(g, 4, 0);
        uint256 due = 100e18;
        uint256 fee = 2.5e18;

        _expectRecord(job, gid, list);
        _record(job, list);

        assertEq(usage.receiptOf(JOB), job.receiptHash, "receipt");
        assertEq(grants.stateOf(gid).uses, 4, "grant uses");
        assertEq(_status(escrowId), CAPTURED, "escrow captured");
        assertEq(vault.revenueOf(datasetId, address(token)), due - fee, "revenue");
        assertEq(vault.revenueOf(datasetId, address(0)), 0, "no ETH revenue");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(token));
        assertEq(net, due - fee, "captured net");
        assertEq(fees, fee, "fees");
        assertEq(token.balanceOf(address(vault)), due, "vault balance");
    }

    function test_recordUsage_FreeGrantNeedsNoEscrow() public {
        (IAccessGrants.Grant memory g, bytes32 gid) = _grantOn(datasetId, owner, address(0), 0);
        IUsageLedger.Job memory job = _job(JOB);
        IUsageLedger.GrantUse[] memory list = _use(g, 10, EPS);

        _expectRecord(job, gid, list);
        _record(job, list);

        assertEq(usage.receiptOf(JOB), job.receiptHash, "receipt");
        assertEq(grants.stateOf(gid).uses, 10, "grant uses");
        assertEq(_status(vault.escrowIdOf(JOB, gid, consumer)), 0, "no escrow");
        (uint256 net, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(net + fees, 0, "vault books untouched");
        assertEq(address(vault).balance, 0, "vault balance");
    }

    function test_recordUsage_RecordsOnEveryPublishedVersion() public {
        vm.prank(owner);
        registry.publishVersion(datasetId, _version("v2"), "ipfs://v2");
        (IAccessGrants.Grant memory g, bytes32 gid) = _grantOn(datasetId, owner, address(0), 0);
        IUsageLedger.GrantUse[] memory list = new IUsageLedger.GrantUse[](1);

        list[0] = _useOf(g, 2, 1, 0);
        vm.expectEmit(address(usage));
        emit IUsageLedger.UsageRecorded(JOB, gid, datasetId, 2, 1, 0, address(0), 0, 0);
        _record(_job(JOB), list);

        // An older version stays usable (reproducing a past computation).
        bytes32 job2 = keccak256("job-2");
        list[0] = _useOf(g, 1, 1, 0);
        vm.expectEmit(address(usage));
        emit IUsageLedger.UsageRecorded(job2, gid, datasetId, 1, 1, 0, address(0), 0, 0);
        _record(_job(job2), list);
        assertEq(grants.stateOf(gid).uses, 2, "grant uses");
    }

    function test_recordUsage_AnyAllowedExecutorMayRecord() public {
        address executor2 = address(0xE2);
        vm.prank(owner);
        registry.setExecutor(datasetId, executor2, true);
        (IAccessGrants.Grant memory g,) = _grantOn(datasetId, owner, address(0), 0);
        IUsageLedger.Job memory job = _job(JOB);
        vm.expectEmit(address(usage));
        emit IUsageLedger.JobRecorded(JOB, executor2, consumer, ALGO, PURPOSE, job.receiptHash, 1);
        vm.prank(executor2);
        usage.recordUsage(job, _use(g, 1, 0));
        assertEq(usage.receiptOf(JOB), job.receiptHash, "receipt");
    }

    /*//////////////////////////////////////////////////////////////
                     RECORD USAGE: MULTI-OWNER JOBS
    //////////////////////////////////////////////////////////////*/

    /// @dev One job over three datasets of three hospitals, paid in ETH, the token and ETH.
    function test_recordUsage_RecordsMultiOwnerJob() public {
        uint256[3] memory ids = [datasetId, _register(other), _register(hospitalC)];
        address[3] memory owners = [owner, other, hospitalC];
        address[3] memory payTokens = [address(0), address(token), address(0)];
        uint256[3] memory prices = [uint256(0.01 ether), 3e18, 0.5 ether];
        uint32[3] memory useCounts = [uint32(2), 5, 1];

        IUsageLedger.GrantUse[] memory list = new IUsageLedger.GrantUse[](3);
        bytes32[] memory gids = new bytes32[](3);
        bytes32[3] memory escrowIds;
        for (uint256 i = 0; i < 3; ++i) {
            IAccessGrants.Grant memory g;
            (g, gids[i]) = _grantOn(ids[i], owners[i], payTokens[i], prices[i]);
            escrowIds[i] = _escrow(JOB, gids[i], g, useCounts[i]);
            list[i] = _useOf(g, 1, useCounts[i], uint64(EPS * (i + 1)));
        }
        IUsageLedger.Job memory job = _job(JOB);

        _expectRecord(job, gids, list);
        _record(job, list);

        assertEq(usage.receiptOf(JOB), job.receiptHash, "receipt");
        for (uint256 i = 0; i < 3; ++i) {
            _assertCaptured(list[i], gids[i], escrowIds[i]);
        }
        // ETH: 2 x 0.01 + 1 x 0.5 = 0.52 ETH, fees 0.0005 + 0.0125; token: 5 x 3 = 15, fee 0.375.
        (uint256 net, uint256 fees) = vault.tokenTotals(address(0));
        assertEq(net, 0.507 ether, "ETH net");
        assertEq(fees, 0.013 ether, "ETH fees");
        assertEq(address(vault).balance, 0.52 ether, "ETH balance");
        (net, fees) = vault.tokenTotals(address(token));
        assertEq(net, 14.625e18, "token net");
        assertEq(fees, 0.375e18, "token fees");
        assertEq(token.balanceOf(address(vault)), 15e18, "token balance");
    }

    function _assertCaptured(IUsageLedger.GrantUse memory u, bytes32 gid, bytes32 escrowId)
        internal
        view
    {
        uint256 due = u.grant.pricePerUse * u.uses;
        assertEq(_status(escrowId), CAPTURED, "escrow captured");
        assertEq(grants.stateOf(gid).uses, u.uses, "grant uses");
        assertEq(grants.stateOf(gid).epsilonSpent, u.epsilon, "grant epsilon");
        assertEq(
            vault.revenueOf(u.grant.datasetId, u.grant.paymentToken),
            due - due * FEE_BPS / 10_000,
            "dataset revenue"
        );
    }

    function test_recordUsage_MixesFreeAndPricedGrants() public {
        uint256 id2 = _register(other);
        (IAccessGrants.Grant memory paid, bytes32 paidId) =
            _grantOn(datasetId, owner, address(0), 1 ether);
        (IAccessGrants.Grant memory free, bytes32 freeId) = _grantOn(id2, other, address(0), 0);
        bytes32 escrowId = _escrow(JOB, paidId, paid, 1);
        IUsageLedger.GrantUse[] memory list = new IUsageLedger.GrantUse[](2);
        list[0] = _useOf(free, 1, 1, 0);
        list[1] = _useOf(paid, 1, 1, 0);

        bytes32[] memory gids = new bytes32[](2);
        (gids[0], gids[1]) = (freeId, paidId);
        _expectRecord(_job(JOB), gids, list);
        _record(_job(JOB), list);

        assertEq(_status(escrowId), CAPTURED, "paid escrow captured");
        assertEq(
            _status(vault.escrowIdOf(JOB, freeId, consumer)), 0, "no escrow for the free grant"
        );
        assertEq(vault.revenueOf(datasetId, address(0)), 0.975 ether, "paid revenue");
        assertEq(vault.revenueOf(id2, address(0)), 0, "free revenue");
    }

    function test_recordUsage_AcceptsMaxGrantsPerJob() public {
        uint256 max = usage.MAX_GRANTS_PER_JOB();
        IUsageLedger.GrantUse[] memory list = new IUsageLedger.GrantUse[](max);
        bytes32[] memory gids = new bytes32[](max);
        for (uint256 i = 0; i < max; ++i) {
            IAccessGrants.Grant memory g;
            (g, gids[i]) = _grantOn(datasetId, owner, address(0), 0);
            list[i] = _useOf(g, 1, 1, 0);
        }
        _expectRecord(_job(JOB), gids, list);
        _record(_job(JOB), list);
        for (uint256 i = 0; i < max; ++i) {
            assertEq(grants.stateOf(gids[i]).uses, 1, "every grant consumed");
        }
    }

    /*//////////////////////////////////////////////////////////////
                              ANCHOR BATCH
    //////////////////////////////////////////////////////////////*/

    function test_anchorBatch_StoresAnchor() public {
        bytes32 root = keccak256("batch-1");
        vm.warp(1_900_000_000);
        vm.expectEmit(address(usage));
        emit IUsageLedger.BatchAnchored(root, executor, 42);
        vm.prank(executor);
        usage.anchorBatch(root, 42);

        IUsageLedger.Anchor memory a = usage.anchorOf(executor, root);
        assertEq(a.executor, executor, "executor");
        assertEq(a.anchoredAt, 1_900_000_000, "anchoredAt");
        assertEq(a.count, 42, "count");
        assertEq(usage.anchorOf(other, root).executor, address(0), "nobody else's anchor");
    }

    function test_anchorBatch_StoresBatchesIndependently() public {
        vm.prank(executor);
        usage.anchorBatch(keccak256("batch-1"), 1);
        vm.warp(block.timestamp + 1 hours);
        vm.prank(other);
        usage.anchorBatch(keccak256("batch-2"), type(uint32).max);

        IUsageLedger.Anchor memory a = usage.anchorOf(executor, keccak256("batch-1"));
        assertEq(a.executor, executor, "first executor");
        assertEq(a.count, 1, "first count");
        assertEq(a.anchoredAt, block.timestamp - 1 hours, "first time");
        a = usage.anchorOf(other, keccak256("batch-2"));
        assertEq(a.executor, other, "second executor");
        assertEq(a.count, type(uint32).max, "second count");
        assertEq(a.anchoredAt, block.timestamp, "second time");
    }

    function test_anchorBatch_Revert_WhenRootZero() public {
        vm.expectRevert(abi.encodeWithSelector(IUsageLedger.UsageLedgerZeroHash.selector, "root"));
        vm.prank(executor);
        usage.anchorBatch(bytes32(0), 1);
    }

    function test_anchorBatch_Revert_WhenBatchEmpty() public {
        vm.expectRevert(abi.encodeWithSelector(IUsageLedger.UsageLedgerEmptyBatch.selector));
        vm.prank(executor);
        usage.anchorBatch(keccak256("batch"), 0);
    }

    function test_anchorBatch_Revert_WhenRootAnchored() public {
        bytes32 root = keccak256("batch");
        vm.prank(executor);
        usage.anchorBatch(root, 3);
        vm.expectRevert(
            abi.encodeWithSelector(IUsageLedger.UsageLedgerBatchExists.selector, executor, root)
        );
        vm.prank(executor);
        usage.anchorBatch(root, 4);
        assertEq(usage.anchorOf(executor, root).count, 3, "first anchor kept");
    }

    /// @dev Anchors are per executor: anyone who sees an executor's root and anchors it first gets
    /// an anchor of their own, which neither blocks the executor's anchor nor is attributed to it.
    function test_anchorBatch_FrontRunByAnyoneDoesNotBlockExecutor() public {
        bytes32 root = keccak256("executor batch");
        vm.prank(other);
        usage.anchorBatch(root, 1);
        vm.warp(block.timestamp + 1);

        vm.expectEmit(address(usage));
        emit IUsageLedger.BatchAnchored(root, executor, 10);
        vm.prank(executor);
        usage.anchorBatch(root, 10);

        IUsageLedger.Anchor memory mine = usage.anchorOf(executor, root);
        assertEq(mine.executor, executor, "executor's anchor");
        assertEq(mine.count, 10, "executor's count");
        assertEq(mine.anchoredAt, block.timestamp, "executor's time");
        IUsageLedger.Anchor memory theirs = usage.anchorOf(other, root);
        assertEq(theirs.executor, other, "front-runner's own anchor");
        assertEq(theirs.count, 1, "front-runner's count");
        assertEq(theirs.anchoredAt, block.timestamp - 1, "front-runner's time");
    }

    /// @dev Each executor still anchors a root once: the front-runner cannot anchor again either,
    /// and its refusal names it.
    function test_anchorBatch_Revert_WhenSameExecutorAnchorsSharedRootAgain() public {
        bytes32 root = keccak256("shared batch");
        vm.prank(other);
        usage.anchorBatch(root, 1);
        vm.prank(executor);
        usage.anchorBatch(root, 2);
        vm.expectRevert(
            abi.encodeWithSelector(IUsageLedger.UsageLedgerBatchExists.selector, other, root)
        );
        vm.prank(other);
        usage.anchorBatch(root, 3);
        assertEq(usage.anchorOf(other, root).count, 1, "front-runner's anchor kept");
        assertEq(usage.anchorOf(executor, root).count, 2, "executor's anchor kept");
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    function test_receiptOf_ZeroWhenNotRecorded() public view {
        assertEq(usage.receiptOf(JOB), bytes32(0), "receipt");
    }

    function test_anchorOf_ZeroWhenNotAnchored() public view {
        IUsageLedger.Anchor memory a = usage.anchorOf(executor, keccak256("none"));
        assertEq(a.executor, address(0), "executor");
        assertEq(a.anchoredAt, 0, "anchoredAt");
        assertEq(a.count, 0, "count");
    }

    /*//////////////////////////////////////////////////////////////
                                  FUZZ
    //////////////////////////////////////////////////////////////*/

    /// @dev Captured net + fee == due exactly; revenue and the vault's balance add up.
    function testFuzz_recordUsage_PaymentArithmetic(
        uint256 price,
        uint32 uses,
        uint16 feeBps,
        bool inToken
    ) public {
        feeBps = uint16(_within(feeBps, 0, vault.MAX_FEE_BPS()));
        uses = uint32(_within(uses, 1, type(uint32).max));
        price = _within(price, 1, MAX_PAYMENT / uses);
        vm.prank(admin);
        vault.setFee(feeBps, feeRecipient);

        address payToken = inToken ? address(token) : address(0);
        IAccessGrants.Grant memory g = _terms(datasetId, owner);
        g.maxUses = uses;
        g.paymentToken = payToken;
        g.pricePerUse = price;
        bytes32 gid = _issue(g);
        uint256 due = price * uses;
        vm.deal(consumer, due);
        token.mint(consumer, due);
        _escrow(JOB, gid, g, uses);

        _record(_job(JOB), _use(g, uses, 0));

        uint256 fee = due * feeBps / 10_000;
        (uint256 net, uint256 fees) = vault.tokenTotals(payToken);
        assertEq(fees, fee, "fee");
        assertEq(net + fees, due, "net + fee == due");
        assertEq(vault.revenueOf(datasetId, payToken), net, "revenue");
        uint256 balance = inToken ? token.balanceOf(address(vault)) : address(vault).balance;
        assertEq(balance, net + fees, "vault balance");

        assertEq(vault.withdrawFees(payToken), fee, "fees withdrawn");
        balance = inToken ? token.balanceOf(address(vault)) : address(vault).balance;
        assertEq(balance, net, "balance after fees");
        balance = inToken ? token.balanceOf(feeRecipient) : feeRecipient.balance;
        assertEq(balance, fee, "fee recipient paid");
    }

    /// @dev Any escrow that differs from the due amount stops the whole job.
    function testFuzz_recordUsage_Revert_WhenEscrowDiffersFromDue(uint88 escrowed) public {
        (IAccessGrants.Grant memory g, bytes32 gid) =
            _grantOn(datasetId, owner, address(token), 1e18);
        uint256 due = 3e18;
        escrowed = uint88(_within(escrowed, 1, MAX_PAYMENT));
        vm.assume(escrowed != due);
        token.mint(consumer, escrowed);
        vm.startPrank(consumer);
        token.approve(address(vault), escrowed);
        bytes32 escrowId = vault.escrow(JOB, gid, address(token), escrowed);
        vm.stopPrank();

        vm.expectRevert(
            abi.encodeWithSelector(
                IRevenueVault.RevenueVaultCaptureMismatch.selector,
                escrowId,
                address(token),
                uint256(escrowed),
                address(token),
                due
            )
        );
        _record(_job(JOB), _use(g, 3, 0));
        assertEq(_status(escrowId), HELD, "escrow still held");
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessGrants} from "../../src/interfaces/IAccessGrants.sol";
import {IRevenueVault} from "../../src/interfaces/IRevenueVault.sol";
import {IUsageLedger} from "../../src/interfaces/IUsageLedger.sol";
import {LedgerTestBase} from "../utils/LedgerTestBase.sol";
import {LedgerHandler} from "./handlers/LedgerHandler.sol";

/// @notice Invariants of the ledger as a whole, fuzzed through `LedgerHandler` (0xSplits style):
/// the handler drives registry, grants, usage and vault as owners, consumers, executors, the settler
/// and the admin, and keeps ghost tallies; these functions compare them with the real contracts.
/// @dev No forge-std: Foundry reads `targetContracts()` / `targetSelectors()` by name and runs every
/// `invariant_*` function after each call of a sequence. Profiles: default (64 runs x 64 calls) and
/// `ci` (256 runs x 100 calls).
contract LedgerInvariantsTest is LedgerTestBase {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    LedgerHandler internal handler;
    address[] internal _tokens;

    function setUp() public override {
        super.setUp();
        handler = new LedgerHandler(
            LedgerHandler.Deployment({
                registry: registry,
                grants: grants,
                vault: vault,
                usage: usage,
                token: token,
                admin: admin,
                executor: executor,
                settler: settler,
                feeRecipient: feeRecipient
            })
        );
        vm.label(address(handler), "LedgerHandler");
        _tokens.push(address(0));
        _tokens.push(address(token));
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @dev Listed more than once = called more often: the actions that lead to records and claims.
    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory s = new bytes4[](33);
        s[0] = LedgerHandler.registerDataset.selector;
        s[1] = LedgerHandler.setExecutor.selector;
        s[2] = LedgerHandler.publishVersion.selector;
        s[3] = LedgerHandler.transferAsset.selector;
        s[4] = LedgerHandler.issueGrant.selector;
        s[5] = LedgerHandler.issueGrant.selector;
        s[6] = LedgerHandler.issueGrant.selector;
        s[7] = LedgerHandler.issueGrant.selector;
        s[8] = LedgerHandler.issueGrant.selector;
        s[9] = LedgerHandler.revokeGrant.selector;
        s[10] = LedgerHandler.invalidateNonces.selector;
        s[11] = LedgerHandler.setCatalog.selector;
        s[12] = LedgerHandler.escrowPayment.selector;
        s[13] = LedgerHandler.escrowPayment.selector;
        s[14] = LedgerHandler.escrowPayment.selector;
        s[15] = LedgerHandler.escrowPayment.selector;
        s[16] = LedgerHandler.refundEscrow.selector;
        s[17] = LedgerHandler.recordUsage.selector;
        s[18] = LedgerHandler.recordUsage.selector;
        s[19] = LedgerHandler.recordUsage.selector;
        s[20] = LedgerHandler.recordUsage.selector;
        s[21] = LedgerHandler.recordUsage.selector;
        s[22] = LedgerHandler.recordUsage.selector;
        s[23] = LedgerHandler.publishEpoch.selector;
        s[24] = LedgerHandler.publishEpoch.selector;
        s[25] = LedgerHandler.claim.selector;
        s[26] = LedgerHandler.claim.selector;
        s[27] = LedgerHandler.claim.selector;
        s[28] = LedgerHandler.withdrawFees.selector;
        s[29] = LedgerHandler.setFee.selector;
        s[30] = LedgerHandler.warp.selector;
        s[31] = LedgerHandler.warp.selector;
        s[32] = LedgerHandler.anchorBatch.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector({addr: address(handler), selectors: s});
    }

    // ================================================================ invariants

    /// @notice 1. For ETH and the ERC-20, the vault holds at least what is escrowed plus what is
    /// still claimable plus the fees accrued, and every ghost tally matches the vault's books.
    function invariant_vaultHoldsEscrowsClaimableAndFees() public view {
        for (uint256 t = 0; t < _tokens.length; ++t) {
            address tok = _tokens[t];
            uint256 balance =
                tok == address(0) ? address(vault).balance : token.balanceOf(address(vault));
            (bool hasBook, uint256 bookHeld, uint256 net, uint256 fees) = _tokenTotals(tok);
            uint256 held = _heldInVault(tok);
            IRevenueVault.Distribution memory d = vault.distributionOf(tok);
            assertLe(d.totalClaimed, net, "solvency: claimed above captured net");
            assertGe(balance, held + (net - d.totalClaimed) + fees, "solvency: balance");
            if (hasBook) {
                assertEq(bookHeld, held, "tokenTotals.held vs held escrows");
                assertGe(balance, bookHeld + (net - d.totalClaimed) + fees, "solvency: book");
            }
            LedgerHandler.TokenGhost memory g = handler.tokenGhost(tok);
            assertEq(held, handler.ghostHeld(tok), "ghost: held");
            assertEq(net, g.capturedNet, "ghost: capturedNet");
            assertEq(g.capturedGross, g.capturedNet + g.feesTotal, "ghost: gross = net + fees");
            assertEq(fees, g.feesTotal - g.feesWithdrawn, "ghost: feesAccrued");
            assertEq(d.totalClaimed, g.claimed, "ghost: totalClaimed");
            assertEq(d.publishedTotal, g.published, "ghost: publishedTotal");
            assertEq(d.epoch, g.epoch, "ghost: epoch");
            assertEq(
                balance,
                g.escrowed - g.refunded - g.claimed - g.feesWithdrawn,
                "ghost: balance = escrowed - refunded - claimed - fees withdrawn"
            );
        }
    }

    /// @notice 2. Claims of a token never exceed its captured revenue net of fees (through the
    /// published total), and they add up per account and per dataset.
    function invariant_claimsNeverExceedNetRevenue() public view {
        for (uint256 t = 0; t < _tokens.length; ++t) {
            address tok = _tokens[t];
            (,, uint256 net,) = _tokenTotals(tok);
            IRevenueVault.Distribution memory d = vault.distributionOf(tok);
            LedgerHandler.TokenGhost memory g = handler.tokenGhost(tok);
            assertLe(d.totalClaimed, g.capturedGross - g.feesTotal, "claimed above captured - fees");
            assertLe(d.totalClaimed, d.publishedTotal, "claimed above published total");
            assertLe(d.publishedTotal, net, "published total above captured net");
            uint256 sumClaimed;
            for (uint256 i = 0; i < 5; ++i) {
                uint256 c = vault.claimedOf(tok, handler.payees(i));
                assertLe(c, handler.cumulativeOf(tok, i), "account claimed above its entitlement");
                assertEq(c, handler.ghostClaimedBy(tok, handler.payees(i)), "ghost: claimedOf");
                sumClaimed += c;
            }
            assertEq(sumClaimed, d.totalClaimed, "sum of claimedOf vs totalClaimed");
            uint256 sumRevenue;
            for (uint256 i = 0; i < handler.datasetCount(); ++i) {
                uint256 ds = handler.datasetIds(i);
                uint256 revenue = vault.revenueOf(ds, tok);
                assertEq(revenue, handler.ghostRevenue(ds, tok), "ghost: revenueOf");
                sumRevenue += revenue;
            }
            assertEq(sumRevenue, net, "sum of revenueOf vs captured net");
        }
    }

    /// @notice 3. A grant's uses never exceed its maximum and its privacy spend never exceeds its
    /// budget; the contract's counters equal the ghost tallies of successful records.
    function invariant_grantUsesAndBudgetWithinTerms() public view {
        uint256 n = handler.grantCount();
        for (uint256 i = 0; i < n; ++i) {
            LedgerHandler.GrantRecord memory r = handler.grantAt(i);
            IAccessGrants.GrantState memory s = grants.stateOf(r.id);
            assertLe(s.uses, r.terms.maxUses, "uses above maxUses");
            assertLe(s.epsilonSpent, r.terms.epsilonBudget, "epsilon above budget");
            assertEq(s.uses, r.uses, "ghost: uses");
            assertEq(s.epsilonSpent, r.eps, "ghost: epsilonSpent");
            assertEq(s.ownerEpoch, r.epoch, "ghost: ownerEpoch");
            assertEq(
                uint256(s.status),
                uint256(r.revoked ? IAccessGrants.Status.Revoked : IAccessGrants.Status.Active),
                "ghost: status"
            );
        }
    }

    /// @notice 4. A revoked, nonce-invalidated, lapsed (ownership changed) or expired grant is never
    /// consumed: no successful record used one, and the counters of every such grant are those
    /// snapshotted from `stateOf` when it died.
    function invariant_deadGrantsNeverConsumed() public view {
        assertEq(handler.ghostConsumedRevoked(), 0, "consumed a revoked grant");
        assertEq(handler.ghostConsumedNonceInvalidated(), 0, "consumed a nonce-invalidated grant");
        assertEq(handler.ghostConsumedOwnerChanged(), 0, "consumed a grant after a transfer");
        assertEq(handler.ghostConsumedOutsideWindow(), 0, "consumed a grant outside its window");
        assertEq(handler.ghostConsumedFrozen(), 0, "consumed a dead grant");
        assertEq(
            handler.ghostConsumedByDisallowedExecutor(), 0, "recorded by a disallowed executor"
        );
        uint256 n = handler.grantCount();
        for (uint256 i = 0; i < n; ++i) {
            LedgerHandler.GrantRecord memory r = handler.grantAt(i);
            if (!r.frozen) continue;
            IAccessGrants.GrantState memory s = grants.stateOf(r.id);
            assertEq(s.uses, r.frozenUses, "uses of a dead grant grew");
            assertEq(s.epsilonSpent, r.frozenEps, "epsilon of a dead grant grew");
        }
    }

    /// @notice 5. A job id is recorded at most once and keeps its first receipt, although the
    /// handler keeps trying to record old job ids again (with new receipts and new escrows).
    function invariant_jobRecordedAtMostOnce() public view {
        uint256 n = handler.recordedJobCount();
        for (uint256 i = 0; i < n; ++i) {
            bytes32 jobId = handler.recordedJobs(i);
            assertLe(handler.recordCount(jobId), 1, "job recorded twice");
            assertEq(usage.receiptOf(jobId), handler.firstReceipt(jobId), "receipt overwritten");
        }
    }

    /// @notice Every escrow's status, payer, token and amount are those the ghost state expects
    /// (each captured or refunded exactly once, never both).
    function invariant_escrowsMatchGhost() public view {
        uint256 n = handler.escrowCount();
        for (uint256 i = 0; i < n; ++i) {
            LedgerHandler.EscrowRecord memory g = handler.escrowAt(i);
            IRevenueVault.Escrow memory e = vault.escrowOf(g.escrowId);
            assertEq(uint256(e.status), g.status, "escrow status");
            assertEq(e.payer, g.payer, "escrow payer");
            assertEq(e.token, g.token, "escrow token");
            assertEq(uint256(e.amount), g.amount, "escrow amount");
            assertEq(uint256(e.refundAfter), g.refundAfter, "escrow refundAfter");
        }
    }

    /// @notice Batch anchors are per executor: for every caller and every root of the pool, the
    /// anchor is the caller's own (its address, time and count) or all zero, so nobody's anchor of a
    /// root replaces, blocks or is attributed to anyone else's.
    function invariant_anchorsPerExecutor() public view {
        uint256 callers = handler.anchorerCount();
        uint256 roots = handler.rootCount();
        for (uint256 c = 0; c < callers; ++c) {
            address caller = handler.anchorers(c);
            for (uint256 i = 0; i < roots; ++i) {
                bytes32 root = handler.anchorRoot(i);
                IUsageLedger.Anchor memory a = usage.anchorOf(caller, root);
                LedgerHandler.AnchorGhost memory g = handler.anchorGhost(caller, root);
                assertEq(a.executor, g.count == 0 ? address(0) : caller, "anchor: executor");
                assertEq(a.anchoredAt, g.anchoredAt, "anchor: anchoredAt");
                assertEq(a.count, g.count, "anchor: count");
            }
            assertEq(usage.anchorOf(caller, bytes32(0)).count, 0, "anchor: zero root");
        }
    }

    /// @notice The contracts accept exactly the calls the ghost model says are valid: nothing
    /// invalid (wrong consumer, algorithm, purpose, version, executor, uses, budget, escrow, nonce,
    /// signature, deadline, epoch, total, proof, early refund...) succeeds, nothing valid reverts.
    function invariant_contractsAgreeWithModel() public view {
        uint256 mismatches = handler.ghostModelMismatches();
        if (mismatches != 0) {
            bytes memory err = handler.lastMismatchRevert();
            bytes32 head;
            if (err.length != 0) {
                assembly {
                    head := mload(add(err, 32))
                }
            }
            revert AssertionFailed(
                string.concat("model mismatch: ", handler.lastMismatch()), head, bytes32(mismatches)
            );
        }
    }

    // ================================================================ deep states

    /// @notice A fixed pseudo-random sequence of 600 handler calls (and 150 anchors) reaches every
    /// deep state (records with captures, claims, refunds both ways, multi-grant jobs, third-party
    /// escrows, shared anchor roots...) and keeps every invariant.
    function test_handlerReachesDeepStates() public {
        for (uint256 i = 0; i < 600; ++i) {
            uint256 a = uint256(keccak256(abi.encode("a", i)));
            uint256 b = uint256(keccak256(abi.encode("b", i)));
            uint256 c = uint256(keccak256(abi.encode("c", i)));
            _call(a % 32, a >> 8, b, c);
            // Anchors touch no other state: interleaved, they leave the sequence above unchanged.
            if (i % 4 == 0) _call(32, b >> 8, c >> 8, a >> 16);
        }
        assertGe(handler.successes("register"), 1, "register");
        assertGe(handler.successes("issue"), 1, "issue");
        assertGe(handler.successes("issueWithSig"), 1, "issueWithSig");
        assertGe(handler.successes("revoke"), 1, "revoke");
        assertGe(handler.successes("invalidate"), 1, "invalidateNonces");
        assertGe(handler.successes("transfer"), 1, "transfer");
        assertGe(handler.successes("escrow"), 1, "escrow");
        assertGe(handler.successes("record"), 10, "record");
        assertGe(handler.successes("recordPaid"), 5, "record with capture");
        assertGe(handler.successes("recordMultiGrant"), 1, "record with two grants");
        assertGe(handler.successes("refundEarly"), 1, "early refund");
        assertGe(handler.successes("refundAfterDelay"), 1, "refund after delay");
        assertGe(handler.successes("publish"), 1, "publishEpoch");
        assertGe(handler.successes("claim"), 5, "claim");
        assertGe(handler.successes("withdrawFeesNonZero"), 1, "withdrawFees");
        assertGe(handler.successes("escrowByThirdParty"), 1, "escrow by a third party");
        assertGe(handler.successes("anchor"), 1, "anchorBatch");
        assertGe(handler.successes("anchorSharedRoot"), 1, "anchor of a root anchored by another");
        // ...and the refused records were refused for the reasons the handler provoked.
        assertGe(handler.recordFailures(IUsageLedger.UsageLedgerJobExists.selector), 1, "replay");
        assertGe(handler.recordFailures(IAccessGrants.AccessGrantsRevoked.selector), 1, "revoked");
        assertGe(handler.recordFailures(IAccessGrants.AccessGrantsUsesExceeded.selector), 1, "uses");
        assertGe(
            handler.recordFailures(IAccessGrants.AccessGrantsWrongGrantee.selector), 1, "grantee"
        );
        invariant_vaultHoldsEscrowsClaimableAndFees();
        invariant_claimsNeverExceedNetRevenue();
        invariant_grantUsesAndBudgetWithinTerms();
        invariant_deadGrantsNeverConsumed();
        invariant_jobRecordedAtMostOnce();
        invariant_escrowsMatchGhost();
        invariant_anchorsPerExecutor();
        invariant_contractsAgreeWithModel();
    }

    function _call(uint256 k, uint256 a, uint256 b, uint256 c) internal {
        bytes4 sel = targetSelectors()[0].selectors[k];
        if (sel == LedgerHandler.registerDataset.selector) handler.registerDataset(a, b);
        else if (sel == LedgerHandler.setExecutor.selector) handler.setExecutor(a, b, c);
        else if (sel == LedgerHandler.publishVersion.selector) handler.publishVersion(a);
        else if (sel == LedgerHandler.transferAsset.selector) handler.transferAsset(a, b);
        else if (sel == LedgerHandler.issueGrant.selector) handler.issueGrant(a, b, c);
        else if (sel == LedgerHandler.revokeGrant.selector) handler.revokeGrant(a, b);
        else if (sel == LedgerHandler.invalidateNonces.selector) handler.invalidateNonces(a, b);
        else if (sel == LedgerHandler.setCatalog.selector) handler.setCatalog(a);
        else if (sel == LedgerHandler.escrowPayment.selector) handler.escrowPayment(a, b, c);
        else if (sel == LedgerHandler.refundEscrow.selector) handler.refundEscrow(a, b);
        else if (sel == LedgerHandler.recordUsage.selector) handler.recordUsage(a, b, c);
        else if (sel == LedgerHandler.publishEpoch.selector) handler.publishEpoch(a, b, c);
        else if (sel == LedgerHandler.claim.selector) handler.claim(a, b, c);
        else if (sel == LedgerHandler.withdrawFees.selector) handler.withdrawFees(a, b);
        else if (sel == LedgerHandler.setFee.selector) handler.setFee(a);
        else if (sel == LedgerHandler.anchorBatch.selector) handler.anchorBatch(a, b, c);
        else handler.warp(a);
    }

    // ================================================================ helpers

    /// @dev Sum of the vault's own records of held escrows of `tok` (every escrow goes through the
    /// handler, which lists them all).
    function _heldInVault(address tok) internal view returns (uint256 held) {
        uint256 n = handler.escrowCount();
        for (uint256 i = 0; i < n; ++i) {
            IRevenueVault.Escrow memory e = vault.escrowOf(handler.escrowAt(i).escrowId);
            if (e.status == IRevenueVault.EscrowStatus.Held && e.token == tok) held += e.amount;
        }
    }

    /// @dev `tokenTotals` returns `(held, capturedNet, feesAccrued)` or, since the vault stopped
    /// keeping a `held` book, `(capturedNet, feesAccrued)`; decoded by length so the invariants
    /// check whichever the vault provides.
    function _tokenTotals(address tok)
        internal
        view
        returns (bool hasHeld, uint256 held, uint256 net, uint256 fees)
    {
        (bool ok, bytes memory ret) =
            address(vault).staticcall(abi.encodeWithSignature("tokenTotals(address)", tok));
        require(ok && (ret.length == 64 || ret.length == 96), "tokenTotals");
        if (ret.length == 96) {
            (held, net, fees) = abi.decode(ret, (uint256, uint256, uint256));
            hasHeld = true;
        } else {
            (net, fees) = abi.decode(ret, (uint256, uint256));
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessGrants} from "../../../src/AccessGrants.sol";
import {DataRegistry} from "../../../src/DataRegistry.sol";
import {RevenueVault} from "../../../src/RevenueVault.sol";
import {UsageLedger} from "../../../src/UsageLedger.sol";
import {IAccessGrants} from "../../../src/interfaces/IAccessGrants.sol";
import {IDataRegistry} from "../../../src/interfaces/IDataRegistry.sol";
import {MAX_PAYMENT} from "../../../src/interfaces/IRevenueVault.sol";
import {IUsageLedger} from "../../../src/interfaces/IUsageLedger.sol";
import {Merkle} from "../../utils/Merkle.sol";
import {MockToken} from "../../utils/Mocks.sol";
import {Vm} from "../../utils/Vm.sol";

/// @notice Drives the four ledger contracts for the invariant tests (0xSplits style): every action
/// bounds its fuzzed seeds, acts as one of several actors (dataset owners, consumers, executors, the
/// settler, the admin, a stranger), calls the real contract inside try/catch, and keeps ghost tallies
/// that the invariants compare with the contracts' state and balances. Escrow ids are modelled per
/// payer (`keccak256(abi.encode(jobId, grantId, payer))`, the job's consumer's captured) and batch
/// anchors per executor.
/// @dev Every action also predicts, from the ghost state alone, whether the call must succeed; a
/// call that succeeds when it must not (or reverts when it must not) is counted in
/// `ghostModelMismatches`, with the action and the revert data of the last one kept for debugging.
contract LedgerHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint256 internal constant N_OWNERS = 3;
    uint256 internal constant N_CONSUMERS = 2;
    uint256 internal constant N_PAYEES = 5;
    uint256 internal constant MAX_DATASETS = 6;
    uint256 internal constant MAX_GRANTS = 64;
    /// @notice Batch roots come from a small pool, so several callers anchor the same root.
    uint256 internal constant N_ROOTS = 6;
    uint256 internal constant BPS = 10_000;

    bytes32 internal constant ALGO = keccak256("algorithm:dp-mean:v1");
    bytes32 internal constant UNLISTED_ALGO = keccak256("algorithm:unlisted");
    bytes32 internal constant ANY_CATALOG = keccak256("ledger.algorithm.any-catalog");
    bytes32 internal constant PURPOSE = keccak256("research.oncology");
    bytes32 internal constant OTHER_PURPOSE = keccak256("marketing");

    // ---------------------------------------------------------------- contracts and actors

    struct Deployment {
        DataRegistry registry;
        AccessGrants grants;
        RevenueVault vault;
        UsageLedger usage;
        MockToken token;
        address admin;
        address executor;
        address settler;
        address feeRecipient;
    }

    DataRegistry public immutable registry;
    AccessGrants public immutable grants;
    RevenueVault public immutable vault;
    UsageLedger public immutable usage;
    MockToken public immutable token;
    address public immutable admin;
    /// @notice Executor with REFUNDER_ROLE (the compute service); owners allow it on registration.
    address public immutable executor;
    /// @notice A second executor, without REFUNDER_ROLE, that owners allow only sometimes.
    address public immutable executor2;
    address public immutable settler;
    address public immutable feeRecipient;
    address public immutable stranger;
    uint40 public immutable refundDelay;

    uint256[] internal _ownerKeys;
    address[] public owners;
    address[] public consumers;
    /// @notice Accounts of the entitlement trees (the three owners and two contributors).
    address[] public payees;
    /// @notice Index 0 is ETH (address(0)), index 1 the ERC-20.
    address[] public tokens;
    /// @notice Callers of `anchorBatch`: both executors, the stranger and a consumer (anyone may
    /// anchor; each under its own address).
    address[] public anchorers;

    // ---------------------------------------------------------------- ghost state

    uint256 public currentTime;

    uint256[] public datasetIds;
    mapping(uint256 datasetId => address) public ghostOwner;
    mapping(uint256 datasetId => uint32) public ghostEpoch;
    mapping(uint256 datasetId => uint32) public ghostVersion;
    mapping(uint256 datasetId => mapping(uint32 epoch => mapping(address executor => bool))) public
        ghostExecutor;
    mapping(bytes32 algorithmHash => bool) public ghostCatalog;

    struct GrantRecord {
        IAccessGrants.Grant terms;
        bytes32 id;
        uint32 epoch; // ownership epoch of the dataset at issue
        uint32 uses; // ghost tally of successful consumption
        uint64 eps;
        bool revoked; // revoked individually (status Revoked)
        bool frozen; // revoked, nonce-invalidated, lapsed by a transfer or expired
        uint32 frozenUses; // stateOf(id) when it froze
        uint64 frozenEps;
    }

    GrantRecord[] internal _grants;
    mapping(address grantor => uint256) public nextNonce;
    mapping(address grantor => uint256) public ghostMinNonce;
    mapping(address grantor => mapping(uint256 nonce => bool)) public ghostNonceUsed;

    uint8 internal constant HELD = 1;
    uint8 internal constant CAPTURED = 2;
    uint8 internal constant REFUNDED = 3;

    struct EscrowRecord {
        bytes32 escrowId;
        bytes32 jobId;
        uint256 grantIdx;
        uint32 uses;
        address token;
        uint256 amount;
        address payer;
        uint40 refundAfter;
        uint8 status;
    }

    EscrowRecord[] internal _escrows;
    mapping(bytes32 escrowId => uint256) internal _escrowIndex; // index + 1

    uint256 internal _jobCounter;
    uint256 internal _receiptCounter;
    bytes32[] public recordedJobs;
    mapping(bytes32 jobId => uint256) public recordCount;
    mapping(bytes32 jobId => bytes32) public firstReceipt;

    struct TokenGhost {
        uint256 escrowed;
        uint256 refunded;
        uint256 capturedGross;
        uint256 capturedNet;
        uint256 feesTotal;
        uint256 feesWithdrawn;
        uint256 claimed;
        uint256 published;
        uint64 epoch;
    }

    /// @notice The anchor the ghost state expects for (caller, root): zero count if none.
    struct AnchorGhost {
        uint40 anchoredAt;
        uint32 count;
    }

    mapping(address executor => mapping(bytes32 root => AnchorGhost)) internal _anchorGhost;

    mapping(address token => TokenGhost) internal _tokenGhost;
    /// @notice Cumulative entitlements of the token's current tree, by payee index.
    mapping(address token => uint256[]) internal _cumulative;
    mapping(address token => mapping(address account => uint256)) public ghostClaimedBy;
    mapping(uint256 datasetId => mapping(address token => uint256)) public ghostRevenue;
    uint256 public ghostFeeBps;

    // Dead-consumption counters (invariant 4): a successful use of a grant that the ghost state
    // says was revoked, nonce-invalidated, lapsed by a transfer, outside its window or frozen.
    uint256 public ghostConsumedRevoked;
    uint256 public ghostConsumedNonceInvalidated;
    uint256 public ghostConsumedOwnerChanged;
    uint256 public ghostConsumedOutsideWindow;
    uint256 public ghostConsumedFrozen;
    uint256 public ghostConsumedByDisallowedExecutor;

    uint256 public ghostModelMismatches;
    string public lastMismatch;
    bytes public lastMismatchRevert;

    /// @notice Reverted record attempts by error selector (0 for a panic or empty revert data).
    mapping(bytes4 selector => uint256) public recordFailures;
    mapping(string action => uint256) public calls;
    mapping(string action => uint256) public successes;

    constructor(Deployment memory d) {
        registry = d.registry;
        grants = d.grants;
        vault = d.vault;
        usage = d.usage;
        token = d.token;
        admin = d.admin;
        executor = d.executor;
        executor2 = address(0xE2);
        settler = d.settler;
        feeRecipient = d.feeRecipient;
        stranger = vm.addr(0x5757);
        refundDelay = d.vault.refundDelay();
        ghostFeeBps = d.vault.feeBps();
        currentTime = block.timestamp;
        require(d.grants.ANY_CATALOG_ALGORITHM() == ANY_CATALOG, "handler: catalog constant");

        for (uint256 i = 0; i < N_OWNERS; ++i) {
            _ownerKeys.push(0x1001 + i);
            owners.push(vm.addr(0x1001 + i));
            payees.push(owners[i]);
        }
        payees.push(vm.addr(0xC0A));
        payees.push(vm.addr(0xC0B));
        for (uint256 i = 0; i < N_CONSUMERS; ++i) {
            address c = vm.addr(0x2001 + i);
            consumers.push(c);
            vm.deal(c, 1e9 ether);
            d.token.mint(c, 1e30);
        }
        tokens.push(address(0));
        tokens.push(address(d.token));
        anchorers.push(d.executor);
        anchorers.push(executor2);
        anchorers.push(stranger);
        anchorers.push(consumers[0]);
        for (uint256 t = 0; t < 2; ++t) {
            for (uint256 i = 0; i < N_PAYEES; ++i) {
                _cumulative[tokens[t]].push(0);
            }
        }
        vm.prank(d.admin);
        d.grants.setCatalogAlgorithm(ALGO, true);
        ghostCatalog[ALGO] = true;
    }

    modifier step(string memory action) {
        vm.warp(currentTime);
        ++calls[action];
        _;
    }

    // ================================================================ registry actions

    /// @notice An owner registers a dataset and allows `executor` on it.
    function registerDataset(uint256 ownerSeed, uint256 shareSeed) external step("register") {
        if (datasetIds.length >= MAX_DATASETS) return;
        _register(owners[ownerSeed % N_OWNERS], uint16(_bound(shareSeed, 0, BPS)));
    }

    /// @notice The owner (or, to be refused, a stranger) allows or disallows an executor.
    function setExecutor(uint256 dsSeed, uint256 execSeed, uint256 mode)
        external
        step("setExecutor")
    {
        if (datasetIds.length == 0) return;
        uint256 ds = datasetIds[dsSeed % datasetIds.length];
        address exec = execSeed % 2 == 0 ? executor : executor2;
        bool allowed = mode % 4 != 0;
        address caller = mode % 7 == 6 ? stranger : ghostOwner[ds];
        vm.prank(caller);
        try registry.setExecutor(ds, exec, allowed) {
            _expect("setExecutor", true, caller == ghostOwner[ds], "");
            ghostExecutor[ds][ghostEpoch[ds]][exec] = allowed;
        } catch (bytes memory err) {
            _expect("setExecutor", false, caller == ghostOwner[ds], err);
        }
    }

    /// @notice The owner publishes the next version of a dataset.
    function publishVersion(uint256 dsSeed) external step("publishVersion") {
        if (datasetIds.length == 0) return;
        uint256 ds = datasetIds[dsSeed % datasetIds.length];
        vm.prank(ghostOwner[ds]);
        try registry.publishVersion(ds, _version(ds, ghostVersion[ds] + 1), "ipfs://v") returns (
            uint32 v
        ) {
            _expect("publishVersion", true, true, "");
            if (v != ghostVersion[ds] + 1) _mismatch("publishVersion: number", "");
            ghostVersion[ds] = v;
        } catch (bytes memory err) {
            _expect("publishVersion", false, true, err);
        }
    }

    /// @notice The owner transfers the data asset to an owner actor (itself included: no new epoch).
    function transferAsset(uint256 dsSeed, uint256 toSeed) external step("transfer") {
        if (datasetIds.length == 0) return;
        uint256 ds = datasetIds[dsSeed % datasetIds.length];
        address from = ghostOwner[ds];
        address to = owners[toSeed % N_OWNERS];
        vm.prank(from);
        try registry.transferFrom(from, to, ds) {
            _expect("transfer", true, true, "");
            if (from != to) {
                ghostOwner[ds] = to;
                ++ghostEpoch[ds];
                // Every grant of the previous epoch lapses: its tally must never move again.
                for (uint256 i = 0; i < _grants.length; ++i) {
                    if (_grants[i].terms.datasetId == ds) _freeze(_grants[i]);
                }
                // Usually the new owner allows the compute service again at once.
                if (_sub(toSeed, 8) % 4 != 0) {
                    vm.prank(to);
                    registry.setExecutor(ds, executor, true);
                    ghostExecutor[ds][ghostEpoch[ds]][executor] = true;
                }
            }
        } catch (bytes memory err) {
            _expect("transfer", false, true, err);
        }
    }

    // ================================================================ grant actions

    /// @notice Issues a grant directly or relayed with an EIP-712 signature (`vm.sign`); modes 6
    /// and 7 are deliberately invalid (grantor not the owner, bad signature, used nonce, expired
    /// deadline).
    function issueGrant(uint256 dsSeed, uint256 termsSeed, uint256 mode) external step("issue") {
        if (datasetIds.length == 0) _register(owners[dsSeed % N_OWNERS], 7000);
        if (_grants.length >= MAX_GRANTS) return;
        mode %= 8;
        uint256 ds = datasetIds[dsSeed % datasetIds.length];
        uint256 grantorIdx = _ownerIndex(ghostOwner[ds]);
        if (mode == 6) grantorIdx = (grantorIdx + 1 + termsSeed % 2) % N_OWNERS;
        IAccessGrants.Grant memory g = _terms(ds, owners[grantorIdx], termsSeed);
        uint256 signKey = _ownerKeys[grantorIdx];
        bool relayed = (mode >= 3 && mode <= 5) || (mode >= 6 && termsSeed % 2 == 0);
        if (mode == 7) {
            uint256 kind = _sub(termsSeed, 128) % 3;
            if (kind == 0) {
                relayed = true;
                signKey = _ownerKeys[(grantorIdx + 1) % N_OWNERS];
            } else if (kind == 1 && nextNonce[g.grantor] > 0) {
                g.nonce = _sub(termsSeed, 64) % nextNonce[g.grantor];
            } else {
                g.deadline = currentTime - 1 - termsSeed % 1 days;
            }
        }
        bool expectOk = g.grantor == ghostOwner[ds] && !ghostNonceUsed[g.grantor][g.nonce]
            && g.nonce >= ghostMinNonce[g.grantor] && g.deadline >= currentTime
            && (!relayed || signKey == _ownerKeys[grantorIdx]);
        _issue(g, relayed, signKey, expectOk);
    }

    /// @dev The owner of a dataset issues a grant usable now, as the step before a job.
    function _issueFresh(uint256 seed) internal {
        if (datasetIds.length == 0) _register(owners[seed % N_OWNERS], 7000);
        if (_grants.length >= MAX_GRANTS) return;
        uint256 ds = datasetIds[seed % datasetIds.length];
        IAccessGrants.Grant memory g = _terms(ds, ghostOwner[ds], seed);
        if (g.validFrom > currentTime) g.validFrom = uint64(currentTime);
        _issue(g, false, 0, true);
    }

    function _issue(IAccessGrants.Grant memory g, bool relayed, uint256 signKey, bool expectOk)
        internal
    {
        bytes32 expectedId = grants.grantId(g);
        bool success;
        bytes32 id;
        bytes memory err;
        if (relayed) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(signKey, expectedId);
            vm.prank(consumers[uint256(expectedId) % N_CONSUMERS]);
            try grants.issueWithSig(g, abi.encodePacked(r, s, v)) returns (bytes32 got) {
                (success, id) = (true, got);
            } catch (bytes memory e) {
                err = e;
            }
        } else {
            vm.prank(g.grantor);
            try grants.issue(g) returns (bytes32 got) {
                (success, id) = (true, got);
            } catch (bytes memory e) {
                err = e;
            }
        }
        _expect("issue", success, expectOk, err);
        if (!success) return;
        if (relayed) ++successes["issueWithSig"];
        if (id != expectedId) _mismatch("issue: id", "");
        ghostNonceUsed[g.grantor][g.nonce] = true;
        if (g.nonce >= nextNonce[g.grantor]) nextNonce[g.grantor] = g.nonce + 1;
        GrantRecord storage rec = _grants.push();
        rec.terms = g;
        rec.id = id;
        rec.epoch = ghostEpoch[g.datasetId];
        // Issued on a nonce below the minimum (only if the contract wrongly allowed it): dead.
        if (g.nonce < ghostMinNonce[g.grantor]) _freeze(rec);
    }

    /// @notice Revokes a grant as its grantor, as the dataset's current owner, or (to be refused)
    /// as a consumer.
    function revokeGrant(uint256 grantSeed, uint256 callerSeed) external step("revoke") {
        if (_grants.length == 0) return;
        GrantRecord storage r = _grants[grantSeed % _grants.length];
        uint256 k = callerSeed % 3;
        address owner_ = ghostOwner[r.terms.datasetId];
        address caller = k == 0 ? r.terms.grantor : k == 1 ? owner_ : consumers[callerSeed % 2];
        bool expectOk = !r.revoked && (caller == r.terms.grantor || caller == owner_);
        vm.prank(caller);
        try grants.revoke(r.terms) {
            _expect("revoke", true, expectOk, "");
            r.revoked = true;
            _freeze(r);
        } catch (bytes memory err) {
            _expect("revoke", false, expectOk, err);
        }
    }

    /// @notice An owner raises its minimum nonce by one, or to its next nonce (every outstanding
    /// grant) or beyond; kinds 0-2 (and kind 7 with nothing outstanding) do not increase it:
    /// refused.
    function invalidateNonces(uint256 ownerSeed, uint256 kindSeed) external step("invalidate") {
        address o = owners[ownerSeed % N_OWNERS];
        uint256 kind = kindSeed % 8;
        uint256 current = ghostMinNonce[o];
        uint256 newMin = kind < 3
            ? current
            : kind < 7 ? current + 1 : _sub(kindSeed, 8) % 2 == 0 ? nextNonce[o] : nextNonce[o] + 2;
        bool expectOk = newMin > current;
        vm.prank(o);
        try grants.invalidateNonces(newMin) {
            _expect("invalidate", true, expectOk, "");
            ghostMinNonce[o] = newMin;
            if (newMin > nextNonce[o]) nextNonce[o] = newMin;
            for (uint256 i = 0; i < _grants.length; ++i) {
                GrantRecord storage r = _grants[i];
                if (r.terms.grantor == o && r.terms.nonce < newMin) _freeze(r);
            }
        } catch (bytes memory err) {
            _expect("invalidate", false, expectOk, err);
        }
    }

    /// @notice The admin lists or delists the algorithm in the catalog (catalog grants follow).
    function setCatalog(uint256 seed) external step("setCatalog") {
        bool listed = seed % 4 != 0;
        vm.prank(admin);
        try grants.setCatalogAlgorithm(ALGO, listed) {
            _expect("setCatalog", true, true, "");
            ghostCatalog[ALGO] = listed;
        } catch (bytes memory err) {
            _expect("setCatalog", false, true, err);
        }
    }

    // ================================================================ payment actions

    /// @notice A consumer escrows the price of some uses of a grant for a new job (ETH or ERC-20);
    /// usually the grantee pays, one time in four the other consumer (a third party: its escrow
    /// must never be captured, and must not block the grantee's). Mode 7 escrows for an already
    /// recorded job id (it must never be captured), mode 8 escrows a mismatched token or amount
    /// (valid escrow, capture must fail), mode 9 is an invalid call (wrong msg.value, zero amount,
    /// duplicate escrow id) or, half the time for the duplicate, the same (job, grant) by the other
    /// consumer (a distinct escrow id: valid).
    function escrowPayment(uint256 grantSeed, uint256 seed, uint256 mode) external step("escrow") {
        if (_grants.length == 0) return;
        mode %= 10;
        uint256 kind = _sub(seed, 64) % 3;
        uint256 gi;
        bytes32 jobId;
        address payer;
        if (mode == 9 && kind == 2 && _escrows.length > 0) {
            EscrowRecord storage dup = _escrows[grantSeed % _escrows.length];
            (gi, jobId) = (dup.grantIdx, dup.jobId);
            payer = _sub(seed, 33) % 2 == 0 ? dup.payer : consumers[_consumerIndex(dup.payer) ^ 1];
        } else {
            (, gi) = _pickGrant(grantSeed, false, address(0));
            jobId = mode == 7 && recordedJobs.length > 0
                ? recordedJobs[seed % recordedJobs.length]
                : keccak256(abi.encode("job", ++_jobCounter));
            payer = _grants[gi].terms.grantee;
            if (_sub(seed, 32) % 4 == 0) payer = consumers[_consumerIndex(payer) ^ 1];
        }
        GrantRecord storage r = _grants[gi];
        EscrowRecord memory e = _escrowTerms(gi, jobId, seed, payer);
        if (mode == 8) {
            if (kind == 0) e.amount += 1;
            else e.token = e.token == address(0) ? address(token) : address(0);
        }
        uint256 value = e.token == address(0) ? e.amount : 0;
        if (mode == 9) {
            if (kind == 0) value = e.token == address(0) ? e.amount - 1 : 1;
            else if (kind == 1) (e.amount, value) = (0, 0);
        }
        bool expectOk = e.amount != 0 && e.amount <= MAX_PAYMENT && _escrowIndex[e.escrowId] == 0
            && value == (e.token == address(0) ? e.amount : 0);
        if (_escrow(e, r.id, value, expectOk) && payer != r.terms.grantee) {
            ++successes["escrowByThirdParty"];
        }
    }

    /// @dev The escrow `payer` makes for `jobId` on grant `gi`: the price of some of its
    /// remaining uses (an arbitrary amount for a free grant, which nobody will capture), under the
    /// escrow id of (job, grant, payer).
    function _escrowTerms(uint256 gi, bytes32 jobId, uint256 seed, address payer)
        internal
        view
        returns (EscrowRecord memory e)
    {
        GrantRecord storage r = _grants[gi];
        uint256 left = r.uses < r.terms.maxUses ? r.terms.maxUses - r.uses : r.terms.maxUses;
        e.jobId = jobId;
        e.grantIdx = gi;
        e.uses = uint32(_bound(seed, 1, left));
        e.token = r.terms.paymentToken;
        e.amount = r.terms.pricePerUse * e.uses;
        if (e.amount == 0) e.amount = 1 + seed % 1e6;
        e.payer = payer;
        e.escrowId = _escrowId(jobId, r.id, payer);
    }

    /// @dev The grantee escrows for a fresh job on a live grant, as the step before a record.
    function _escrowFresh(uint256 seed) internal returns (bool, uint256) {
        (bool found, uint256 gi) = _pickGrant(seed, false, address(0));
        if (!found || !_live(_grants[gi])) return (false, 0);
        EscrowRecord memory e = _escrowTerms(
            gi,
            keccak256(abi.encode("job", ++_jobCounter)),
            _sub(seed, 16),
            _grants[gi].terms.grantee
        );
        if (!_escrow(e, _grants[gi].id, e.token == address(0) ? e.amount : 0, true)) {
            return (false, 0);
        }
        return (true, _escrows.length - 1);
    }

    function _escrow(EscrowRecord memory e, bytes32 grantId, uint256 value, bool expectOk)
        internal
        returns (bool)
    {
        if (e.token != address(0)) {
            vm.prank(e.payer);
            token.approve(address(vault), e.amount);
        }
        vm.prank(e.payer);
        try vault.escrow{value: value}(e.jobId, grantId, e.token, e.amount) returns (bytes32 id) {
            _expect("escrow", true, expectOk, "");
            if (id != e.escrowId) _mismatch("escrow: id", "");
            e.refundAfter = uint40(currentTime) + refundDelay;
            e.status = HELD;
            _escrows.push(e);
            _escrowIndex[e.escrowId] = _escrows.length;
            _tokenGhost[e.token].escrowed += e.amount;
            return true;
        } catch (bytes memory err) {
            _expect("escrow", false, expectOk, err);
            return false;
        }
    }

    /// @notice Refunds an escrow: early by the executor (REFUNDER_ROLE), early by the payer or a
    /// stranger (refused), or by a stranger after warping past the refund time.
    function refundEscrow(uint256 pick, uint256 mode) external step("refund") {
        if (_escrows.length == 0) return;
        (bool found, uint256 ei,) = _pickHeldEscrow(pick, false);
        if (!found) ei = pick % _escrows.length;
        EscrowRecord storage e = _escrows[ei];
        mode %= 4;
        address caller = mode == 0 ? executor : mode == 1 ? e.payer : stranger;
        if (mode == 3 && currentTime < e.refundAfter) {
            _warpTo(e.refundAfter + _sub(pick, 8) % 1 hours);
        }
        bool early = currentTime < e.refundAfter;
        bool expectOk = e.status == HELD && (!early || caller == executor);
        uint256 before = _balance(e.token, e.payer);
        vm.prank(caller);
        try vault.refund(e.escrowId) {
            _expect("refund", true, expectOk, "");
            e.status = REFUNDED;
            _tokenGhost[e.token].refunded += e.amount;
            ++successes[early ? "refundEarly" : "refundAfterDelay"];
            if (_balance(e.token, e.payer) != before + e.amount) _mismatch("refund: paid", "");
        } catch (bytes memory err) {
            _expect("refund", false, expectOk, err);
        }
    }

    // ================================================================ usage actions

    struct Entry {
        uint256 grantIdx;
        uint32 version;
        uint32 uses;
        uint64 eps;
    }

    /// @notice The executor records a job. Modes 0-8 record a held escrow's job; 9-10 a fresh job
    /// on a free grant; 11-12 a fresh job with two free grants of one grantee (possibly the same
    /// grant twice); 13 replays a recorded job id; 14-19 corrupt one parameter of an escrowed job
    /// (consumer, algorithm, purpose, uses above the maximum or epsilon above the budget, then
    /// unknown version / other executor / zero uses).
    function recordUsage(uint256 pick, uint256 epsSeed, uint256 mode) external step("record") {
        if (_grants.length == 0) _issueFresh(pick);
        if (_grants.length == 0) return;
        mode %= 20;
        (bytes32 jobId, Entry[] memory entries) = _jobEntries(pick, epsSeed, mode);
        if (entries.length == 0) return;
        GrantRecord storage r0 = _grants[entries[0].grantIdx];
        IUsageLedger.Job memory job = IUsageLedger.Job({
            jobId: jobId,
            consumer: r0.terms.grantee,
            algorithmHash: ALGO,
            purpose: PURPOSE,
            receiptHash: keccak256(abi.encode("receipt", jobId, ++_receiptCounter))
        });
        address exec = executor;
        uint256 kind = _sub(epsSeed, 200) % 3;
        if (mode == 14) {
            job.consumer = consumers[_consumerIndex(job.consumer) ^ 1];
        } else if (mode == 15) {
            job.algorithmHash = UNLISTED_ALGO;
        } else if (mode == 16) {
            job.purpose = OTHER_PURPOSE;
        } else if (mode == 17) {
            if (kind == 0) entries[0].eps = r0.terms.epsilonBudget - r0.eps + 1;
            else entries[0].uses = r0.terms.maxUses - r0.uses + 1;
        } else if (mode >= 18) {
            if (kind == 0) {
                entries[0].version =
                    _sub(epsSeed, 100) % 2 == 0 ? 0 : ghostVersion[r0.terms.datasetId] + 1;
            } else if (kind == 1) {
                exec = executor2;
            } else {
                entries[0].uses = 0;
            }
        }
        _record(job, entries, exec);
    }

    /// @dev The job id and grant uses of a record attempt (none if nothing fits).
    function _jobEntries(uint256 pick, uint256 epsSeed, uint256 mode)
        internal
        returns (bytes32, Entry[] memory)
    {
        if (mode <= 8 || mode >= 14) return _escrowedJob(pick, epsSeed);
        return _freeJob(pick, epsSeed, mode);
    }

    /// @dev A held escrow's job; with none that can be recorded, a consumer escrows for a new job
    /// first (and if no grant is live either, an owner grants access first).
    function _escrowedJob(uint256 pick, uint256 epsSeed)
        internal
        returns (bytes32 jobId, Entry[] memory entries)
    {
        // One time in eight, explore: any held escrow (dead grant, mismatched amount or token,
        // job already recorded...), as it comes.
        bool explore = _sub(pick, 240) % 8 == 0;
        (bool found, uint256 ei, bool recordable) = _pickHeldEscrow(pick, !explore);
        if (!recordable && !explore) {
            (bool made, uint256 fresh) = _escrowFresh(_sub(pick, 8));
            if (!made) {
                _issueFresh(_sub(pick, 10));
                (made, fresh) = _escrowFresh(_sub(pick, 8));
            }
            if (made) {
                found = true;
                ei = fresh;
            }
        }
        if (!found) return (jobId, entries);
        EscrowRecord storage e = _escrows[ei];
        jobId = e.jobId;
        entries = new Entry[](1);
        entries[0] = _entry(e.grantIdx, e.uses, epsSeed);
    }

    /// @dev A fresh job (or, mode 13, a recorded one) on one or (modes 11-12) two free grants.
    function _freeJob(uint256 pick, uint256 epsSeed, uint256 mode)
        internal
        returns (bytes32 jobId, Entry[] memory entries)
    {
        (bool found, uint256 gi) = _pickGrant(pick, true, address(0));
        if (!found) return (jobId, entries);
        jobId = mode == 13 && recordedJobs.length > 0
            ? recordedJobs[_sub(pick, 16) % recordedJobs.length]
            : keccak256(abi.encode("job", ++_jobCounter));
        if (mode == 11 || mode == 12) {
            (, uint256 gj) = _pickGrant(_sub(pick, 64), true, _grants[gi].terms.grantee);
            entries = new Entry[](2);
            entries[0] = _entry(gi, 1, epsSeed);
            entries[1] = _entry(gj, 1, _sub(epsSeed, 128));
        } else {
            entries = new Entry[](1);
            uint32 uses = uint32(_bound(_sub(pick, 32), 1, _grants[gi].terms.maxUses));
            entries[0] = _entry(gi, uses, epsSeed);
        }
    }

    function _entry(uint256 gi, uint32 uses, uint256 seed) internal view returns (Entry memory en) {
        GrantRecord storage r = _grants[gi];
        en.grantIdx = gi;
        en.uses = uses;
        en.version = uint32(_bound(_sub(seed, 64), 1, ghostVersion[r.terms.datasetId]));
        uint256 left = r.eps >= r.terms.epsilonBudget ? 0 : r.terms.epsilonBudget - r.eps;
        en.eps = seed % 3 == 0 ? 0 : uint64(_bound(seed, 0, left));
    }

    function _record(IUsageLedger.Job memory job, Entry[] memory entries, address exec) internal {
        IUsageLedger.GrantUse[] memory list = new IUsageLedger.GrantUse[](entries.length);
        for (uint256 i = 0; i < entries.length; ++i) {
            list[i] = IUsageLedger.GrantUse({
                grant: _grants[entries[i].grantIdx].terms,
                datasetVersion: entries[i].version,
                uses: entries[i].uses,
                epsilon: entries[i].eps
            });
        }
        bool expectOk = _expectRecord(job, entries, exec);
        vm.prank(exec);
        try usage.recordUsage(job, list) {
            _expect("record", true, expectOk, "");
        } catch (bytes memory err) {
            _expect("record", false, expectOk, err);
            bytes4 sel = bytes4(err);
            if (sel == 0x4e487b71 || err.length < 4) sel = bytes4(0);
            ++recordFailures[sel];
            return;
        }
        if (++recordCount[job.jobId] == 1) {
            firstReceipt[job.jobId] = job.receiptHash;
            recordedJobs.push(job.jobId);
        }
        if (entries.length > 1) ++successes["recordMultiGrant"];
        for (uint256 i = 0; i < entries.length; ++i) {
            _applyUse(job.jobId, job.consumer, entries[i], exec);
        }
    }

    /// @dev The ghost model of `recordUsage`: whether it must succeed.
    function _expectRecord(IUsageLedger.Job memory job, Entry[] memory entries, address exec)
        internal
        view
        returns (bool)
    {
        if (recordCount[job.jobId] != 0) return false;
        for (uint256 i = 0; i < entries.length; ++i) {
            Entry memory en = entries[i];
            GrantRecord storage r = _grants[en.grantIdx];
            // Uses and budget already taken by earlier entries of the same job on the same grant.
            uint256 priorUses;
            uint256 priorEps;
            for (uint256 j = 0; j < i; ++j) {
                if (entries[j].grantIdx == en.grantIdx) {
                    priorUses += entries[j].uses;
                    priorEps += entries[j].eps;
                }
            }
            if (!_usable(r, job, exec, en.version)) return false;
            if (en.uses == 0 || uint256(r.uses) + priorUses + en.uses > r.terms.maxUses) {
                return false;
            }
            if (uint256(r.eps) + priorEps + en.eps > r.terms.epsilonBudget) return false;
            uint256 due = r.terms.pricePerUse * en.uses;
            if (due != 0) {
                if (due > MAX_PAYMENT) return false;
                // Only the consumer's own escrow is captured, whoever else paid for the job.
                uint256 idx = _escrowIndex[_escrowId(job.jobId, r.id, job.consumer)];
                if (idx == 0) return false;
                EscrowRecord storage e = _escrows[idx - 1];
                if (e.status != HELD || e.token != r.terms.paymentToken || e.amount != due) {
                    return false;
                }
            }
        }
        return true;
    }

    function _usable(
        GrantRecord storage r,
        IUsageLedger.Job memory job,
        address exec,
        uint32 version
    ) internal view returns (bool) {
        uint256 ds = r.terms.datasetId;
        if (!ghostExecutor[ds][ghostEpoch[ds]][exec]) return false;
        if (version == 0 || version > ghostVersion[ds]) return false;
        if (r.revoked || r.terms.nonce < ghostMinNonce[r.terms.grantor]) return false;
        if (ghostEpoch[ds] != r.epoch) return false;
        if (currentTime < r.terms.validFrom || currentTime > r.terms.validUntil) return false;
        if (job.consumer != r.terms.grantee) return false;
        bool algoOk = r.terms.algorithmHash == ANY_CATALOG
            ? ghostCatalog[job.algorithmHash]
            : job.algorithmHash == r.terms.algorithmHash;
        return algoOk && job.purpose == r.terms.purpose;
    }

    function _applyUse(bytes32 jobId, address consumer, Entry memory en, address exec) internal {
        GrantRecord storage r = _grants[en.grantIdx];
        uint256 ds = r.terms.datasetId;
        // What the ghost state knew at the moment of this successful consumption.
        if (r.revoked) ++ghostConsumedRevoked;
        if (r.terms.nonce < ghostMinNonce[r.terms.grantor]) ++ghostConsumedNonceInvalidated;
        if (ghostEpoch[ds] != r.epoch) ++ghostConsumedOwnerChanged;
        if (currentTime < r.terms.validFrom || currentTime > r.terms.validUntil) {
            ++ghostConsumedOutsideWindow;
        }
        if (r.frozen) ++ghostConsumedFrozen;
        if (!ghostExecutor[ds][ghostEpoch[ds]][exec]) ++ghostConsumedByDisallowedExecutor;
        r.uses += en.uses;
        r.eps += en.eps;
        uint256 due = r.terms.pricePerUse * en.uses;
        if (due == 0) return;
        uint256 idx = _escrowIndex[_escrowId(jobId, r.id, consumer)];
        if (idx == 0) return _mismatch("record: captured an unknown escrow", "");
        EscrowRecord storage e = _escrows[idx - 1];
        e.status = CAPTURED;
        uint256 fee = due * ghostFeeBps / BPS;
        TokenGhost storage t = _tokenGhost[r.terms.paymentToken];
        t.capturedGross += due;
        t.feesTotal += fee;
        t.capturedNet += due - fee;
        ghostRevenue[ds][r.terms.paymentToken] += due - fee;
        ++successes["recordPaid"];
    }

    // ================================================================ anchor actions

    /// @notice Someone anchors a batch root from a small pool: an executor, or anyone who saw the
    /// root (the other executor, the stranger, a consumer), so one root is often anchored by several
    /// callers, each under its own address. Mode 7 sends a zero root or an empty batch (refused);
    /// anchoring a root the caller anchored before is refused too.
    function anchorBatch(uint256 callerSeed, uint256 rootSeed, uint256 mode)
        external
        step("anchor")
    {
        address caller = anchorers[callerSeed % anchorers.length];
        bytes32 root = anchorRoot(rootSeed % N_ROOTS);
        uint32 count = uint32(_bound(_sub(rootSeed, 1), 1, type(uint32).max));
        if (mode % 8 == 7) {
            if (_sub(rootSeed, 2) % 2 == 0) root = bytes32(0);
            else count = 0;
        }
        bool expectOk = root != bytes32(0) && count != 0 && _anchorGhost[caller][root].count == 0;
        bool sharedRoot;
        for (uint256 i = 0; i < anchorers.length; ++i) {
            if (anchorers[i] != caller && _anchorGhost[anchorers[i]][root].count != 0) {
                sharedRoot = true;
            }
        }
        vm.prank(caller);
        try usage.anchorBatch(root, count) {
            _expect("anchor", true, expectOk, "");
            _anchorGhost[caller][root] =
                AnchorGhost({anchoredAt: uint40(currentTime), count: count});
            if (sharedRoot) ++successes["anchorSharedRoot"];
        } catch (bytes memory err) {
            _expect("anchor", false, expectOk, err);
        }
    }

    // ================================================================ distribution actions

    /// @notice The settler publishes the next epoch of a token: a real StandardMerkleTree of
    /// cumulative entitlements that grow by a fuzzed share of the not yet published net revenue.
    /// Mode 6 is sent by a stranger, 7-9 are invalid (total above revenue, wrong epoch, total
    /// decreasing or zero root).
    function publishEpoch(uint256 tokenSeed, uint256 seed, uint256 mode) external step("publish") {
        _publish(tokens[tokenSeed % 2], seed, mode % 10);
    }

    function _publish(address tok, uint256 seed, uint256 mode) internal {
        TokenGhost storage t = _tokenGhost[tok];
        uint256[] memory cum = _nextCumulative(tok, seed);
        uint256 total;
        for (uint256 i = 0; i < N_PAYEES; ++i) {
            total += cum[i];
        }
        bytes32 root = Merkle.build(payees, cum)[0];
        uint64 epoch = t.epoch + 1;
        address caller = mode == 6 ? stranger : settler;
        if (mode == 7) {
            total = t.capturedNet + 1 + _sub(seed, 128) % 1e9;
        } else if (mode == 8) {
            epoch = _sub(seed, 128) % 2 == 0 ? t.epoch : t.epoch + 2;
        } else if (mode == 9) {
            if (t.published > 0) total = t.published - 1;
            else root = bytes32(0);
        }
        bool expectOk = caller == settler && root != bytes32(0) && epoch == t.epoch + 1
            && total >= t.published && total <= t.capturedNet;
        vm.prank(caller);
        try vault.publishEpoch(tok, epoch, root, total) {
            _expect("publish", true, expectOk, "");
            t.epoch = epoch;
            t.published = total;
            if (mode < 7) _cumulative[tok] = cum;
        } catch (bytes memory err) {
            _expect("publish", false, expectOk, err);
        }
    }

    /// @dev The current entitlements plus a split of `fraction`% of the unpublished net revenue.
    function _nextCumulative(address tok, uint256 seed)
        internal
        view
        returns (uint256[] memory cum)
    {
        TokenGhost storage t = _tokenGhost[tok];
        cum = _cumulative[tok];
        uint256 fraction = seed % 5 == 0 ? 100 : _bound(seed, 0, 100);
        uint256 unpublished = t.capturedNet > t.published ? t.capturedNet - t.published : 0;
        uint256 left = unpublished * fraction / 100;
        for (uint256 i = 0; i + 1 < N_PAYEES; ++i) {
            uint256 part = left * (uint256(keccak256(abi.encode(seed, i))) % 101) / 100;
            cum[i] += part;
            left -= part;
        }
        cum[N_PAYEES - 1] += left;
    }

    /// @notice Anyone claims a payee's entitlement with its proof; modes 6-7 use a wrong amount or
    /// another payee's proof.
    function claim(uint256 tokenSeed, uint256 payeeSeed, uint256 mode) external step("claim") {
        mode %= 8;
        (address tok, uint256 i, bool claimable) = _pickClaim(tokenSeed, payeeSeed, mode < 6);
        // Nothing to claim but net revenue not yet published: usually the settler publishes first.
        if (!claimable && mode < 6 && _sub(payeeSeed, 7) % 4 != 0) {
            TokenGhost storage tg = _tokenGhost[tok];
            if (tg.capturedNet > tg.published) {
                _publish(tok, _sub(payeeSeed, 9), 0);
                (tok, i,) = _pickClaim(tokenSeed, payeeSeed, true);
            }
        }
        _claim(tok, i, payeeSeed, mode);
    }

    function _claim(address tok, uint256 i, uint256 payeeSeed, uint256 mode) internal {
        TokenGhost storage t = _tokenGhost[tok];
        address account = payees[i];
        (uint256 cumulative, bytes32[] memory proof) = _claimArgs(tok, i, payeeSeed, mode);
        uint256 already = ghostClaimedBy[tok][account];
        bool expectOk = t.epoch > 0 && mode < 6 && cumulative > already
            && t.claimed + (cumulative - already) <= t.published;
        uint256 before = _balance(tok, account);
        vm.prank(mode % 2 == 0 ? account : stranger);
        try vault.claim(tok, account, cumulative, proof) returns (uint256 amount) {
            _expect("claim", true, expectOk, "");
            if (amount != cumulative - already) _mismatch("claim: amount", "");
            if (_balance(tok, account) != before + amount) _mismatch("claim: paid", "");
            ghostClaimedBy[tok][account] = cumulative;
            t.claimed += amount;
        } catch (bytes memory err) {
            _expect("claim", false, expectOk, err);
        }
    }

    /// @dev The payee's entitlement and proof in the current tree; mode 6 inflates the amount,
    /// mode 7 takes the next payee's proof.
    function _claimArgs(address tok, uint256 i, uint256 seed, uint256 mode)
        internal
        view
        returns (uint256 cumulative, bytes32[] memory proof)
    {
        uint256[] memory cum = _cumulative[tok];
        bytes32[] memory tree = Merkle.build(payees, cum);
        cumulative = cum[i];
        proof = Merkle.proof(tree, payees[i], cumulative);
        if (mode == 6) {
            cumulative += 1 + _sub(seed, 8) % 1e18;
        } else if (mode == 7) {
            uint256 j = (i + 1) % N_PAYEES;
            proof = Merkle.proof(tree, payees[j], cum[j]);
        }
    }

    /// @dev Mostly a (token, payee) with something left to claim, else the seeds' choice.
    function _pickClaim(uint256 tokenSeed, uint256 payeeSeed, bool preferClaimable)
        internal
        view
        returns (address tok, uint256 i, bool claimable)
    {
        uint256 start = (tokenSeed % 2) * N_PAYEES + payeeSeed % N_PAYEES;
        if (preferClaimable && _sub(payeeSeed, 128) % 8 != 0) {
            for (uint256 k = 0; k < 2 * N_PAYEES; ++k) {
                uint256 c = (start + k) % (2 * N_PAYEES);
                (tok, i) = (tokens[c / N_PAYEES], c % N_PAYEES);
                if (_cumulative[tok][i] > ghostClaimedBy[tok][payees[i]]) return (tok, i, true);
            }
        }
        (tok, i) = (tokens[start / N_PAYEES], start % N_PAYEES);
        claimable = _cumulative[tok][i] > ghostClaimedBy[tok][payees[i]];
    }

    /// @notice Anyone pays accrued fees of a token to the fee recipient.
    function withdrawFees(uint256 tokenSeed, uint256 callerSeed) external step("withdrawFees") {
        address tok = tokens[tokenSeed % 2];
        TokenGhost storage t = _tokenGhost[tok];
        uint256 expected = t.feesTotal - t.feesWithdrawn;
        uint256 before = _balance(tok, feeRecipient);
        vm.prank(callerSeed % 2 == 0 ? stranger : owners[callerSeed % N_OWNERS]);
        try vault.withdrawFees(tok) returns (uint256 amount) {
            _expect("withdrawFees", true, true, "");
            if (amount != expected) _mismatch("withdrawFees: amount", "");
            if (_balance(tok, feeRecipient) != before + amount) {
                _mismatch("withdrawFees: paid", "");
            }
            t.feesWithdrawn += amount;
            if (amount != 0) ++successes["withdrawFeesNonZero"];
        } catch (bytes memory err) {
            _expect("withdrawFees", false, true, err);
        }
    }

    /// @notice The admin changes the platform fee (above 10% must be refused).
    function setFee(uint256 bpsSeed) external step("setFee") {
        uint256 bps = _bound(bpsSeed, 0, 1100);
        vm.prank(admin);
        try vault.setFee(uint16(bps), feeRecipient) {
            _expect("setFee", true, bps <= 1000, "");
            ghostFeeBps = bps;
        } catch (bytes memory err) {
            _expect("setFee", false, bps <= 1000, err);
        }
    }

    /// @notice Time passes: up to 12 hours, sometimes up to 3 days.
    function warp(uint256 secondsSeed) external step("warp") {
        uint256 maxStep = _sub(secondsSeed, 128) % 8 == 0 ? 3 days : 12 hours;
        _warpTo(currentTime + _bound(secondsSeed, 1, maxStep));
        ++successes["warp"];
    }

    // ================================================================ views for the invariants

    function grantCount() external view returns (uint256) {
        return _grants.length;
    }

    function grantAt(uint256 i) external view returns (GrantRecord memory) {
        return _grants[i];
    }

    function escrowCount() external view returns (uint256) {
        return _escrows.length;
    }

    function escrowAt(uint256 i) external view returns (EscrowRecord memory) {
        return _escrows[i];
    }

    function recordedJobCount() external view returns (uint256) {
        return recordedJobs.length;
    }

    function datasetCount() external view returns (uint256) {
        return datasetIds.length;
    }

    function tokenGhost(address tok) external view returns (TokenGhost memory) {
        return _tokenGhost[tok];
    }

    function cumulativeOf(address tok, uint256 payeeIdx) external view returns (uint256) {
        return _cumulative[tok][payeeIdx];
    }

    function anchorerCount() external view returns (uint256) {
        return anchorers.length;
    }

    /// @notice Root `i` of the pool the handler anchors from.
    function anchorRoot(uint256 i) public pure returns (bytes32) {
        return keccak256(abi.encode("batch", i));
    }

    function rootCount() external pure returns (uint256) {
        return N_ROOTS;
    }

    /// @notice The anchor the ghost state expects for (`executor_`, `root`).
    function anchorGhost(address executor_, bytes32 root)
        external
        view
        returns (AnchorGhost memory)
    {
        return _anchorGhost[executor_][root];
    }

    /// @notice Held escrow amounts of a token according to the ghost state.
    function ghostHeld(address tok) external view returns (uint256 held) {
        TokenGhost storage t = _tokenGhost[tok];
        return t.escrowed - t.capturedGross - t.refunded;
    }

    // ================================================================ helpers

    function _register(address who, uint16 share) internal {
        uint256 n = registry.datasetCount() + 1;
        vm.prank(who);
        try registry.register(_version(n, 1), share, "ipfs://meta") returns (uint256 id) {
            _expect("register", true, true, "");
            if (id != n) _mismatch("register: id", "");
            datasetIds.push(id);
            ghostOwner[id] = who;
            ghostVersion[id] = 1;
            vm.prank(who);
            registry.setExecutor(id, executor, true);
            ghostExecutor[id][0][executor] = true;
        } catch (bytes memory err) {
            _expect("register", false, true, err);
        }
    }

    function _version(uint256 ds, uint256 v) internal pure returns (IDataRegistry.Version memory) {
        return IDataRegistry.Version({
            commitment: keccak256(abi.encode(ds, v, "rows")),
            contributorsRoot: keccak256(abi.encode(ds, v, "contributors")),
            schemaHash: keccak256(abi.encode(ds, v, "schema")),
            metadataHash: keccak256(abi.encode(ds, v, "metadata"))
        });
    }

    function _terms(uint256 ds, address grantor, uint256 seed)
        internal
        view
        returns (IAccessGrants.Grant memory g)
    {
        g.datasetId = ds;
        g.grantor = grantor;
        g.grantee = consumers[_sub(seed, 1) % N_CONSUMERS];
        g.algorithmHash = _sub(seed, 2) % 4 == 0 ? ANY_CATALOG : ALGO;
        g.purpose = PURPOSE;
        uint256 s = _sub(seed, 3);
        g.validFrom =
            uint64(s % 3 == 0 ? currentTime + (s / 3) % 6 hours : currentTime - (s / 3) % 1 hours);
        g.validUntil = g.validFrom + uint64(_bound(_sub(seed, 4), 1 hours, 14 days));
        g.maxUses = uint32(_bound(_sub(seed, 5), 1, 6));
        s = _sub(seed, 6);
        g.epsilonBudget = s % 5 == 0 ? 0 : uint64(_bound(s, 1, 2_000_000));
        g.paymentToken = _sub(seed, 7) % 2 == 0 ? address(0) : address(token);
        s = _sub(seed, 8);
        g.pricePerUse = s % 4 == 0 ? 0 : _bound(s, 1e9, 1e18);
        g.nonce = nextNonce[grantor];
        g.deadline = currentTime + 1 hours;
    }

    /// @dev Mostly picks a grant the ghost state considers live (so records and captures happen
    /// often), sometimes any grant; `freeOnly` and `grantee` filter.
    function _pickGrant(uint256 seed, bool freeOnly, address grantee)
        internal
        view
        returns (bool found, uint256 idx)
    {
        uint256 n = _grants.length;
        bool preferLive = _sub(seed, 240) % 8 != 0;
        for (uint256 pass = preferLive ? 0 : 1; pass < 2; ++pass) {
            for (uint256 k = 0; k < n; ++k) {
                idx = (seed % n + k) % n;
                GrantRecord storage r = _grants[idx];
                if (freeOnly && r.terms.pricePerUse != 0) continue;
                if (grantee != address(0) && r.terms.grantee != grantee) continue;
                if (pass == 0 && !_live(r)) continue;
                return (true, idx);
            }
        }
        return (false, seed % n);
    }

    /// @dev A held escrow: preferably one the ghost state says can be recorded (live grant, job not
    /// recorded, matching amount and token, uses left), or, to explore, preferably one that cannot;
    /// else any held escrow.
    function _pickHeldEscrow(uint256 seed, bool wantRecordable)
        internal
        view
        returns (bool found, uint256 idx, bool recordable)
    {
        uint256 n = _escrows.length;
        for (uint256 pass = 0; pass < 2; ++pass) {
            for (uint256 k = 0; k < n; ++k) {
                idx = (seed % n + k) % n;
                EscrowRecord storage e = _escrows[idx];
                if (e.status != HELD) continue;
                recordable = _recordable(e);
                if (pass == 0 && recordable != wantRecordable) continue;
                return (true, idx, recordable);
            }
        }
        return (false, 0, false);
    }

    function _recordable(EscrowRecord storage e) internal view returns (bool) {
        GrantRecord storage r = _grants[e.grantIdx];
        if (!_live(r) || recordCount[e.jobId] != 0) return false;
        if (uint256(r.uses) + e.uses > r.terms.maxUses) return false;
        return r.terms.pricePerUse == 0
            || (e.payer == r.terms.grantee
                && e.token == r.terms.paymentToken
                && e.amount == r.terms.pricePerUse * e.uses);
    }

    function _live(GrantRecord storage r) internal view returns (bool) {
        uint256 ds = r.terms.datasetId;
        return !r.frozen && !r.revoked && r.uses < r.terms.maxUses
            && (r.terms.algorithmHash != ANY_CATALOG || ghostCatalog[ALGO])
            && currentTime >= r.terms.validFrom && currentTime <= r.terms.validUntil
            && ghostEpoch[ds] == r.epoch && ghostExecutor[ds][ghostEpoch[ds]][executor];
    }

    /// @dev Snapshots the contract's own counters of a grant that must never be consumed again.
    function _freeze(GrantRecord storage r) internal {
        if (r.frozen) return;
        IAccessGrants.GrantState memory s = grants.stateOf(r.id);
        r.frozen = true;
        r.frozenUses = s.uses;
        r.frozenEps = s.epsilonSpent;
    }

    function _warpTo(uint256 t) internal {
        currentTime = t;
        vm.warp(t);
        for (uint256 i = 0; i < _grants.length; ++i) {
            if (t > _grants[i].terms.validUntil) _freeze(_grants[i]);
        }
    }

    function _expect(string memory action, bool success, bool expected, bytes memory err) internal {
        if (success) ++successes[action];
        if (success != expected) {
            _mismatch(
                string.concat(action, success ? ": unexpected success" : ": unexpected revert"), err
            );
        }
    }

    function _mismatch(string memory what, bytes memory err) internal {
        ++ghostModelMismatches;
        lastMismatch = what;
        lastMismatchRevert = err;
    }

    /// @dev The ghost model's escrow id, derived independently of the contracts' library.
    function _escrowId(bytes32 jobId, bytes32 grantId, address payer)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(jobId, grantId, payer));
    }

    function _balance(address tok, address who) internal view returns (uint256) {
        return tok == address(0) ? who.balance : MockToken(tok).balanceOf(who);
    }

    function _ownerIndex(address who) internal view returns (uint256) {
        for (uint256 i = 0; i < N_OWNERS; ++i) {
            if (owners[i] == who) return i;
        }
        revert("handler: not an owner");
    }

    function _consumerIndex(address who) internal view returns (uint256) {
        return consumers[0] == who ? 0 : 1;
    }

    function _sub(uint256 seed, uint256 k) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, k)));
    }

    function _bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return min + x % (max - min + 1);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessGrants} from "../src/interfaces/IAccessGrants.sol";
import {LedgerTestBase} from "./utils/LedgerTestBase.sol";

contract SmokeTest is LedgerTestBase {
    function test_fullFlow_RecordsJob() public {
        uint256 id = _register(owner);
        IAccessGrants.Grant memory g = _terms(id, owner);
        bytes32 grantId = grants.issueWithSig(g, _sign(OWNER_KEY, g));
        bytes32 jobId = keccak256("job-1");
        _escrow(jobId, grantId, g, 1);
        vm.prank(executor);
        usage.recordUsage(_job(jobId), _use(g, 1, 100_000));
        assertEq(usage.receiptOf(jobId), keccak256(abi.encode("receipt", jobId)), "receipt");
        assertEq(vault.revenueOf(id, address(0)), 0.01 ether * 9750 / 10_000, "revenue");
    }
}

"""`verify_result` against a real anvil: a recorded job verifies; a tampered result, a tampered
receipt, a bad signature, a receipt of another chain or other contracts, a job never recorded,
a job recorded by another executor, and batch proofs that fail are each rejected with a reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

from ledger.chain.anvil import Anvil
from ledger.merkle import StandardMerkleTree
from ledger.provenance.receipt import BatchInclusion, Receipt, SignedReceipt, sign_receipt
from ledger.provenance.verify import Rejection, verify_result
from tests.integration.chain import LedgerContracts, deploy_ledger, dev_accounts, transact
from tests.integration.test_provenance_support import (
    World,
    make_world,
    record,
    result_bytes,
    signed_job,
)

RESULT = {"mean_age": 61.25, "count": 412, "columns": ["age"], "noise": {"epsilon": 0.25}}


@pytest.fixture(scope="module")
def world(ledger: LedgerContracts) -> World:
    return make_world(ledger, "verify")


@pytest.fixture(scope="module")
def recorded(world: World) -> SignedReceipt:
    signed = signed_job(world, world.datasets, result=RESULT)
    record(world, signed)
    return signed


def as_file(signed: SignedReceipt) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(signed.to_json())
    return data


def test_recorded_job_verifies(world: World, recorded: SignedReceipt) -> None:
    verdict = verify_result(result_bytes(RESULT), recorded.to_json(), world.w3)
    assert verdict.verified, verdict.message
    assert verdict.reason is None and verdict.mode == "job"
    assert verdict.receipt_hash == recorded.hash
    assert verdict.executor == world.executor.address
    assert verdict.recorded_block is not None and verdict.recorded_block > 0
    # Whitespace and key order of the result file do not matter; values do.
    reordered = json.dumps(dict(reversed(list(RESULT.items())))).encode()
    assert verify_result(reordered, recorded.to_json(), world.w3).verified


def test_tampered_result_is_rejected(world: World, recorded: SignedReceipt) -> None:
    tampered = dict(RESULT, mean_age=61.26)
    verdict = verify_result(result_bytes(tampered), recorded.to_json(), world.w3)
    assert (verdict.verified, verdict.reason) == (False, Rejection.TAMPERED_RESULT)
    assert recorded.receipt.result_hash in verdict.message
    verdict = verify_result(b"{not json", recorded.to_json(), world.w3)
    assert verdict.reason is Rejection.TAMPERED_RESULT


def test_tampered_receipt_is_rejected(world: World, recorded: SignedReceipt) -> None:
    data = as_file(recorded)
    data["receipt"]["datasets"][0]["epsilon_spent"] = 1  # claim less privacy spent
    verdict = verify_result(result_bytes(RESULT), json.dumps(data), world.w3)
    assert (verdict.verified, verdict.reason) == (False, Rejection.TAMPERED_RECEIPT)
    assert "hashes to" in verdict.message


def test_rehashed_tampered_receipt_fails_the_signature(
    world: World, recorded: SignedReceipt
) -> None:
    data = as_file(recorded)
    data["receipt"]["suppression_k"] = 1
    data["hash"] = Receipt.from_json_value(data["receipt"]).hash()
    verdict = verify_result(result_bytes(RESULT), json.dumps(data), world.w3)
    assert (verdict.verified, verdict.reason) == (False, Rejection.BAD_SIGNATURE)
    # The right hash, signed by someone else than the executor it names:
    message = encode_defunct(primitive=bytes.fromhex(recorded.hash[2:]))
    forged = Account.sign_message(message, world.other_executor.key).signature
    data = as_file(recorded)
    data["signature"] = "0x" + bytes(forged).hex()
    verdict = verify_result(result_bytes(RESULT), json.dumps(data), world.w3)
    assert verdict.reason is Rejection.BAD_SIGNATURE
    assert world.other_executor.address in verdict.message


def test_malformed_receipt_is_rejected(world: World, recorded: SignedReceipt) -> None:
    for text in ("[]", "not json", json.dumps({"receipt": {"job_id": "0x12"}})):
        verdict = verify_result(result_bytes(RESULT), text, world.w3)
        assert verdict.reason is Rejection.MALFORMED_RECEIPT, text
    data = as_file(recorded)
    data["receipt"]["consumer"] = data["receipt"]["consumer"].lower()  # not the signed form
    verdict = verify_result(result_bytes(RESULT), json.dumps(data), world.w3)
    assert verdict.reason is Rejection.MALFORMED_RECEIPT


def test_receipt_from_another_chain_is_rejected(world: World) -> None:
    with Anvil(chain_id=31_338) as other:
        w3 = Web3(Web3.HTTPProvider(other.url))
        deployer, admin = dev_accounts(w3)[:2]
        other_world = make_world(deploy_ledger(w3, deployer=deployer, admin=admin), "verify")
        signed = signed_job(other_world, other_world.datasets[:1], result=RESULT)
        record(other_world, signed)
        assert verify_result(result_bytes(RESULT), signed.to_json(), w3).verified
    verdict = verify_result(result_bytes(RESULT), signed.to_json(), world.w3)
    assert (verdict.verified, verdict.reason) == (False, Rejection.OTHER_CHAIN)
    assert "31338" in verdict.message and "31337" in verdict.message


def test_receipt_naming_other_contracts_is_rejected(world: World) -> None:
    other = dict(world.addresses, vault=world.contracts.registry.address)
    signed = signed_job(world, world.datasets[:1], result=RESULT, contracts=other)
    verdict = verify_result(result_bytes(RESULT), signed.to_json(), world.w3)
    assert verdict.reason is Rejection.OTHER_CONTRACTS
    nowhere = dict(world.addresses, usage_ledger="0x" + "ab" * 20)
    signed = signed_job(world, world.datasets[:1], result=RESULT, contracts=nowhere)
    verdict = verify_result(result_bytes(RESULT), signed.to_json(), world.w3)
    assert verdict.reason is Rejection.OTHER_CONTRACTS
    assert "no contract" in verdict.message


def test_receipt_naming_unregistered_data_is_rejected(world: World) -> None:
    signed = signed_job(world, world.datasets[:1], result=RESULT)
    entry = signed.receipt.datasets[0]
    for change, expected in (
        ({"commitment": "0x" + "cd" * 32}, "registered with commitment"),
        ({"version": 7}, "has no version 7"),
    ):
        fake = signed.receipt.model_copy(update={"datasets": [entry.model_copy(update=change)]})
        forged = sign_receipt(fake, world.executor.key.to_0x_hex())
        verdict = verify_result(result_bytes(RESULT), forged.to_json(), world.w3)
        assert verdict.reason is Rejection.DATASET_MISMATCH, verdict.message
        assert expected in verdict.message


def test_job_never_recorded_is_rejected(world: World) -> None:
    signed = signed_job(world, world.datasets[:1], result=RESULT)
    verdict = verify_result(result_bytes(RESULT), signed.to_json(), world.w3)
    assert (verdict.verified, verdict.reason) == (False, Rejection.NEVER_RECORDED)
    assert signed.receipt.job_id in verdict.message


def test_job_recorded_with_another_receipt_is_rejected(world: World) -> None:
    honest = signed_job(world, world.datasets[:1], result=RESULT)
    record(world, honest)
    # The executor signs a second receipt for the same job with a different result.
    other = sign_receipt(
        honest.receipt.model_copy(update={"suppression_k": 3}), world.executor.key.to_0x_hex()
    )
    verdict = verify_result(result_bytes(RESULT), other.to_json(), world.w3)
    assert verdict.reason is Rejection.TAMPERED_RECEIPT
    assert honest.hash in verdict.message


def test_job_recorded_by_another_executor_is_rejected(world: World) -> None:
    signed = signed_job(world, world.datasets[:1], result=RESULT)
    record(world, signed, recorder=world.other_executor)
    verdict = verify_result(result_bytes(RESULT), signed.to_json(), world.w3)
    assert (verdict.verified, verdict.reason) == (False, Rejection.OTHER_EXECUTOR)
    assert world.other_executor.address in verdict.message


@pytest.fixture(scope="module")
def batch(world: World) -> Iterator[tuple[list[SignedReceipt], StandardMerkleTree]]:
    receipts = [signed_job(world, world.datasets[:1], result=dict(RESULT, n=i)) for i in range(5)]
    tree = StandardMerkleTree.of([[s.hash] for s in receipts], ["bytes32"])
    yield receipts, tree


def with_proof(
    signed: SignedReceipt, tree: StandardMerkleTree, index: int, root: str | None = None
) -> SignedReceipt:
    return signed.with_batch(BatchInclusion(root=root or tree.root, proof=tree.proof(index)))


def test_batched_receipts_verify_once_anchored(
    world: World, batch: tuple[list[SignedReceipt], StandardMerkleTree]
) -> None:
    receipts, tree = batch
    before = verify_result(
        result_bytes(dict(RESULT, n=0)), with_proof(receipts[0], tree, 0).to_json(), world.w3
    )
    assert (before.verified, before.reason) == (False, Rejection.NEVER_RECORDED)
    root = bytes.fromhex(tree.root[2:])
    transact(
        world.contracts.usage.functions.anchorBatch(root, len(receipts)), world.executor.address
    )
    # Anchored but not recorded: an anchor alone proves no use (anyone can anchor a root).
    anchored = verify_result(
        result_bytes(dict(RESULT, n=0)), with_proof(receipts[0], tree, 0).to_json(), world.w3
    )
    assert (anchored.verified, anchored.reason) == (False, Rejection.NEVER_RECORDED)
    for signed in receipts:
        record(world, signed)
    for i, signed in enumerate(receipts):
        verdict = verify_result(
            result_bytes(dict(RESULT, n=i)), with_proof(signed, tree, i).to_json(), world.w3
        )
        assert verdict.verified, verdict.message
        assert verdict.mode == "batch" and verdict.recorded_block is not None
    # A proof of another leaf does not prove this receipt.
    verdict = verify_result(
        result_bytes(dict(RESULT, n=1)), with_proof(receipts[1], tree, 2).to_json(), world.w3
    )
    assert (verdict.verified, verdict.reason) == (False, Rejection.PROOF_FAILS)


def test_batch_anchored_by_another_executor_is_rejected(world: World) -> None:
    receipts = [signed_job(world, world.datasets[:1], result=dict(RESULT, m=i)) for i in range(3)]
    tree = StandardMerkleTree.of([[s.hash] for s in receipts], ["bytes32"])
    root = bytes.fromhex(tree.root[2:])
    transact(world.contracts.usage.functions.anchorBatch(root, 3), world.other_executor.address)
    verdict = verify_result(
        result_bytes(dict(RESULT, m=0)), with_proof(receipts[0], tree, 0).to_json(), world.w3
    )
    assert (verdict.verified, verdict.reason) == (False, Rejection.OTHER_EXECUTOR)
    assert world.other_executor.address in verdict.message


def test_a_stranger_anchoring_a_forged_receipt_gets_no_verdict_of_use(world: World) -> None:
    """Anyone may call anchorBatch: a receipt signed by a key no owner approved, anchored by that
    key, naming the genuine contracts and dataset commitments, must not verify."""
    stranger = Account.create()
    world.w3.eth.send_transaction({"from": world.consumer, "to": stranger.address, "value": 10**18})
    forged = signed_job(world, world.datasets[:1], result=dict(RESULT, forged=1), executor=stranger)
    tree = StandardMerkleTree.of([[forged.hash], ["0x" + "ab" * 32]], ["bytes32"])
    fn = world.contracts.usage.functions.anchorBatch(bytes.fromhex(tree.root[2:]), 2)
    signed_tx = stranger.sign_transaction(
        fn.build_transaction(
            {"from": stranger.address, "nonce": 0, "chainId": world.w3.eth.chain_id}
        )
    )
    world.w3.eth.wait_for_transaction_receipt(
        world.w3.eth.send_raw_transaction(signed_tx.raw_transaction)
    )
    verdict = verify_result(
        result_bytes(dict(RESULT, forged=1)),
        forged.with_batch(
            BatchInclusion(root=tree.root, proof=tree.proof_of([forged.hash]))
        ).to_json(),
        world.w3,
    )
    assert (verdict.verified, verdict.reason) == (False, Rejection.NEVER_RECORDED)


def test_a_pinned_usage_ledger_rejects_receipts_naming_another(
    world: World, recorded: SignedReceipt
) -> None:
    genuine = world.contracts.usage.address
    ok = verify_result(result_bytes(RESULT), recorded.to_json(), world.w3, usage_ledger=genuine)
    assert ok.verified, ok.message
    other = "0x" + "12" * 20
    verdict = verify_result(result_bytes(RESULT), recorded.to_json(), world.w3, usage_ledger=other)
    assert (verdict.verified, verdict.reason) == (False, Rejection.OTHER_CONTRACTS)
    assert other in verdict.message

"""The transaction sender and deployment against a real anvil: nonces under concurrency, decoded
custom errors, idempotent deployment and its manifest."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from web3 import Web3

from ledger.chain import reverts
from ledger.chain.anvil import Anvil
from ledger.chain.deploy import contracts_of, deploy, load_deployment, manifest_path
from ledger.chain.sender import TxSender
from ledger.errors import DeploymentMismatchError, DeploymentNotFoundError, RpcUnavailableError
from ledger.settings import ANVIL_DEV_KEYS

ZERO32 = b"\x00" * 32


@pytest.fixture()
def node() -> Anvil:
    with Anvil() as anvil:
        yield anvil


def test_deploy_writes_manifest_and_is_idempotent(node: Anvil, tmp_path: Path) -> None:
    w3 = Web3(Web3.HTTPProvider(node.url))
    sender = TxSender(w3, ANVIL_DEV_KEYS[0])
    first, sent = deploy(w3, sender, tmp_path)
    assert sent
    assert manifest_path(tmp_path, 31337).exists()
    block = w3.eth.block_number
    again, sent_again = deploy(w3, sender, tmp_path)
    assert not sent_again
    assert again == first
    assert w3.eth.block_number == block, "a second deploy must send nothing"
    assert load_deployment(tmp_path, 31337) == first
    contracts = contracts_of(w3, first)
    grants, usage = contracts["AccessGrants"], contracts["UsageLedger"]
    role = grants.functions.CONSUMER_ROLE().call()
    assert grants.functions.hasRole(role, usage.address).call()


def test_manifest_of_a_reset_chain_is_replaced(tmp_path: Path) -> None:
    with Anvil() as first_node:
        w3 = Web3(Web3.HTTPProvider(first_node.url))
        old, _ = deploy(w3, TxSender(w3, ANVIL_DEV_KEYS[0]), tmp_path)
        # Mine a block so the fresh chain below differs at the deploy block.
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    with Anvil() as second_node:
        w3 = Web3(Web3.HTTPProvider(second_node.url))
        w3.provider.make_request("anvil_setNextBlockTimestamp", [2_000_000_000])  # type: ignore[arg-type]
        new, sent = deploy(w3, TxSender(w3, ANVIL_DEV_KEYS[0]), tmp_path)
    assert sent, "the old manifest's contracts are not on the new chain: deploy again"
    assert new.deploy_block_hash != old.deploy_block_hash


def test_deploy_refuses_other_artifacts_without_redeploy(node: Anvil, tmp_path: Path) -> None:
    w3 = Web3(Web3.HTTPProvider(node.url))
    sender = TxSender(w3, ANVIL_DEV_KEYS[0])
    deployment, _ = deploy(w3, sender, tmp_path)
    path = manifest_path(tmp_path, 31337)
    path.write_text(path.read_text().replace(deployment.artifact_hashes["UsageLedger"], "0" * 64))
    with pytest.raises(DeploymentMismatchError) as info:
        deploy(w3, sender, tmp_path)
    assert info.value.changed == ["UsageLedger"]
    assert "--redeploy" in str(info.value)
    redeployed, sent = deploy(w3, sender, tmp_path, redeploy=True)
    assert sent and redeployed.addresses != deployment.addresses


def test_missing_manifest_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DeploymentNotFoundError, match="run `ledger deploy`"):
        load_deployment(tmp_path, 31337)


def test_revert_is_refused_before_sending_with_decoded_error(node: Anvil, tmp_path: Path) -> None:
    w3 = Web3(Web3.HTTPProvider(node.url))
    sender = TxSender(w3, ANVIL_DEV_KEYS[0])
    deployment, _ = deploy(w3, sender, tmp_path)
    registry = contracts_of(w3, deployment)["DataRegistry"]
    nonce = w3.eth.get_transaction_count(sender.address)
    version = (ZERO32, b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)
    with pytest.raises(reverts.DataRegistryZeroHash) as info:
        sender.send(registry.functions.register(version, 7000, "ipfs://x"))
    assert info.value.arguments == {"field": "commitment"}
    assert w3.eth.get_transaction_count(sender.address) == nonce, "no nonce spent on a refusal"
    with pytest.raises(reverts.DataRegistryUnknownDataset) as unknown:
        sender.send(registry.functions.setRevenueSplit(99, 100))
    assert unknown.value.arguments == {"datasetId": 99}


def test_concurrent_sends_from_8_threads_never_collide(node: Anvil, tmp_path: Path) -> None:
    w3 = Web3(Web3.HTTPProvider(node.url))
    sender = TxSender(w3, ANVIL_DEV_KEYS[0])
    deployment, _ = deploy(w3, sender, tmp_path)
    usage = contracts_of(w3, deployment)["UsageLedger"]
    start = w3.eth.get_transaction_count(sender.address)
    errors: list[BaseException] = []
    per_thread = 10

    def work(thread: int) -> None:
        try:
            for i in range(per_thread):
                root = Web3.keccak(text=f"batch-{thread}-{i}")
                sender.send(usage.functions.anchorBatch(root, 1))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert w3.eth.get_transaction_count(sender.address) == start + 8 * per_thread
    for thread in range(8):
        for i in range(per_thread):
            root = Web3.keccak(text=f"batch-{thread}-{i}")
            anchor = usage.functions.anchorOf(sender.address, root).call()
            assert anchor[0] == sender.address


def test_unreachable_rpc_is_named_without_its_secrets() -> None:
    url = "http://user:pw@127.0.0.1:9/v3/SECRETKEY"
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 0.5}))
    sender = TxSender(w3, ANVIL_DEV_KEYS[0])
    sender.policy = type(sender.policy)(retries=2, backoff=0.01)
    with pytest.raises(RpcUnavailableError, match="http://127.0.0.1:9 is unavailable") as info:
        sender.send_raw(to=None, data="0x00", value=0, gas=21_000)
    for secret in ("SECRETKEY", "pw"):
        assert secret not in str(info.value)

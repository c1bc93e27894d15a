"""The managed anvil node: start, chain id, state kept across restarts, clear failures."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from web3 import Web3
from web3.types import Wei

from ledger.chain.anvil import Anvil, default_anvil_path
from ledger.errors import AnvilError, AnvilNotFoundError, ChainError, LedgerError
from tests.integration.chain import dev_accounts

pytestmark = pytest.mark.integration


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_starts_answers_and_stops() -> None:
    node = Anvil()
    assert not node.running
    with node:
        assert node.running and node.url == f"http://127.0.0.1:{node.port}"
        w3 = Web3(Web3.HTTPProvider(node.url))
        assert w3.eth.chain_id == node.chain_id == 31337
        assert len(dev_accounts(w3)) == 10
        port = node.port
    assert not node.running
    assert not _listening(port)
    node.stop()  # stopping twice is harmless


def test_two_nodes_with_their_own_chain_ids() -> None:
    with Anvil(chain_id=31338) as first, Anvil(chain_id=4242) as second:
        assert first.port != second.port
        assert Web3(Web3.HTTPProvider(first.url)).eth.chain_id == 31338
        assert Web3(Web3.HTTPProvider(second.url)).eth.chain_id == 4242


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "data" / "chain.json"
    with Anvil(state=state) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        sender, receiver = dev_accounts(w3)[:2]
        tx = w3.eth.send_transaction({"from": sender, "to": receiver, "value": Wei(12345)})
        w3.eth.wait_for_transaction_receipt(tx)
        balance, height = w3.eth.get_balance(receiver), w3.eth.block_number
    assert state.is_file()  # written on SIGTERM

    with Anvil(state=state) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        assert w3.eth.get_balance(receiver) == balance
        assert w3.eth.block_number == height
        assert w3.eth.get_transaction(tx)["value"] == 12345


def test_missing_binary_says_to_run_make_setup(tmp_path: Path) -> None:
    missing = tmp_path / "node_modules" / "anvil"
    with pytest.raises(AnvilNotFoundError, match="make setup") as info:
        Anvil(binary=missing).start()
    assert info.value.path == missing
    assert isinstance(info.value, ChainError) and isinstance(info.value, LedgerError)


def test_default_binary_is_the_npm_package() -> None:
    path = default_anvil_path(Path("/project"))
    assert path.parts[:4] == ("/", "project", "node_modules", "@foundry-rs")
    assert path.name == "anvil" and path.parent.parent.name.startswith("anvil-")


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-anvil"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_early_exit_is_reported_with_its_output(tmp_path: Path) -> None:
    binary = _script(tmp_path, 'echo "error: unexpected argument" >&2; exit 2')
    with pytest.raises(AnvilError, match="exited with code 2") as info:
        Anvil(binary=binary).start()
    assert "unexpected argument" in info.value.output


def test_silent_node_times_out_and_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    binary = _script(tmp_path, f"echo $$ > {pid_file}; exec sleep 30")
    node = Anvil(binary=binary, startup_timeout=0.5)
    with pytest.raises(AnvilError, match="did not answer eth_chainId"):
        node.start()
    assert not node.running
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists()  # terminated and reaped


def test_requested_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(AnvilError, match=f"port {port} .* in use"):
            Anvil(port=port, startup_timeout=5).start()


def test_unexecutable_binary_is_an_anvil_error(tmp_path: Path) -> None:
    binary = tmp_path / "anvil"
    binary.write_bytes(b"\x00not an executable format")
    binary.chmod(0o755)
    with pytest.raises(AnvilError, match="cannot run"):
        Anvil(binary=binary).start()

"""The embedded chain: one anvil per data dir, run in the background, its state kept on disk.

``ledger chain up`` starts anvil detached with ``--state <data_dir>/chain/state.json``: it loads
that file at start, rewrites it every few seconds and on SIGTERM, so a restart keeps every
dataset, grant and payment. ``ledger chain down`` stops it with SIGTERM; ``status`` reports.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger.chain.anvil import Anvil, rpc_call
from ledger.errors import AnvilError
from ledger.settings import Settings

__all__ = ["ChainStatus", "EmbeddedChain"]

#: Chain id of the embedded chain (anvil's default).
EMBEDDED_CHAIN_ID: Final = 31337
# Seconds between state dumps: what a crash (SIGKILL) can lose at most.
_STATE_INTERVAL: Final = 2
_STOP_TIMEOUT: Final = 15.0


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """What `EmbeddedChain.status` found."""

    running: bool
    url: str
    pid: int | None
    chain_id: int | None
    block_number: int | None
    state_file: Path


class EmbeddedChain:
    """The anvil of one data dir."""

    def __init__(self, settings: Settings) -> None:
        if not settings.embedded:
            raise AnvilError(
                "LEDGER_RPC_URL is set, so the ledger uses that node and starts no embedded chain"
            )
        self.settings = settings
        self.directory = settings.data_dir / "chain"
        self.state_file = self.directory / "state.json"
        self.pid_file = self.directory / "anvil.pid"
        self.log_file = self.directory / "anvil.log"
        self.url = settings.resolved_rpc_url

    def up(self) -> ChainStatus:
        """Start the chain unless it is running; returns its status.

        Raises:
            AnvilNotFoundError: anvil is not installed (run `make setup`).
            AnvilError: it cannot start (port taken by something else, bad state file, ...).
        """
        current = self.status()
        if current.running:
            return current
        if current.pid is not None:
            raise AnvilError(
                f"our anvil (pid {current.pid}) runs but does not answer on {self.url}; "
                "run `ledger chain down` first"
            )
        try:
            rpc_call(self.url, "eth_chainId", timeout=1.0)
        except (OSError, ValueError):
            pass  # nothing listens there: the port is ours to take
        else:
            raise AnvilError(
                f"another node already answers on {self.url}; stop it or choose another "
                "port with LEDGER_ANVIL_PORT"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        node = Anvil(
            chain_id=EMBEDDED_CHAIN_ID,
            state=self.state_file,
            port=self.settings.anvil_port,
            log_file=self.log_file,
            startup_timeout=30.0,
            extra_args=("--state-interval", str(_STATE_INTERVAL)),
        )
        node.start()
        pid = node.detach()
        self.pid_file.write_text(f"{pid}\n")
        return self.status()

    def down(self) -> bool:
        """Stop the chain (its state is written on the way out); False if it was not running.

        Raises:
            AnvilError: it did not stop within the timeout.
        """
        pid = self._pid()
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid_file.unlink(missing_ok=True)
            return False
        deadline = time.monotonic() + _STOP_TIMEOUT
        while _alive_anvil(pid):
            if time.monotonic() > deadline:
                raise AnvilError(f"pid {pid} did not stop within {_STOP_TIMEOUT:g} s")
            time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> ChainStatus:
        """Whether the chain runs, and its chain id and height if it answers."""
        pid = self._pid()
        chain_id = block = None
        if pid is not None:
            try:
                chain_id = int(rpc_call(self.url, "eth_chainId", timeout=2.0), 16)
                block = int(rpc_call(self.url, "eth_blockNumber", timeout=2.0), 16)
            except (OSError, ValueError, TypeError):
                pass
        return ChainStatus(
            running=pid is not None and chain_id is not None,
            url=self.url,
            pid=pid,
            chain_id=chain_id,
            block_number=block,
            state_file=self.state_file,
        )

    def _pid(self) -> int | None:
        """The recorded pid if that process is still our anvil; clears a stale pid file."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive_anvil(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None


def _alive_anvil(pid: int) -> bool:
    # A pid can be reused by another program after anvil exits: check it is anvil.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return b"anvil" in cmdline and state != "Z"

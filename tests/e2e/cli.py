"""Running the `ledger` command as a user does, for the end-to-end tests."""

from __future__ import annotations

import socket
import subprocess
import sys

__all__ = ["free_port", "ledger"]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ledger(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ledger ARGS`` with `env`; asserts it succeeded (or failed, with ``ok=False``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    return proc

"""The embedded development chain: anvil (Foundry) as a managed subprocess.

    with Anvil(chain_id=31337, state=Path("chain.json")) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))

`Anvil` starts the binary the project installs from npm, on 127.0.0.1 and a free port, waits
(bounded) until it answers ``eth_chainId``, and stops it with SIGTERM, on which anvil writes its
``--state`` file, so the chain survives restarts. It speaks plain JSON-RPC over HTTP itself and
does not need web3.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

import ledger
from ledger.errors import AnvilError, AnvilNotFoundError

__all__ = ["Anvil", "default_anvil_path", "rpc_call"]

_ARCHES: Final = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
# The bind race of a port picked by `_free_port` is retried this many times.
_START_ATTEMPTS: Final = 3
_POLL_INTERVAL: Final = 0.05
_OUTPUT_TAIL_LINES: Final = 20
# Plain HTTP to the node, never through a proxy from the environment.
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def default_anvil_path(project_root: Path | None = None) -> Path:
    """Where ``npm ci`` puts anvil: ``node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil``.

    `project_root` defaults to the checkout this package was imported from.
    """
    root = project_root or Path(ledger.__file__).resolve().parent.parent
    system = platform.system().lower()
    arch = _ARCHES.get(platform.machine().lower(), platform.machine().lower())
    return root / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"


class Anvil:
    """One anvil node, started by `start` (or ``with``) and stopped by `stop`.

    Args:
        binary: The anvil executable; defaults to `default_anvil_path`.
        chain_id: ``--chain-id``; anvil's default (31337) if None. Checked once the node answers.
        state: ``--state FILE``: loaded at start if it exists, written when the node stops
            (its directory is created if needed).
        host: Interface to listen on.
        port: Port to listen on; a free one is picked if None.
        startup_timeout: Seconds to wait for the first ``eth_chainId`` answer.
        log_file: Appends anvil's output there (and turns off ``--silent``); otherwise only its
            errors are kept, in a temporary file, to explain a failed start.
        extra_args: More command-line arguments, e.g. ``("--block-time", "1")``.
    """

    def __init__(
        self,
        *,
        binary: Path | None = None,
        chain_id: int | None = None,
        state: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 10.0,
        log_file: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = binary or default_anvil_path()
        self.host = host
        self.state = state
        self.startup_timeout = startup_timeout
        self.log_file = log_file
        self.extra_args = tuple(extra_args)
        self._requested_chain_id = chain_id
        self._requested_port = port
        self._port: int | None = None
        self._chain_id: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._process is not None and self._process.poll() is None

    @property
    def url(self) -> str:
        """The node's HTTP JSON-RPC endpoint.

        Raises:
            AnvilError: the node is not started.
        """
        if self._port is None:
            raise AnvilError("not started")
        return f"http://{self.host}:{self._port}"

    @property
    def port(self) -> int:
        """The port the node listens on.

        Raises:
            AnvilError: the node is not started.
        """
        if self._port is None:
            raise AnvilError("not started")
        return self._port

    @property
    def chain_id(self) -> int:
        """The chain id the node answered with.

        Raises:
            AnvilError: the node is not started.
        """
        if self._chain_id is None:
            raise AnvilError("not started")
        return self._chain_id

    def start(self) -> Self:
        """Start the node and wait until it answers ``eth_chainId``.

        Raises:
            AnvilNotFoundError: the binary is missing (run ``make setup``).
            AnvilError: it is already running, cannot be executed, exits early, does not answer
                within `startup_timeout`, or answers with another chain id than asked for.
        """
        if self._process is not None:
            raise AnvilError("already started")
        if not os.access(self.binary, os.X_OK):
            raise AnvilNotFoundError(self.binary)
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = self._requested_port or _free_port(self.host)
            try:
                self._spawn(port)
            except OSError as exc:
                self._discard()
                raise AnvilError(f"cannot run {self.binary}: {exc}") from exc
            try:
                self._chain_id = self._wait_until_ready()
            except _PortTaken:
                self._discard()
                if self._requested_port is not None or attempt == _START_ATTEMPTS:
                    raise AnvilError(f"port {port} on {self.host} is in use") from None
                continue
            except BaseException:
                self._discard()
                raise
            break
        if self._requested_chain_id not in (None, self._chain_id):
            answered = self._chain_id
            self.stop()
            raise AnvilError(f"answered chain id {answered}, expected {self._requested_chain_id}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node with SIGTERM (anvil then writes ``--state``), or SIGKILL after `timeout`.

        Does nothing if the node is not running.
        """
        if self._process is not None:
            _terminate(self._process, timeout)
        self._discard()

    def detach(self) -> int:
        """Leave the started node running after this object is gone; returns its pid.

        The caller owns the process from now on (``ledger chain up`` records the pid and
        ``ledger chain down`` stops it).

        Raises:
            AnvilError: the node is not running.
        """
        if self._process is None or self._process.poll() is not None:
            raise AnvilError("not running")
        pid = self._process.pid
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._output is not None:
            self._output.close()
            self._output = None
        self._process = None
        return pid

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port else "not started"
        return f"<Anvil {where} chain_id={self._chain_id}>"

    def _spawn(self, port: int) -> None:
        args = [str(self.binary), "--host", self.host, "--port", str(port)]
        if self._requested_chain_id is not None:
            args += ["--chain-id", str(self._requested_chain_id)]
        if self.state is not None:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            args += ["--state", str(self.state)]
        if self.log_file is None:
            args.append("--silent")
            self._output = tempfile.TemporaryFile()
        else:
            self._output = self.log_file.open("ab")
        args += self.extra_args
        # Its own session: a Ctrl-C in the terminal reaches us, and we stop anvil in order.
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._port = port
        # Do not leave an orphan node behind if the owner forgets to stop it.
        self._finalizer = weakref.finalize(self, _terminate, self._process, 5.0)

    def _wait_until_ready(self) -> int:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                output = self._output_tail()
                if "Address already in use" in output:
                    raise _PortTaken
                raise AnvilError(f"exited with code {code} before answering", output=output)
            try:
                answer = _rpc(self.url, "eth_chainId", timeout=1.0)
                if isinstance(answer, str):
                    return int(answer, 16)
            except (OSError, ValueError):
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise AnvilError(
                    f"did not answer eth_chainId on {self.url} within {self.startup_timeout:g} s",
                    output=self._output_tail(),
                )
            time.sleep(_POLL_INTERVAL)

    def _output_tail(self) -> str:
        if self._output is None:
            return ""
        try:
            self._output.flush()
            if self.log_file is not None:
                text = self.log_file.read_text(encoding="utf-8", errors="replace")
            else:
                self._output.seek(0)
                text = self._output.read().decode("utf-8", errors="replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-_OUTPUT_TAIL_LINES:])

    def _discard(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._process is not None and self._process.poll() is None:
            _terminate(self._process, 0.0)
        self._process = None
        if self._output is not None:
            self._output.close()
            self._output = None
        self._port = None
        self._chain_id = None


class _PortTaken(Exception):
    """anvil could not bind its port (another process took it after `_free_port`)."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rpc_call(url: str, method: str, params: Sequence[Any] = (), *, timeout: float) -> Any:
    """One plain JSON-RPC call over HTTP (no web3); raises OSError or ValueError on failure."""
    return _rpc(url, method, params, timeout=timeout)


def _rpc(url: str, method: str, params: Sequence[Any] = (), *, timeout: float) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with _OPENER.open(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if not isinstance(reply, dict) or "result" not in reply:
        raise ValueError(f"unexpected reply to {method}: {reply!r}")
    return reply["result"]

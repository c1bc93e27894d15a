"""A party process: one owner's vault in a secure computation (``python -m ...mpc.party``).

The process is given one data directory (``--data``; inside the bubblewrap sandbox the only data
it can see) and talks to the coordinator in JSON lines: its own stdin and stdout (stdout is
moved to a private descriptor; anything printed goes to stderr). Per job:

    coordinator -> party   {"type": "job", "index": i, "parties": m, "token": hex, "timeout": s,
                            "task": {...public parameters...}}
    party -> coordinator   {"type": "ready", "port": p}      (data loaded, listening)
                        or {"type": "error", "error": {...}}
    coordinator -> party   {"type": "peers", "ports": [...]}  or  {"type": "abort"}
    party -> coordinator   {"type": "result", "result": {...}} or {"type": "error", ...}

Parties connect to each other over TCP on 127.0.0.1 (each listens on a port the kernel chose and
reports it); a connecting peer first proves it knows the job's random token, so no other local
process can join. Then MPyC runs the protocol from `ledger.compute.mpc.protocols`. A party exits
at end of stdin (the coordinator went away), on "abort" during a computation, and after any
failure of a computation; it serves further jobs otherwise (a party pool).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hmac
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

_TOKEN_BYTES = 32


class _Channel:
    """JSON lines over raw descriptors (no buffering that could hide a message from select)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buffer = bytearray()
        self.closed = False

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view) :]

    def _pop(self) -> dict[str, Any] | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("message is not an object")
        return message

    def receive(self) -> dict[str, Any] | None:
        """Next message, blocking; None at end of input."""
        while True:
            message = self._pop()
            if message is not None:
                return message
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                self.closed = True
                return None
            self._buffer.extend(chunk)

    def poll(self) -> list[dict[str, Any] | None]:
        """Messages available now (after a readable event); None marks end of input."""
        chunk = os.read(self.read_fd, 65536)
        if not chunk:
            self.closed = True
            return [None]
        self._buffer.extend(chunk)
        out: list[dict[str, Any] | None] = []
        while (message := self._pop()) is not None:
            out.append(message)
        return out


def _error_payload(exc: BaseException) -> dict[str, Any]:
    """A structured error for the coordinator: our own errors keep their fields; any other
    exception only its class name (its message could quote a value)."""
    from ledger.compute.mpc.errors import (
        MpcColumnError,
        MpcDataError,
        MpcParameterError,
        MpcPartyError,
        MpcTimeoutError,
        MpcTooFewRowsError,
    )

    if isinstance(exc, MpcColumnError):
        return {"kind": "column", "column": exc.column, "rule": exc.rule}
    if isinstance(exc, MpcTooFewRowsError):
        return {"kind": "rows", "minimum": exc.minimum}
    if isinstance(exc, MpcDataError):
        return {"kind": "data", "field": exc.field, "rule": exc.rule}
    if isinstance(exc, MpcParameterError):
        return {"kind": "parameter", "field": exc.field, "rule": exc.rule}
    if isinstance(exc, MpcTimeoutError | TimeoutError):
        return {"kind": "timeout"}
    if isinstance(exc, MpcPartyError):
        return {"kind": "party", "reason": exc.reason}
    return {"kind": "internal", "type": type(exc).__name__}


class _Job:
    """One secure computation inside this party."""

    def __init__(self, data_dir: Path, channel: _Channel, message: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.channel = channel
        self.index = int(message["index"])
        self.parties = int(message["parties"])
        self.token = bytes.fromhex(message["token"])
        self.deadline = time.monotonic() + float(message["timeout"])
        self.task_json = message["task"]
        self.closing = False
        self.failure: asyncio.Future[None] | None = None

    def lost(self, peer: int | None) -> None:
        """A peer's connection closed before the shutdown: the computation cannot finish."""
        from ledger.compute.mpc.errors import MpcPartyError

        if not self.closing and self.failure is not None and not self.failure.done():
            subject = "a peer" if peer is None else f"party {peer}"
            self.failure.set_exception(
                MpcPartyError(self.index, f"lost the connection to {subject}")
            )


def _new_runtime(index: int, ports: list[int]) -> Any:
    """A fresh MPyC runtime for one job (MPyC keeps one runtime per module; set them all)."""
    import mpyc
    import mpyc.asyncoro
    import mpyc.mpctools
    import mpyc.random
    import mpyc.runtime
    import mpyc.secgroups
    import mpyc.seclists
    import mpyc.secpols
    import mpyc.sectypes
    import mpyc.statistics

    options = mpyc._get_arg_parser().parse_known_args(["--no-log"])[0]
    options.no_async = False
    options.no_prss = False
    options.threshold = (len(ports) - 1) // 2
    parties = [mpyc.runtime.Party(i, "127.0.0.1", port) for i, port in enumerate(ports)]
    runtime = mpyc.runtime.Runtime(index, parties, options)
    for module in (
        mpyc.sectypes,
        mpyc.asyncoro,
        mpyc.mpctools,
        mpyc.seclists,
        mpyc.secpols,
        mpyc.secgroups,
        mpyc.random,
        mpyc.statistics,
    ):
        module.runtime = runtime
    return runtime


def _exchanger(job: _Job, runtime: Any, peer: int | None) -> Any:
    from mpyc.asyncoro import MessageExchanger

    class _Exchanger(MessageExchanger):  # type: ignore[misc]
        def connection_lost(self, exc: Exception | None) -> None:
            if job.closing:
                super().connection_lost(None)
            else:
                job.lost(self.peer_pid)

    return _Exchanger(runtime, peer)


async def _recv_exact(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            break
        data.extend(chunk)
    return bytes(data)


async def _connect(job: _Job, runtime: Any, listener: socket.socket, ports: list[int]) -> None:
    """Authenticated TCP connections to every peer, handed to MPyC's message exchangers."""
    loop = asyncio.get_running_loop()
    me = job.index
    runtime.parties[me].protocol = loop.create_future()
    hello = job.token + me.to_bytes(2, "little")
    for peer in range(me + 1, job.parties):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.sock_connect(sock, ("127.0.0.1", ports[peer]))
        await loop.sock_sendall(sock, hello)
        await loop.create_connection(functools.partial(_exchanger, job, runtime, peer), sock=sock)
    pending = set(range(me))
    listener.setblocking(False)
    while pending:
        conn, _ = await loop.sock_accept(listener)
        conn.setblocking(False)
        try:
            data = await asyncio.wait_for(_recv_exact(loop, conn, len(hello)), 5.0)
        except TimeoutError:
            data = b""
        peer = int.from_bytes(data[_TOKEN_BYTES:], "little") if len(data) == len(hello) else -1
        if not hmac.compare_digest(data[:_TOKEN_BYTES], job.token) or peer not in pending:
            conn.close()  # not a peer of this job: ignore it and keep listening
            continue
        pending.discard(peer)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.connect_accepted_socket(lambda: _exchanger(job, runtime, None), sock=conn)
    await runtime.parties[me].protocol
    runtime.start_time = time.time()


async def _compute(job: _Job, listener: socket.socket, ports: list[int], rows: Any) -> Any:
    import numpy as np

    from ledger.compute.mpc.protocols import (
        BIT_LENGTH,
        FRACTIONAL_BITS,
        run_aggregate,
        run_logistic,
    )
    from ledger.compute.mpc.spec import AggregateTask, task_from_json

    runtime = _new_runtime(job.index, ports)
    await _connect(job, runtime, listener, ports)
    listener.close()
    secfxp = runtime.SecFxp(BIT_LENGTH, FRACTIONAL_BITS)

    async def vector_sum(vector: Any) -> Any:
        shares = runtime.input(secfxp.array(vector))
        total = shares[0]
        for share in shares[1:]:
            total = total + share
        return np.asarray(await runtime.output(total), dtype=np.float64)

    task = task_from_json(job.task_json)
    run = run_aggregate if isinstance(task, AggregateTask) else run_logistic
    result = await run(rows, task, vector_sum, parties=job.parties, party=job.index)  # type: ignore[arg-type]
    job.closing = True
    await runtime.shutdown()
    return result


def _run_job(data_dir: Path, channel: _Channel, message: dict[str, Any]) -> bool:
    """Serve one job; False when this process must exit (stdin closed, or the job failed)."""
    from ledger.compute.mpc.errors import MpcPartyError
    from ledger.compute.mpc.local import load_aggregate, load_logistic
    from ledger.compute.mpc.spec import AggregateTask, task_from_json

    job = _Job(data_dir, channel, message)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(job.parties)
        task = task_from_json(job.task_json)
        if isinstance(task, AggregateTask):
            rows: Any = load_aggregate(data_dir, task, job.index)
        else:
            rows = load_logistic(data_dir, task, job.index)
    except Exception as exc:
        listener.close()
        channel.send({"type": "error", "error": _error_payload(exc)})
        return True
    channel.send({"type": "ready", "port": listener.getsockname()[1]})
    reply = channel.receive()
    if reply is None:
        return False
    if reply.get("type") != "peers":
        listener.close()
        return True  # aborted before the computation: stay for the next job
    ports = [int(p) for p in reply["ports"]]
    began = time.monotonic()

    loop = asyncio.get_event_loop()
    job.failure = loop.create_future()

    def on_input() -> None:
        for incoming in channel.poll():
            if incoming is None or incoming.get("type") == "abort":
                assert job.failure is not None
                if not job.failure.done():
                    job.failure.set_exception(MpcPartyError(job.index, "aborted"))

    async def guarded() -> Any:
        assert job.failure is not None
        work = asyncio.ensure_future(_compute(job, listener, ports, rows))
        failure = job.failure
        remaining = max(job.deadline - time.monotonic(), 0.001)
        done, _ = await asyncio.wait(
            {work, failure}, timeout=remaining, return_when="FIRST_COMPLETED"
        )
        if work in done:
            return work.result()
        work.cancel()
        if failure in done:
            failure.result()  # raises the failure
        raise TimeoutError

    loop.add_reader(channel.read_fd, on_input)
    try:
        result = loop.run_until_complete(guarded())
    except BaseException as exc:
        if not channel.closed:
            channel.send({"type": "error", "error": _error_payload(exc)})
        return False  # a failed computation leaves sockets and MPyC state behind: exit
    finally:
        loop.remove_reader(channel.read_fd)
        listener.close()
    seconds = time.monotonic() - began
    channel.send({"type": "result", "result": result, "seconds": seconds})
    return not channel.closed


class _NoPandas:
    """Import hook refusing pandas: pyarrow imports it lazily (0.3 s, most of a cold party's
    start) when it converts values, and works without it; a party never needs pandas."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not loaded in MPC party processes", name=name)
        return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of a party process; returns the exit status."""
    parser = argparse.ArgumentParser(prog="ledger-mpc-party")
    parser.add_argument("--data", required=True, type=Path, help="this party's data directory")
    args = parser.parse_args(argv)
    # The protocol owns the original stdout; stray prints (MPyC's included) go to stderr.
    channel = _Channel(0, os.dup(1))
    os.dup2(2, 1)
    sys.argv = [sys.argv[0], "--no-log"]  # MPyC parses sys.argv when first imported
    sys.meta_path.insert(0, _NoPandas())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    import mpyc.runtime  # noqa: F401  (import before reporting ready: pools start warm)
    import numpy  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import ledger.compute.mpc.local  # noqa: F401
    import ledger.compute.mpc.protocols  # noqa: F401

    channel.send({"type": "hello", "pid": os.getpid()})
    while True:
        try:
            message = channel.receive()
        except ValueError:
            return 2
        if message is None:
            return 0
        if message.get("type") == "job":
            if not _run_job(args.data, channel, message):
                return 0 if channel.closed else 1


if __name__ == "__main__":
    # Every message was written unbuffered: skip the interpreter's slow teardown.
    os._exit(main())

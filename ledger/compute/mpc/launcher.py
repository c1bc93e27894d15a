"""The coordinator: starts one party process per owner, relays public messages, collects results.

The coordinator never opens a data directory: it passes each party the path of its own
``data/`` directory (bound read-only at ``/mpc/data`` inside a bubblewrap sandbox that shows that
directory and nothing else of the filesystem's data) and the task's public parameters. It sees
only the parties' ports, their opened results and structured errors.

Failure handling: one deadline covers start-up and computation. If any party exits, reports an
error or misses the deadline, every party of the job is killed (its whole process group; bwrap's
``--die-with-parent`` takes the sandboxed processes with it) before the error is raised, so a
failed job leaves no process behind and releases nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.compute.mpc.errors import (
    MpcColumnError,
    MpcDataError,
    MpcError,
    MpcIsolationError,
    MpcParameterError,
    MpcPartyError,
    MpcProtocolError,
    MpcTimeoutError,
    MpcTooFewRowsError,
)
from ledger.compute.mpc.isolation import bwrap_path, party_command, plain_env
from ledger.compute.mpc.spec import Task, task_to_json

__all__ = ["JobOutcome", "PartyPool", "run_job"]

_GRACE = 0.25  # seconds to gather the other parties' reports after a first failure


def _spawn(data_dir: Path, sandbox: bool) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        party_command(data_dir, sandbox=sandbox),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=None if sandbox else plain_env(),
        start_new_session=True,  # its own process group: killed as a whole
        close_fds=True,
    )


class _Party:
    """One running party process and its JSON-lines pipes."""

    def __init__(self, data_dir: Path, sandbox: bool, spawner: Executor | None = None) -> None:
        self.data_dir = data_dir
        self.sandbox = sandbox
        self.buffer = bytearray()
        self.eof = False
        if spawner is None:
            self.process = _spawn(data_dir, sandbox)
        else:
            self.process = spawner.submit(_spawn, data_dir, sandbox).result()
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin = self.process.stdin
        self.stdout_fd = self.process.stdout.fileno()
        os.set_blocking(self.stdout_fd, False)
        self.ready = False  # "hello" received: imports done

    @property
    def pid(self) -> int:
        """The process id of the party's outermost process (bwrap when sandboxed)."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process still runs and its output is open."""
        return not self.eof and self.process.poll() is None

    def send(self, message: dict[str, Any]) -> bool:
        """Send one message; False when the party's input is closed."""
        try:
            self.stdin.write((json.dumps(message, separators=(",", ":")) + "\n").encode())
            self.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def read(self) -> list[dict[str, Any] | None]:
        """Messages available now; None marks the end of the party's output."""
        try:
            chunk = os.read(self.stdout_fd, 65536)
        except BlockingIOError:
            return []
        if not chunk:
            self.eof = True
            return [None]
        self.buffer.extend(chunk)
        out: list[dict[str, Any] | None] = []
        while (end := self.buffer.find(b"\n")) >= 0:
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 1]
            try:
                message = json.loads(line)
            except ValueError:
                message = {"type": "garbage"}
            out.append(message if isinstance(message, dict) else {"type": "garbage"})
        return out

    def kill(self) -> None:
        """Kill the party's process group and reap it (bounded)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            self.process.kill()
        self._close_pipes()

    def hang_up(self) -> None:
        """Close the party's input: an idle party exits at the end of its input."""
        try:
            self.stdin.close()
        except OSError:
            pass

    def close(self, deadline: float) -> None:
        """Hang up, wait for the party to exit until `deadline`, then kill what is left."""
        self.hang_up()
        try:
            self.process.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def _close_pipes(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def exit_reason(self) -> str:
        """How the process ended, for an error message."""
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "closed its output"
        if code < 0:
            return f"was killed by signal {-code}"
        return f"exited with status {code}"


@dataclass(frozen=True)
class JobOutcome:
    """What the parties revealed (identical at every party) and where the time went."""

    result: dict[str, Any]
    start_seconds: float  # until every party had imported its libraries (0 when warm)
    load_seconds: float  # until every party had loaded its rows and was listening
    protocol_seconds: float  # slowest party's connection set-up plus protocol
    total_seconds: float


def _error_from(index: int, payload: Any, timeout: float) -> MpcError:
    """The typed error for a party's structured error report."""
    if not isinstance(payload, dict):
        return MpcProtocolError(index, "malformed error report")
    kind = payload.get("kind")
    if kind == "column":
        return MpcColumnError(index, str(payload.get("column")), str(payload.get("rule")))
    if kind == "rows":
        return MpcTooFewRowsError(index, int(payload.get("minimum", 0)))
    if kind == "data":
        return MpcDataError(index, str(payload.get("field")), str(payload.get("rule")))
    if kind == "parameter":
        return MpcParameterError(str(payload.get("field")), str(payload.get("rule")), None)
    if kind == "timeout":
        return MpcTimeoutError(timeout, "computing", index)
    if kind == "party":
        return MpcPartyError(index, str(payload.get("reason")))
    return MpcPartyError(index, f"internal error ({payload.get('type', 'unknown')})")


class _Exchange:
    """Waits for one message of an expected type from each of several parties."""

    def __init__(self, parties: Sequence[_Party], deadline: float, timeout: float) -> None:
        self.parties = parties
        self.deadline = deadline
        self.timeout = timeout

    def gather(self, expected: str, stage: str, *, stop_on_error: bool) -> _Gathered:
        """One message of type `expected` from each party, or errors, ends and silence."""
        gathered = _Gathered({}, [], [], set(range(len(self.parties))))
        grace_until: float | None = None
        with selectors.DefaultSelector() as selector:
            for index in gathered.waiting:
                selector.register(self.parties[index].stdout_fd, selectors.EVENT_READ, index)
            while gathered.waiting:
                now = time.monotonic()
                limit = self.deadline if grace_until is None else min(grace_until, self.deadline)
                if now >= limit:
                    break
                for key, _ in selector.select(timeout=limit - now):
                    index = key.data
                    messages = self.parties[index].read()
                    if not messages:
                        continue
                    message = messages[0]  # a party sends nothing else before it is answered
                    if message is None:
                        gathered.ended.append(index)
                    elif message.get("type") == expected:
                        gathered.replies[index] = message
                    elif message.get("type") == "error":
                        error = _error_from(index, message.get("error"), self.timeout)
                        gathered.errors.append((index, error))
                    else:
                        gathered.errors.append((index, MpcProtocolError(index, "bad message")))
                    gathered.waiting.discard(index)
                    selector.unregister(self.parties[index].stdout_fd)
                failed = gathered.errors or gathered.ended
                if failed and stop_on_error and grace_until is None:
                    grace_until = time.monotonic() + _GRACE
        if gathered.waiting and not (gathered.errors or gathered.ended):
            raise MpcTimeoutError(self.timeout, stage, min(gathered.waiting))
        return gathered


@dataclass
class _Gathered:
    replies: dict[int, dict[str, Any]]
    errors: list[tuple[int, MpcError]]
    ended: list[int]
    waiting: set[int]

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.ended or self.waiting)


def _blame(parties: Sequence[_Party], gathered: _Gathered, timeout: float, stage: str) -> MpcError:
    """The error to raise: a party that ended on its own is the cause, before its peers'
    reports of the lost connection; then the first error (lowest party); then silence."""
    if gathered.ended:
        index = min(gathered.ended)
        return MpcPartyError(index, f"the party process {parties[index].exit_reason()}")
    if gathered.errors:
        return sorted(gathered.errors, key=lambda e: e[0])[0][1]
    return MpcTimeoutError(timeout, stage, min(gathered.waiting) if gathered.waiting else None)


class PartyPool:
    """Party processes kept running between jobs, one per data directory.

    Starting Python with MPyC, NumPy and pyarrow costs most of a small job; a pool pays it once.
    Each process still sees only its own data directory. Jobs on one pool run one at a time (any
    thread may call). Processes that took part in a failed job are killed, never reused; a refusal
    before computing (missing column, too few rows) keeps them. Use as a context manager, or call
    `close`. Processes are started from one thread the pool owns: bubblewrap's
    ``--die-with-parent`` fires when the *thread* that started it ends, not only the process.
    """

    def __init__(self, *, sandbox: bool | None = None) -> None:
        """`sandbox`: True requires bubblewrap, False runs plain processes, None uses bubblewrap
        when it is installed."""
        if sandbox is None:
            sandbox = bwrap_path() is not None
        elif sandbox and bwrap_path() is None:
            raise MpcIsolationError("bubblewrap (bwrap) is not installed")
        self.sandbox = sandbox
        self._parties: dict[Path, _Party] = {}
        self._lock = threading.Lock()
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="mpc-party-spawner")
        self._finalizer = weakref.finalize(self, _kill_all, self._parties, self._spawner)

    def __enter__(self) -> PartyPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pids(self) -> dict[Path, int]:
        """Outermost process id of each running party, by data directory."""
        return {d: p.pid for d, p in self._parties.items() if p.alive()}

    def close(self) -> None:
        """Stop every party process."""
        with self._lock:
            parties = list(self._parties.values())
            self._parties.clear()
            for party in parties:
                party.hang_up()
            deadline = time.monotonic() + 2.0
            for party in parties:
                party.close(deadline)
            self._spawner.shutdown(wait=False)

    def _acquire(self, data_dirs: Sequence[Path], deadline: float, timeout: float) -> list[_Party]:
        parties: list[_Party] = []
        for data_dir in data_dirs:
            party = self._parties.get(data_dir)
            if party is None or not party.alive():
                if party is not None:
                    party.kill()
                party = _Party(data_dir, self.sandbox, self._spawner)
                self._parties[data_dir] = party
            parties.append(party)
        cold = [p for p in parties if not p.ready]
        if cold:
            hello = _Exchange(cold, deadline, timeout).gather(
                "hello", "starting the party processes", stop_on_error=True
            )
            if hello.failed:
                raise _blame(cold, hello, timeout, "starting the party processes")
            for party in cold:
                party.ready = True
        return parties

    def _discard(self, parties: Sequence[_Party]) -> None:
        for party in parties:
            party.kill()
            if self._parties.get(party.data_dir) is party:
                del self._parties[party.data_dir]

    def run(self, data_dirs: Sequence[Path], task: Task, *, timeout: float) -> JobOutcome:
        """Run `task` with one party per directory (in order: party i is ``data_dirs[i]``)."""
        with self._lock:
            began = time.monotonic()
            deadline = began + timeout
            parties: list[_Party] = []
            try:
                parties = self._acquire(data_dirs, deadline, timeout)
                started = time.monotonic()
                outcome = self._job(parties, task, deadline, timeout)
            except _Refused as refused:
                raise refused.error from None
            except BaseException:
                self._discard(parties or [p for d in data_dirs if (p := self._parties.get(d))])
                raise
            result, loaded, finished, protocol = outcome
            return JobOutcome(
                result=result,
                start_seconds=started - began,
                load_seconds=loaded - started,
                protocol_seconds=protocol,
                total_seconds=finished - began,
            )

    def _job(
        self, parties: list[_Party], task: Task, deadline: float, timeout: float
    ) -> tuple[dict[str, Any], float, float, float]:
        token = secrets.token_hex(32)
        exchange = _Exchange(parties, deadline, timeout)
        for index, party in enumerate(parties):
            party.send(
                {
                    "type": "job",
                    "index": index,
                    "parties": len(parties),
                    "token": token,
                    "timeout": max(deadline - time.monotonic(), 0.001),
                    "task": task_to_json(task),
                }
            )
        ready = exchange.gather("ready", "loading data", stop_on_error=False)
        if ready.failed:
            if ready.ended or ready.waiting:
                raise _blame(parties, ready, timeout, "loading data")
            # Refused before computing (missing column, too few rows...): processes stay clean.
            for index in ready.replies:
                parties[index].send({"type": "abort"})
            raise _Refused(_blame(parties, ready, timeout, "loading data"))
        loaded = time.monotonic()
        ports = [int(ready.replies[i]["port"]) for i in range(len(parties))]
        for party in parties:
            party.send({"type": "peers", "ports": ports})
        done = exchange.gather("result", "computing", stop_on_error=True)
        if done.failed:
            raise _blame(parties, done, timeout, "computing")
        finished = time.monotonic()
        revealed = [done.replies[i]["result"] for i in range(len(parties))]
        if any(r != revealed[0] for r in revealed[1:]):
            raise MpcProtocolError(None, "the parties revealed different results")
        protocol = max(float(done.replies[i].get("seconds", 0.0)) for i in range(len(parties)))
        return revealed[0], loaded, finished, protocol


class _Refused(Exception):
    """Internal: a party refused the job before computing; the processes are still clean."""

    def __init__(self, error: MpcError) -> None:
        self.error = error
        super().__init__(str(error))


def _kill_all(parties: dict[Path, _Party], spawner: Executor) -> None:
    for party in list(parties.values()):
        party.kill()
    parties.clear()
    spawner.shutdown(wait=False)


def run_job(
    data_dirs: Sequence[Path],
    task: Task,
    *,
    timeout: float,
    pool: PartyPool | None = None,
    sandbox: bool | None = None,
) -> JobOutcome:
    """Run `task` across the parties of `data_dirs` (in a fresh pool unless `pool` is given)."""
    own = pool is None
    active = PartyPool(sandbox=sandbox) if pool is None else pool
    try:
        return active.run(data_dirs, task, timeout=timeout)
    finally:
        if own:
            active.close()

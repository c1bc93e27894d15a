"""Several worker processes, each with its own executor key: the pipeline's Python work (ABI
encoding, signing, the database, the receipt) holds the GIL, so one process uses one core.

Each process opens its own context and pipeline signing with its key and takes the jobs whose
id falls in its share (``run_pending(share=(i, n))``). A key's nonces are never shared: one key
per process. A job keeps the executor that signed its receipt: the record and the batch anchor
come from that key (the pipeline leaves a job receipted by another key alone), so every key must
be an allowed executor of the datasets (``DataRegistry.setExecutor``) and, for refunds, hold the
vault's REFUNDER_ROLE. Exactly-once is the pipeline's own (outbox, leases, chain checks): a
process killed at any point is a worker killed at that point.

Restart with the same keys in the same order and every job returns to the process that holds
its share. A job receipted by a key that is no longer in the list waits (nothing is recorded
twice or by the wrong key) until a worker with that key runs again: a single worker process
takes every job and finishes its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from eth_typing import ChecksumAddress
from pydantic import SecretStr
from web3 import Web3

from ledger.errors import LedgerError
from ledger.jobs.errors import JobError
from ledger.jobs.pipeline import PipelineOptions
from ledger.settings import Settings

__all__ = ["WorkerPool", "WorkerPoolError"]

_KEY: Final = re.compile(r"0x[0-9a-fA-F]{64}")
_READY = "ready"
_RUN = "run"
_STOP = "stop"


class WorkerPoolError(JobError):
    """Raised when a worker process fails to start or dies; names its index, never a key."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"worker process {index}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.index, self.reason))


@dataclass(frozen=True, slots=True)
class _Spec:
    settings: Settings
    key: str
    index: int
    count: int
    options: PipelineOptions
    threads: int
    batch_size: int
    batch_wait: float
    with_weights: bool
    k: int


def _serve(spec: _Spec, conn: multiprocessing.connection.Connection) -> None:
    """A worker process: build the pipeline, say ready, then run passes on request."""
    from ledger.jobs.adapters import resolve_algorithm
    from ledger.jobs.service import open_context, open_pipeline

    try:
        settings = spec.settings.model_copy(update={"executor_key": SecretStr(spec.key)})
        context = open_context(settings)
        pipeline = open_pipeline(
            context,
            spec.options,
            batch_size=spec.batch_size,
            batch_wait=spec.batch_wait,
            with_weights=spec.with_weights,
            k=spec.k,
        )
    except Exception as exc:  # reported to the parent by type and message (no key in either)
        conn.send(("error", f"{type(exc).__name__}: {exc}"[:500]))
        return
    # The algorithm catalog imports the DP library (seconds): before the first job, not in it.
    with contextlib.suppress(LedgerError):
        resolve_algorithm("dp_mean")
    conn.send((_READY, pipeline.executor.address))
    try:
        while True:
            command, force = conn.recv()
            if command == _STOP:
                return
            started = time.process_time()
            try:
                steps = pipeline.run_pending(
                    force_anchor=bool(force),
                    threads=spec.threads,
                    share=(spec.index, spec.count),
                )
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"[:500]))
                continue
            conn.send(("steps", steps, len(pipeline.faults), time.process_time() - started))
    finally:
        context.close()


class WorkerPool:
    """``len(keys)`` worker processes, started (and ready) on construction.

    Args:
        settings: The service settings; each process replaces only the executor key.
        keys: One distinct executor key per process.
        options, batch_size, batch_wait, with_weights, k: as `open_pipeline`.
        threads: Jobs each process advances at once.

    Raises:
        WorkerPoolError: keys repeat, or a process could not build its pipeline.
    """

    def __init__(
        self,
        settings: Settings,
        keys: Sequence[str],
        options: PipelineOptions,
        *,
        threads: int = 1,
        batch_size: int = 100,
        batch_wait: float = 10.0,
        with_weights: bool = True,
        k: int = 10,
    ) -> None:
        if not keys:
            raise WorkerPoolError(0, "no executor key given")
        for index, key in enumerate(keys):
            if not _KEY.fullmatch(key):
                raise WorkerPoolError(index, "executor key must be 0x followed by 64 hex digits")
        if len({key.lower().removeprefix("0x") for key in keys}) != len(keys):
            raise WorkerPoolError(0, "executor keys must be distinct (nonces are per key)")
        # Spawned, not forked: the parent may hold threads, database and HTTP connections.
        mp = multiprocessing.get_context("spawn")
        self._conns: list[multiprocessing.connection.Connection] = []
        self._procs: list[Any] = []
        #: The executor address of each process.
        self.executors: list[ChecksumAddress] = []
        #: CPU seconds the processes spent in the last `run_pending` (all threads, summed).
        self.cpu_seconds = 0.0
        #: Faults the processes met so far (jobs left at their step for a retry).
        self.faults = 0
        try:
            for index, key in enumerate(keys):
                spec = _Spec(
                    settings,
                    key,
                    index,
                    len(keys),
                    options,
                    threads,
                    batch_size,
                    batch_wait,
                    with_weights,
                    k,
                )
                parent, child = mp.Pipe()
                proc = mp.Process(target=_serve, args=(spec, child), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            for index, conn in enumerate(self._conns):
                message = self._receive(index, conn)
                if message[0] != _READY:
                    raise WorkerPoolError(index, str(message[1]))
                self.executors.append(Web3.to_checksum_address(str(message[1])))
        except BaseException:
            self.close()
            raise

    def run_pending(self, *, force_anchor: bool = False) -> int:
        """One `JobPipeline.run_pending` in every process at once; returns steps taken.

        Raises:
            WorkerPoolError: a process failed (its error type and message) or died.
        """
        for conn in self._conns:
            conn.send((_RUN, force_anchor))
        total = 0
        cpu = 0.0
        faults = 0
        failures = []
        for index, conn in enumerate(self._conns):
            message = self._receive(index, conn)
            if message[0] == "steps":
                total += int(message[1])
                faults += int(message[2])
                cpu += float(message[3])
            else:
                failures.append(WorkerPoolError(index, str(message[1])))
        self.cpu_seconds, self.faults = cpu, faults
        if failures:
            raise failures[0]
        return total

    def close(self) -> None:
        """Stop the processes (each finishes its current pass first)."""
        for conn in self._conns:
            try:
                conn.send((_STOP, False))
            except OSError:
                pass
        for proc in self._procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _receive(index: int, conn: multiprocessing.connection.Connection) -> tuple[Any, ...]:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            raise WorkerPoolError(index, "the process died") from None
        return tuple(message)

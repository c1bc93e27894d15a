"""How a sandboxed run ended (`SandboxResult`) and the typed error of a failed one."""

from __future__ import annotations

import os
import resource
import signal
from dataclasses import dataclass, field
from pathlib import Path

from ledger.compute.sandbox.cgroups import CgroupStats
from ledger.compute.sandbox.errors import (
    SandboxCrashError,
    SandboxLimitError,
    SandboxTimeoutError,
)
from ledger.compute.sandbox.files import measure_dir
from ledger.compute.sandbox.limits import SandboxLimits

__all__ = ["Outcome", "SandboxResult"]


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed run ended and what it used. stdout/stderr are for the operator only."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    limit_hit: str | None
    wall_seconds: float
    cpu_seconds: float
    peak_memory_bytes: int | None
    peak_pids: int | None
    pids_refused: int
    cgroup: str
    output_bytes: int
    output_files: int
    limits: SandboxLimits
    stdout: bytes = field(repr=False, compare=False)
    stderr: bytes = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when the code exited 0 within every limit."""
        return self.exit_code == 0 and not self.timed_out and self.limit_hit is None

    def raise_for_failure(self) -> None:
        """Raise the typed error of a failed run; return when it succeeded.

        Raises SandboxTimeoutError, SandboxLimitError (cpu, memory, pids, output) or
        SandboxCrashError (non-zero exit, signal).
        """
        limits = self.limits
        if self.limit_hit == "output":
            raise SandboxLimitError(
                "output",
                limits.max_output_bytes,
                f"{self.output_bytes} bytes in {self.output_files} entries written; "
                f"at most {limits.max_output_files} entries",
            )
        if self.timed_out:
            if self.limit_hit == "pids":
                raise SandboxLimitError(
                    "pids", limits.max_pids, f"{self.pids_refused} forks refused, then timed out"
                )
            raise SandboxTimeoutError(self.wall_seconds, limits.wall_seconds)
        if self.limit_hit == "memory":
            raise SandboxLimitError("memory", limits.memory_bytes, "out of memory")
        if self.limit_hit == "cpu":
            raise SandboxLimitError("cpu", limits.cpu_seconds, "CPU seconds")
        if self.limit_hit == "pids" and self.exit_code != 0:
            raise SandboxLimitError("pids", limits.max_pids, f"{self.pids_refused} forks refused")
        if self.signal is not None:
            raise SandboxCrashError(
                f"killed by signal {signal.Signals(self.signal).name}", signal=self.signal
            )
        if self.exit_code != 0:
            raise SandboxCrashError(f"exit status {self.exit_code}", exit_code=self.exit_code)


@dataclass
class Outcome:
    """What supervising a run observed; `result` turns it into a `SandboxResult`."""

    status: int
    rusage: resource.struct_rusage
    wall: float
    timed_out: bool
    output_over: bool
    stdout: bytes
    stderr: bytes

    def result(
        self, limits: SandboxLimits, stats: CgroupStats | None, cgroup: str, out: Path
    ) -> SandboxResult:
        """Classify the run (exit, signal, which limit was hit) and measure its output."""
        size, count = measure_dir(out, limits.max_output_files)
        output_over = (
            self.output_over or size > limits.max_output_bytes or count > limits.max_output_files
        )
        exit_code: int | None = None
        sig: int | None = None
        if os.WIFSIGNALED(self.status):
            sig = os.WTERMSIG(self.status)
        elif os.WIFEXITED(self.status):
            exit_code = os.WEXITSTATUS(self.status)
            if exit_code > 128 and not self.timed_out:
                # bwrap reports a command killed by signal N as exit status 128 + N.
                sig, exit_code = exit_code - 128, None
        cpu = self.rusage.ru_utime + self.rusage.ru_stime
        if stats is not None and stats.cpu_seconds is not None:
            cpu = max(cpu, stats.cpu_seconds)  # the whole tree, not only what bwrap reaped
        limit_hit: str | None = None
        if output_over:
            limit_hit = "output"
        elif stats is not None and stats.oom_kills > 0:
            limit_hit = "memory"
        elif sig == signal.SIGXCPU or (
            sig == signal.SIGKILL and cpu >= limits.cpu_seconds and not self.timed_out
        ):
            limit_hit = "cpu"
        elif sig == signal.SIGXFSZ:
            limit_hit = "output"
        elif stats is not None and stats.pids_refused > 0:
            limit_hit = "pids"
        return SandboxResult(
            exit_code=None if self.timed_out else exit_code,
            signal=None if self.timed_out else sig,
            timed_out=self.timed_out,
            limit_hit=limit_hit,
            wall_seconds=self.wall,
            cpu_seconds=cpu,
            peak_memory_bytes=stats.peak_memory_bytes if stats else None,
            peak_pids=stats.peak_pids if stats else None,
            pids_refused=stats.pids_refused if stats else 0,
            cgroup=cgroup,
            output_bytes=size,
            output_files=count,
            limits=limits,
            stdout=self.stdout,
            stderr=self.stderr,
        )

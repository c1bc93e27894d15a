"""Resource limits of one sandboxed run (`SandboxLimits`) and how they become rlimits."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ledger.compute.sandbox.errors import SandboxConfigError

__all__ = ["SandboxLimits"]

MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one run; every field is a positive bound (validated on construction).

    - `cpu_seconds`: CPU time of each process (RLIMIT_CPU: SIGXCPU, then SIGKILL a second later).
    - `wall_seconds`: wall-clock timeout; the whole process tree is killed when it passes.
    - `memory_bytes`: memory of the whole tree (cgroup memory limit, swap included where the
      cgroup can say so).
    - `address_space_bytes`: RLIMIT_AS per process, the fallback when no cgroup can be made.
      numpy and pyarrow reserve address space generously, so keep it well above `memory_bytes`.
    - `max_pids`: processes and threads of the tree (cgroup pids.max; root ignores RLIMIT_NPROC).
    - `max_output_bytes` / `max_output_files`: the output directory's size and entry count,
      checked while the run goes and after it; a single file is bounded by RLIMIT_FSIZE.
    - `max_open_files`: RLIMIT_NOFILE.
    - `tmp_bytes`: size of the sandbox's private tmpfs /tmp.
    - `max_log_bytes`: how much of stdout and stderr is kept (the tail; never given to consumers).
    """

    cpu_seconds: int = 30
    wall_seconds: float = 60.0
    memory_bytes: int = 1 * GIB
    address_space_bytes: int = 8 * GIB
    max_pids: int = 64
    max_output_bytes: int = 16 * MIB
    max_output_files: int = 256
    max_open_files: int = 256
    tmp_bytes: int = 64 * MIB
    max_log_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SandboxConfigError(f"limits.{spec.name}", "a number", value)
            if not math.isfinite(value) or value <= 0:
                raise SandboxConfigError(f"limits.{spec.name}", "a finite number > 0", value)
            if spec.type in ("int", int) and not isinstance(value, int):
                raise SandboxConfigError(f"limits.{spec.name}", "an integer", value)
        if self.max_pids < 4:
            # bwrap's monitor, its pid 1 and the interpreter come first.
            raise SandboxConfigError("limits.max_pids", ">= 4", self.max_pids)
        if self.memory_bytes < 32 * MIB:
            raise SandboxConfigError("limits.memory_bytes", ">= 32 MiB", self.memory_bytes)
        if self.address_space_bytes < 64 * MIB:
            raise SandboxConfigError(
                "limits.address_space_bytes", ">= 64 MiB", self.address_space_bytes
            )
        if self.max_open_files < 16:
            raise SandboxConfigError("limits.max_open_files", ">= 16", self.max_open_files)

    @property
    def fsize_bytes(self) -> int:
        """RLIMIT_FSIZE: one byte over the output limit, so a capped file is seen as too big."""
        return self.max_output_bytes + 1

    def prlimit_args(self) -> list[str]:
        """The ``prlimit(1)`` options that put these limits on the sandbox's process tree."""
        return [
            f"--cpu={self.cpu_seconds}:{self.cpu_seconds + 1}",
            f"--as={self.address_space_bytes}",
            f"--fsize={self.fsize_bytes}",
            f"--nofile={self.max_open_files}",
            "--core=0",
        ]

"""The sandbox: run untrusted Python (custom algorithms) under bubblewrap, confined and bounded.

`SandboxRunner.run` builds the jail (namespaces, read-only binds, seccomp, rlimits, a cgroup, a
wall-clock timeout) and returns a `SandboxResult`; `ledger.compute.custom` runs a consumer's
module in it. Where bubblewrap or libseccomp is missing, `SandboxUnavailableError` refuses.
"""

from ledger.compute.sandbox.errors import (
    CustomCodeError,
    CustomCodeFormatError,
    CustomCodeHashError,
    CustomResultError,
    SandboxConfigError,
    SandboxCrashError,
    SandboxError,
    SandboxLimitError,
    SandboxRunError,
    SandboxTimeoutError,
    SandboxUnavailableError,
)
from ledger.compute.sandbox.files import measure_dir, read_output_file
from ledger.compute.sandbox.limits import SandboxLimits
from ledger.compute.sandbox.runner import (
    CODE_DIR,
    DATA_ROOT,
    OUTPUT_DIR,
    SandboxResult,
    SandboxRunner,
)

__all__ = [
    "CODE_DIR",
    "DATA_ROOT",
    "OUTPUT_DIR",
    "CustomCodeError",
    "CustomCodeFormatError",
    "CustomCodeHashError",
    "CustomResultError",
    "SandboxConfigError",
    "SandboxCrashError",
    "SandboxError",
    "SandboxLimitError",
    "SandboxLimits",
    "SandboxResult",
    "SandboxRunError",
    "SandboxRunner",
    "SandboxTimeoutError",
    "SandboxUnavailableError",
    "measure_dir",
    "read_output_file",
]

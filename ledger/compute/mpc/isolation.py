"""How a party process is started: bubblewrap around it, showing it one data directory.

A sandboxed party sees, read-only: ``/usr`` (and the ``/bin``, ``/lib*`` links into it), the
Python installation and virtual environment, this package's source, and its own data directory
at ``/mpc/data``; a private ``/tmp``, ``/proc`` and ``/dev``. It runs in new PID, IPC, UTS and
cgroup namespaces with no capabilities and an empty environment, and dies with its parent. The
network namespace is shared: the parties talk over TCP on 127.0.0.1. Nothing else of the host's
files (other vaults, keys, the database, the chain state) exists in its filesystem.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ledger.compute.mpc.errors import MpcIsolationError

__all__ = ["SANDBOX_DATA_DIR", "bwrap_path", "code_roots", "party_command", "plain_env"]

#: Where a sandboxed party sees its own data directory.
SANDBOX_DATA_DIR = "/mpc/data"
_BWRAP = "/usr/bin/bwrap"
# One BLAS/OpenMP thread per party: the parties already run side by side, and thread pools
# fighting over the same cores made a party's small matrix products up to 30x slower.
_THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def bwrap_path() -> str | None:
    """The bubblewrap executable, or None when it is not installed."""
    found = shutil.which("bwrap")
    if found:
        return found
    return _BWRAP if os.access(_BWRAP, os.X_OK) else None


def code_roots() -> list[Path]:
    """Directories a party needs to run Python and this package (read-only binds)."""
    import ledger

    roots = [Path(sys.base_prefix), Path(sys.prefix), Path(ledger.__file__).resolve().parent]
    out: list[Path] = []
    for root in sorted({r.resolve() for r in roots}, key=lambda p: len(p.parts)):
        if root == Path("/usr") or Path("/usr") in root.parents:
            continue  # bound with /usr
        if not any(parent in root.parents for parent in out):
            out.append(root)
    return out


def party_command(data_dir: Path, *, sandbox: bool) -> list[str]:
    """The command line of a party process for `data_dir` (bubblewrap around it if `sandbox`)."""
    import ledger

    python = [sys.executable, "-B", "-m", "ledger.compute.mpc.party"]
    if not sandbox:
        return [*python, "--data", str(data_dir)]
    bwrap = bwrap_path()
    if bwrap is None:
        raise MpcIsolationError("bubblewrap (bwrap) is not installed")
    resolved = data_dir.resolve()
    for root in code_roots():
        if root == resolved or root in resolved.parents or resolved in root.parents:
            # The code is bound whole: a data dir inside it would show its siblings too.
            raise MpcIsolationError(f"the data directory overlaps the code tree {root}")
    args = [bwrap, "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib32", "lib64", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    # The private /tmp first: binds made after it stay visible (a checkout under /tmp, say),
    # where a tmpfs mounted later would hide them.
    args += ["--tmpfs", "/tmp"]
    for root in code_roots():
        args += ["--ro-bind", str(root), str(root)]
    package_parent = str(Path(ledger.__file__).resolve().parent.parent)
    args += [
        "--ro-bind",
        str(data_dir),
        SANDBOX_DATA_DIR,
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "PYTHONPATH",
        package_parent,
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
        *[arg for name, value in _THREADS.items() for arg in ("--setenv", name, value)],
        "--chdir",
        "/tmp",
    ]
    return [*args, *python, "--data", SANDBOX_DATA_DIR]


def plain_env() -> dict[str, str]:
    """Environment of an unsandboxed party: nothing of the coordinator's (no keys, no settings)."""
    import ledger

    return {
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
        "PYTHONPATH": str(Path(ledger.__file__).resolve().parent.parent),
        "PYTHONDONTWRITEBYTECODE": "1",
        **_THREADS,
    }

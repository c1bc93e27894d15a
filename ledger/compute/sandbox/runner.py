"""Run a Python entry point under bubblewrap, confined and bounded.

The jail, per run:
- namespaces: new user (uid/gid 65534, no capabilities, no nested user namespaces), pid (a
  fresh /proc shows only the sandbox), net (no interfaces but a private loopback), ipc, uts,
  cgroup; a new session; it dies with its parent.
- files: read-only /usr (and the /bin, /lib* links), the Python installation prefix, the
  interpreter's site-packages at /opt/python-site, a minimal /etc (an unprivileged passwd and
  group entry, ld.so.cache; no shadow, no hosts, no host accounts); each input directory read-only
  at /data/<i>; the code directory read-only at /code; one writable output directory at /output;
  an empty size-limited tmpfs /tmp; a minimal /dev. Nothing else of the host (no /root, no /home,
  no repository, no vault root) exists inside.
- environment: only PATH, HOME, LANG and single-thread settings for BLAS/OpenMP; nothing of the
  parent's environment.
- seccomp: `ledger.compute.sandbox.seccomp` (built here, loaded by bwrap).
- limits (`SandboxLimits`): rlimits via prlimit(1) (CPU, address space, file size, open files,
  no core), a cgroup (pids.max and memory; v1 or v2) joined before bwrap starts, the output
  directory's size watched during the run and checked after it, and a wall-clock timeout that
  kills the whole tree (cgroup, then process group; bwrap's pid namespace dies with it).

stdout and stderr are captured (the last `max_log_bytes` of each) for the operator only: they may
hold data, so `SandboxResult` keeps them out of its repr and consumers never see them.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from ledger.compute.sandbox.cgroups import RunCgroups, create_cgroups
from ledger.compute.sandbox.errors import SandboxConfigError, SandboxUnavailableError
from ledger.compute.sandbox.files import checked_input_dir, checked_output_dir, measure_dir
from ledger.compute.sandbox.limits import SandboxLimits
from ledger.compute.sandbox.result import Outcome, SandboxResult
from ledger.compute.sandbox.seccomp import seccomp_fd

__all__ = [
    "CODE_DIR",
    "DATA_ROOT",
    "OUTPUT_DIR",
    "SandboxResult",
    "SandboxRunner",
]

DATA_ROOT = "/data"
CODE_DIR = "/code"
OUTPUT_DIR = "/output"
SITE_DIR = "/opt/python-site"
SANDBOX_UID = 65534
SANDBOX_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    # The pids limit counts threads: BLAS/OpenMP pools sized by the host's cores would hit it.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
INSTALL_HINT = "install it with `apt-get install bubblewrap util-linux` (or `make setup`)"
_POLL_SECONDS = 0.02
_OUTPUT_CHECK_SECONDS = 0.05
# The first process joins the run's cgroups, then becomes prlimit, which becomes bwrap.
_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
_BOOT = (
    "import runpy, site, sys\n"
    f"site.addsitedir({SITE_DIR!r})\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)
_PASSWD = b"nobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n"
_GROUP = b"nogroup:x:65534:\n"


class SandboxRunner:
    """Runs Python entry points in a bubblewrap jail; see the module docstring for the jail.

    `bwrap`, `prlimit` and `shell` are the tools used (found on PATH by default); `cgroup_parent`
    is where per-run cgroups are made (the current process's cgroups by default);
    `require_cgroup` refuses to run without one instead of falling back to rlimits.
    """

    def __init__(
        self,
        *,
        limits: SandboxLimits | None = None,
        bwrap: str | Path | None = None,
        prlimit: str | Path | None = None,
        shell: str | Path = "/bin/sh",
        cgroup_parent: Path | None = None,
        require_cgroup: bool = False,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self._bwrap = str(bwrap) if bwrap is not None else shutil.which("bwrap") or "bwrap"
        self._prlimit = str(prlimit) if prlimit is not None else shutil.which("prlimit") or ""
        self._shell = str(shell)
        self._cgroup_parent = cgroup_parent
        self._require_cgroup = require_cgroup
        self._checked = False

    # -- availability ---------------------------------------------------------------------

    def check_available(self) -> None:
        """Raise SandboxUnavailableError naming what is missing; cached once it passed."""
        if self._checked:
            return
        if not _is_executable(self._bwrap):
            raise SandboxUnavailableError(f"bubblewrap ({self._bwrap} not found)", INSTALL_HINT)
        if not _is_executable(self._prlimit):
            raise SandboxUnavailableError("prlimit (util-linux) not found", INSTALL_HINT)
        if not _is_executable(self._shell):
            raise SandboxUnavailableError(f"a POSIX shell ({self._shell})", INSTALL_HINT)
        fd = seccomp_fd()  # raises when libseccomp is missing
        os.close(fd)
        probe = subprocess.run(
            [
                self._bwrap,
                "--ro-bind",
                "/",
                "/",
                "--unshare-user",
                "--unshare-net",
                "--",
                "/bin/true",
            ],  # fmt: skip
            capture_output=True,
            env={"PATH": "/usr/bin:/bin"},
            timeout=10,
            check=False,
        )
        if probe.returncode != 0:
            raise SandboxUnavailableError(
                "user and network namespaces (bubblewrap could not create them: "
                f"{probe.stderr.decode(errors='replace').strip()[:200]})",
                "enable unprivileged user namespaces (sysctl user.max_user_namespaces) "
                "or run the service as root",
            )
        self._checked = True

    @cached_property
    def _python(self) -> tuple[str, Path, list[Path]]:
        """(interpreter, installation prefix, site-packages dirs) of this interpreter."""
        prefix = Path(sys.base_prefix).resolve()
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        interpreter = prefix / "bin" / f"python{version}"
        if not interpreter.exists():
            interpreter = Path(sys.executable).resolve()
        paths = sysconfig.get_paths()
        sites = [Path(paths[key]).resolve() for key in ("purelib", "platlib")]
        return str(interpreter), prefix, list(dict.fromkeys(s for s in sites if s.is_dir()))

    # -- running --------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        output_dir: Path,
        inputs: Sequence[Path] = (),
        code_dir: Path | None = None,
        limits: SandboxLimits | None = None,
    ) -> SandboxResult:
        """Run ``python <argv...>`` in the jail (argv[0] is a script path inside it, e.g. under
        /code) and return how it ended; failures are reported, not raised (see
        `SandboxResult.raise_for_failure`).

        `inputs` are bound read-only at /data/0, /data/1, ...; `code_dir` read-only at /code;
        `output_dir` (an existing empty directory) read-write at /output.
        Raises SandboxUnavailableError when the jail cannot be built, SandboxConfigError for
        bad mounts or arguments.
        """
        limits = limits or self.limits
        if not argv:
            raise SandboxConfigError("argv", "a non-empty list (the script to run first)", argv)
        self.check_available()
        out = checked_output_dir(output_dir)
        data = [checked_input_dir(p, out, i) for i, p in enumerate(inputs)]
        code = checked_input_dir(code_dir, out, -1) if code_dir is not None else None

        cgroups, cgroup_note = create_cgroups(
            limits.memory_bytes, limits.max_pids, self._cgroup_parent
        )
        if cgroups is None and self._require_cgroup:
            raise SandboxUnavailableError(
                f"a cgroup for the pids and memory limits ({cgroup_note})",
                "run the service as root on a host with cgroup v1 or v2 pids and memory "
                "controllers, or pass require_cgroup=False to fall back to rlimits",
            )
        fds: list[int] = []
        status_read = -1
        try:
            seccomp = seccomp_fd()
            fds.append(seccomp)
            passwd, group = _memfd(_PASSWD), _memfd(_GROUP)
            fds += [passwd, group]
            status_read, status_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            fds.append(status_write)
            bwrap = self._bwrap_argv(limits, data, code, out, seccomp, passwd, group)
            bwrap[1:1] = ["--json-status-fd", str(status_write)]
            join = [str(p) for p in cgroups.procs_files] if cgroups else []
            command = [
                self._shell, "-c", _JOIN, "sh", *join, "--",
                self._prlimit, *limits.prlimit_args(), "--", *bwrap,
                self._python[0], "-I", "-S", "-B", "-c", _BOOT, *argv,
            ]  # fmt: skip
            outcome = _supervise(command, fds, out, limits, cgroups)
            started = _jail_ran(status_read)
        finally:
            for fd in fds:
                os.close(fd)
            if status_read >= 0:
                os.close(status_read)
            stats = cgroups.stats() if cgroups else None
            if cgroups:
                cgroups.remove()
        if not started and not outcome.timed_out and not outcome.output_over:
            # bwrap reports the command's exit only when the jail was built and the command ran;
            # without it, what stderr holds is bwrap's own complaint (the code never ran).
            complaint = outcome.stderr.decode(errors="replace").strip().splitlines()
            raise SandboxUnavailableError(
                f"a working jail (bubblewrap failed: {complaint[-1][:200] if complaint else '?'})",
                "check the input and code directories and that bwrap works here",
            )
        cgroup = cgroups.version if cgroups else f"none ({cgroup_note}; rlimits only)"
        return outcome.result(limits, stats, cgroup, out)

    def _bwrap_argv(
        self,
        limits: SandboxLimits,
        data: list[Path],
        code: Path | None,
        out: Path,
        seccomp: int,
        passwd: int,
        group: int,
    ) -> list[str]:
        _, prefix, sites = self._python
        argv = [
            self._bwrap,
            "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--disable-userns",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--clearenv",
        ]  # fmt: skip
        for key, value in SANDBOX_ENV.items():
            argv += ["--setenv", key, value]
        argv += ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
            host = Path("/") / name
            if host.is_symlink():
                argv += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                argv += ["--ro-bind", str(host), str(host)]
        if not prefix.is_relative_to("/usr"):
            argv += ["--ro-bind", str(prefix), str(prefix)]
        for i, site in enumerate(sites):
            argv += ["--ro-bind", str(site), SITE_DIR if i == 0 else f"{SITE_DIR}-{i}"]
        argv += ["--dir", "/etc"]
        if Path("/etc/ld.so.cache").is_file():
            argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        argv += ["--ro-bind-data", str(passwd), "/etc/passwd"]
        argv += ["--ro-bind-data", str(group), "/etc/group"]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        argv += ["--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
        for i, path in enumerate(data):
            argv += ["--ro-bind", str(path), f"{DATA_ROOT}/{i}"]
        if code is not None:
            argv += ["--ro-bind", str(code), CODE_DIR]
        argv += ["--bind", str(out), OUTPUT_DIR]
        argv += ["--remount-ro", "/", "--chdir", "/tmp", "--seccomp", str(seccomp), "--"]
        return argv


# -- supervision ------------------------------------------------------------------------------


def _supervise(
    command: list[str],
    fds: list[int],
    out: Path,
    limits: SandboxLimits,
    cgroups: RunCgroups | None,
) -> Outcome:
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=fds,
        env={"PATH": "/usr/bin:/bin"},
        start_new_session=True,
        close_fds=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    stdout_tail, stderr_tail = bytearray(), bytearray()
    tails = {proc.stdout.fileno(): stdout_tail, proc.stderr.fileno(): stderr_tail}
    selector = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr):
        os.set_blocking(stream.fileno(), False)
        selector.register(stream.fileno(), selectors.EVENT_READ)
    deadline = start + limits.wall_seconds
    timed_out = output_over = False
    killed_at: float | None = None
    next_check = start + _OUTPUT_CHECK_SECONDS
    try:
        while selector.get_map():
            now = time.monotonic()
            if killed_at is None:
                if now >= deadline:
                    timed_out = True
                elif now >= next_check:
                    next_check = now + _OUTPUT_CHECK_SECONDS
                    size, count = measure_dir(out, limits.max_output_files)
                    output_over = size > limits.max_output_bytes or count > limits.max_output_files
                if timed_out or output_over:
                    _kill_tree(proc.pid, cgroups)
                    killed_at = now
            elif now - killed_at > 2.0:
                break  # every process is dead; a stray descriptor must not hang us
            for key, _ in selector.select(timeout=_POLL_SECONDS):
                fd = int(key.fd)
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(fd)
                    continue
                tail = tails[fd]
                tail += chunk
                if len(tail) > limits.max_log_bytes:
                    del tail[: len(tail) - limits.max_log_bytes]
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = status  # reaped here, with its resource usage
    finally:
        selector.close()
        if proc.returncode is None:
            _kill_tree(proc.pid, cgroups)
            with contextlib.suppress(ChildProcessError):
                os.wait4(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
        proc.stdout.close()
        proc.stderr.close()
    wall = time.monotonic() - start
    return Outcome(
        status, rusage, wall, timed_out, output_over, bytes(stdout_tail), bytes(stderr_tail)
    )


def _kill_tree(pid: int, cgroups: RunCgroups | None) -> None:
    if cgroups is not None:
        cgroups.kill(within=0.5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _jail_ran(status_fd: int) -> bool:
    """Whether bwrap's JSON status (``--json-status-fd``) reports the command's exit code."""
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(status_fd, 65536):
            chunks.append(chunk)
    for line in b"".join(chunks).splitlines():
        with contextlib.suppress(ValueError):
            if "exit-code" in json.loads(line):
                return True
    return False


def _is_executable(path: str) -> bool:
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def _memfd(content: bytes) -> int:
    fd = os.memfd_create("ledger-sandbox-file", os.MFD_CLOEXEC)
    os.write(fd, content)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd

"""Per-run cgroups: pids.max (the only fork-bomb stop for root) and a memory limit.

Both layouts are supported: cgroup v2 (one unified hierarchy with the pids and memory
controllers) and cgroup v1 (a hierarchy per controller, as on hosts that mount
/sys/fs/cgroup/{pids,memory}). A run's cgroups are made under the cgroups of the current process
(or under `parent` when given), joined by the sandbox's first process before it execs bubblewrap,
read for peak usage afterwards, emptied with SIGKILL and removed. When none can be made,
`create_cgroups` says why, and the runner records it in the result instead of hiding it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CgroupStats", "RunCgroups", "create_cgroups"]

_CONTROLLERS = ("pids", "memory")


@dataclass(frozen=True)
class CgroupStats:
    """What the run's cgroups saw (None where the kernel does not report it)."""

    peak_memory_bytes: int | None
    oom_kills: int
    peak_pids: int | None
    pids_refused: int
    cpu_seconds: float | None


@dataclass(frozen=True)
class _Mount:
    root: str
    mountpoint: Path
    fstype: str
    options: frozenset[str]


def _mounts(mountinfo: str) -> list[_Mount]:
    found = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        tail = right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        opts = frozenset(tail[2].split(",")) | frozenset(fields[5].split(","))
        found.append(_Mount(_unescape(fields[3]), Path(_unescape(fields[4])), tail[0], opts))
    return found


def _unescape(value: str) -> str:
    return value.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """Controller name ("" for the unified hierarchy) -> this process's cgroup path."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[1] == "":
            paths[""] = parts[2]
        for controller in parts[1].split(","):
            if controller:
                paths[controller] = parts[2]
    return paths


def _located(mount: _Mount, path: str) -> Path:
    relative = path
    if mount.root != "/" and (path == mount.root or path.startswith(mount.root + "/")):
        relative = path[len(mount.root) :]
    candidate = mount.mountpoint / relative.lstrip("/")
    return candidate if candidate.is_dir() else mount.mountpoint


class RunCgroups:
    """The cgroups of one run: join, limits, stats, kill and removal."""

    def __init__(self, version: str, dirs: dict[str, Path]) -> None:
        self.version = version
        self._dirs = dirs  # controller -> dir ("unified" for v2)

    @property
    def procs_files(self) -> list[Path]:
        """The cgroup.procs files the sandbox's first process writes its pid into."""
        return [d / "cgroup.procs" for d in dict.fromkeys(self._dirs.values())]

    def _file(self, controller: str, name: str) -> Path:
        return self._dirs.get(controller, self._dirs.get("unified", Path("/nonexistent"))) / name

    def _set_limits(self, memory_bytes: int, max_pids: int) -> None:
        _write(self._file("pids", "pids.max"), str(max_pids))
        if self.version == "v2":
            _write(self._file("memory", "memory.max"), str(memory_bytes))
            swap = self._file("memory", "memory.swap.max")
            if swap.exists():
                _write(swap, "0")
        else:
            _write(self._file("memory", "memory.limit_in_bytes"), str(memory_bytes))
            memsw = self._file("memory", "memory.memsw.limit_in_bytes")
            if memsw.exists():
                with contextlib.suppress(OSError):
                    _write(memsw, str(memory_bytes))

    def stats(self) -> CgroupStats:
        """Peak memory and pids, OOM kills and refused forks of the run."""
        if self.version == "v2":
            peak_memory = _read_int(self._file("memory", "memory.peak"))
            oom = _read_keyed(self._file("memory", "memory.events")).get("oom_kill", 0)
        else:
            peak_memory = _read_int(self._file("memory", "memory.max_usage_in_bytes"))
            oom = _read_keyed(self._file("memory", "memory.oom_control")).get("oom_kill", 0)
            if oom == 0:
                failed = _read_int(self._file("memory", "memory.failcnt")) or 0
                usage = peak_memory or 0
                limit = _read_int(self._file("memory", "memory.limit_in_bytes")) or 0
                # Kernels without an oom_kill counter: a failed charge at the limit means OOM.
                oom = 1 if failed and limit and usage >= limit else 0
        refused = _read_keyed(self._file("pids", "pids.events")).get("max", 0)
        cpu: float | None = None
        if self.version == "v2":
            usec = _read_keyed(self._file("unified", "cpu.stat")).get("usage_usec")
            cpu = usec / 1e6 if usec is not None else None
        elif "cpuacct" in self._dirs:
            nsec = _read_int(self._file("cpuacct", "cpuacct.usage"))
            cpu = nsec / 1e9 if nsec is not None else None
        peak_pids = _read_int(self._file("pids", "pids.peak"))
        return CgroupStats(peak_memory, oom, peak_pids, refused, cpu)

    def members(self) -> list[int]:
        """Pids still in the run's cgroups."""
        pids: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs.read_text().split())
        return sorted(pids)

    def kill(self, within: float = 2.0) -> bool:
        """SIGKILL every process of the run until the cgroups are empty; True when they are."""
        kill_file = self._dirs.get("unified", Path("/nonexistent")) / "cgroup.kill"
        if self.version == "v2" and kill_file.exists():
            with contextlib.suppress(OSError):
                _write(kill_file, "1")
        deadline = time.monotonic() + within
        while True:
            members = self.members()
            if not members:
                return True
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)  # exiting processes leave cgroup.procs within a few ms

    def remove(self) -> None:
        """Kill what is left and remove the cgroups (retried while the kernel still holds them)."""
        self.kill()
        for path in dict.fromkeys(self._dirs.values()):
            for _ in range(200):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        break
                    time.sleep(0.005)


def create_cgroups(
    memory_bytes: int, max_pids: int, parent: Path | None = None
) -> tuple[RunCgroups | None, str]:
    """Make the cgroups of one run with its limits: (cgroups, "v1"/"v2") or (None, why not)."""
    try:
        mounts = _mounts(Path("/proc/self/mountinfo").read_text())
        own = _own_paths(Path("/proc/self/cgroup").read_text())
    except OSError as exc:
        return None, f"cannot read /proc/self/mountinfo or /proc/self/cgroup ({exc.strerror})"
    name = f"ledger-sandbox-{secrets.token_hex(6)}"
    reasons: list[str] = []
    for attempt in (_try_v2, _try_v1):
        made, reason = attempt(mounts, own, name, parent)
        if made is not None:
            try:
                made._set_limits(memory_bytes, max_pids)
            except OSError as exc:
                made.remove()
                reasons.append(f"{made.version}: cannot set limits ({exc.strerror})")
                continue
            return made, made.version
        reasons.append(reason)
    return None, "; ".join(reasons)


def _try_v2(
    mounts: list[_Mount], own: dict[str, str], name: str, parent: Path | None
) -> tuple[RunCgroups | None, str]:
    unified = [m for m in mounts if m.fstype == "cgroup2"]
    if not unified:
        return None, "v2: no cgroup2 mount"
    base = parent or _located(unified[0], own.get("", "/"))
    try:
        available = set((base / "cgroup.controllers").read_text().split())
    except OSError as exc:
        return None, f"v2: cannot read {base}/cgroup.controllers ({exc.strerror})"
    if not set(_CONTROLLERS) <= available:
        return None, f"v2: pids and memory controllers not available in {base}"
    try:
        enabled = set((base / "cgroup.subtree_control").read_text().split())
        if not set(_CONTROLLERS) <= enabled:
            _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in _CONTROLLERS))
        path = base / name
        path.mkdir(mode=0o755)
    except OSError as exc:
        return None, f"v2: cannot create a cgroup under {base} ({exc.strerror})"
    return RunCgroups("v2", {"unified": path}), ""


def _try_v1(
    mounts: list[_Mount], own: dict[str, str], name: str, parent: Path | None
) -> tuple[RunCgroups | None, str]:
    dirs: dict[str, Path] = {}
    for controller in _CONTROLLERS:
        mount = next((m for m in mounts if m.fstype == "cgroup" and controller in m.options), None)
        if mount is None:
            _cleanup(dirs)
            return None, f"v1: no {controller} hierarchy mounted"
        base = (
            parent / controller if parent is not None else _located(mount, own.get(controller, "/"))
        )
        path = base / name
        try:
            path.mkdir(mode=0o755)
        except OSError as exc:
            _cleanup(dirs)
            return None, f"v1: cannot create a {controller} cgroup under {base} ({exc.strerror})"
        dirs[controller] = path
    # CPU accounting of the whole tree, when the hierarchy exists (optional).
    cpuacct = next((m for m in mounts if m.fstype == "cgroup" and "cpuacct" in m.options), None)
    if cpuacct is not None and parent is None:
        path = _located(cpuacct, own.get("cpuacct", "/")) / name
        with contextlib.suppress(OSError):
            path.mkdir(mode=0o755)
            dirs["cpuacct"] = path
    return RunCgroups("v1", dirs), ""


def _cleanup(dirs: dict[str, Path]) -> None:
    for path in dirs.values():
        with contextlib.suppress(OSError):
            path.rmdir()


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_keyed(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, number = line.partition(" ")
            if number.strip().isdigit():
                values[key] = int(number)
    return values

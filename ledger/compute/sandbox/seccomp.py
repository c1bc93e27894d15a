"""The sandbox's seccomp filter, built outside the jail with libseccomp (pyseccomp).

The filter allows by default and refuses, with an errno, what sandboxed analytics never need and
what an escape or a snoop would: other processes' memory (ptrace, process_vm_*), mounts and
namespaces, kernel keyrings, BPF, perf, modules and kexec, personality changes, new network
sockets (only AF_UNIX is allowed; the sandbox has no network namespace to reach anyway), terminal
injection (TIOCSTI) and setuid/setgid bits on files. Syscalls of other ABIs (i386, x32) hit
libseccomp's bad-architecture action and kill the process. `bwrap --seccomp FD` loads it.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from functools import lru_cache
from typing import Any

from ledger.compute.sandbox.errors import SandboxUnavailableError

__all__ = ["DENIED_SYSCALLS", "filter_bpf", "seccomp_fd"]

# Refused outright with EPERM.
DENIED_SYSCALLS: tuple[str, ...] = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "quotactl",
    "open_by_handle_at",
    "name_to_handle_at",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "vhangup",
    "lookup_dcookie",
    "fanotify_init",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "uselib",
    "nfsservctl",
)

# Namespace flags a clone() may not carry (x86_64: flags are the first argument).
_CLONE_NS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
_TIOCSTI = 0x5412


def _load() -> Any:
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:
        raise SandboxUnavailableError(
            "the seccomp library (pyseccomp over libseccomp2)",
            "install it with `apt-get install libseccomp2` and `make setup`",
        ) from exc
    return pyseccomp


@lru_cache(maxsize=1)
def filter_bpf() -> bytes:
    """The compiled BPF program of the filter (built once per process).

    Raises SandboxUnavailableError when libseccomp or pyseccomp cannot be loaded.
    """
    sc = _load()
    try:
        flt = sc.SyscallFilter(defaction=sc.ALLOW)
        eperm = sc.ERRNO(errno.EPERM)
        for name in DENIED_SYSCALLS:
            try:
                flt.add_rule(eperm, name)
            except (OSError, ValueError, RuntimeError):
                continue  # not a syscall on this architecture or libseccomp version
        flt.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
        flt.add_rule(sc.ERRNO(errno.EAFNOSUPPORT), "socketpair", sc.Arg(0, sc.NE, socket.AF_UNIX))
        flt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_NS, 0x10000000))
        for flag in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x20000000, 0x40000000):
            flt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc use clone.
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        # personality(): PER_LINUX only: no other execution domain, no ADDR_NO_RANDOMIZE,
        # READ_IMPLIES_EXEC... (libseccomp cannot also exempt the 0xffffffff query: refused too).
        flt.add_rule(eperm, "personality", sc.Arg(0, sc.NE, 0))
        flt.add_rule(eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
        for bit in (stat.S_ISUID, stat.S_ISGID):
            flt.add_rule(eperm, "chmod", sc.Arg(1, sc.MASKED_EQ, bit, bit))
            flt.add_rule(eperm, "fchmod", sc.Arg(1, sc.MASKED_EQ, bit, bit))
            flt.add_rule(eperm, "fchmodat", sc.Arg(2, sc.MASKED_EQ, bit, bit))
        read_fd, write_fd = os.pipe()
        try:
            with os.fdopen(write_fd, "wb") as sink:
                flt.export_bpf(sink)
            with os.fdopen(read_fd, "rb") as source:
                read_fd = -1
                return source.read()
        finally:
            if read_fd >= 0:
                os.close(read_fd)
    except SandboxUnavailableError:
        raise
    except Exception as exc:  # libseccomp reports failures as assorted OSErrors
        raise SandboxUnavailableError(
            f"a working libseccomp ({type(exc).__name__} while building the filter)",
            "install it with `apt-get install libseccomp2` and `make setup`",
        ) from exc


def seccomp_fd() -> int:
    """A fresh memfd holding the filter, positioned at 0, for ``bwrap --seccomp FD``.

    The caller passes it to the child and closes it afterwards.
    """
    program = filter_bpf()
    fd = os.memfd_create("ledger-sandbox-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd

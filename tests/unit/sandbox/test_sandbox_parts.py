"""Pieces of the sandbox that need no jail: cgroup discovery, the seccomp program, output files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger.compute.sandbox import SandboxConfigError, measure_dir, read_output_file
from ledger.compute.sandbox.cgroups import _located, _mounts, _own_paths
from ledger.compute.sandbox.seccomp import DENIED_SYSCALLS, filter_bpf, seccomp_fd

MOUNTINFO = """\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
38 30 0:34 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
39 30 0:35 /docker/abc /sys/fs/cgroup/cpu\\040acct rw - cgroup cgroup rw,cpu,cpuacct
40 25 0:40 / /proc rw - proc proc rw
"""
PROC_CGROUP = "9:pids:/\n4:memory:/api/x\n2:cpu,cpuacct:/docker/abc/job\n0::/\n"


def test_mountinfo_and_proc_cgroup_are_parsed() -> None:
    mounts = _mounts(MOUNTINFO)
    assert [(m.fstype, str(m.mountpoint)) for m in mounts] == [
        ("cgroup2", "/sys/fs/cgroup/unified"),
        ("cgroup", "/sys/fs/cgroup/memory"),
        ("cgroup", "/sys/fs/cgroup/pids"),
        ("cgroup", "/sys/fs/cgroup/cpu acct"),
    ]
    assert "cpuacct" in mounts[3].options and mounts[3].root == "/docker/abc"
    assert _own_paths(PROC_CGROUP) == {
        "pids": "/",
        "memory": "/api/x",
        "cpu": "/docker/abc/job",
        "cpuacct": "/docker/abc/job",
        "": "/",
    }


def test_cgroup_paths_are_located_under_the_mount_root(tmp_path: Path) -> None:
    from ledger.compute.sandbox.cgroups import _Mount

    (tmp_path / "job").mkdir()
    mount = _Mount("/docker/abc", tmp_path, "cgroup", frozenset({"cpuacct"}))
    assert _located(mount, "/docker/abc/job") == tmp_path / "job"
    assert _located(mount, "/docker/abc/gone") == tmp_path  # falls back to the mount itself


def test_seccomp_program_is_built_and_served_in_a_memfd() -> None:
    program = filter_bpf()
    assert len(program) % 8 == 0 and len(program) > 8 * len(DENIED_SYSCALLS)
    fd = seccomp_fd()
    try:
        assert os.read(fd, len(program) + 1) == program
    finally:
        os.close(fd)
    assert {"ptrace", "process_vm_readv", "mount", "unshare", "bpf", "keyctl"} <= set(
        DENIED_SYSCALLS
    )


def test_measure_dir_counts_without_following_symlinks(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 5)
    big = tmp_path.parent / f"{tmp_path.name}-big"
    big.write_bytes(b"z" * 100_000)
    (tmp_path / "link").symlink_to(big)
    size, count = measure_dir(tmp_path, 100)
    assert count == 4
    assert 15 < size < 15 + 4096 + 1000  # the directory entry and the link, not the big file
    assert measure_dir(tmp_path, 1)[1] >= 2  # stops soon after the bound


def test_read_output_file_refuses_links_fifos_and_oversize(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_bytes(b'{"a": 1}')
    assert read_output_file(tmp_path, "ok.json", 100) == b'{"a": 1}'
    assert read_output_file(tmp_path, "absent.json", 100) is None
    with pytest.raises(ValueError, match="at most 4 bytes"):
        read_output_file(tmp_path, "ok.json", 4)
    secret = tmp_path.parent / f"{tmp_path.name}-secret"
    secret.write_text("s3cret")
    (tmp_path / "link.json").symlink_to(secret)
    with pytest.raises(ValueError, match="not a symlink") as caught:
        read_output_file(tmp_path, "link.json", 100)
    assert "s3cret" not in str(caught.value)
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(ValueError, match="a regular file"):
        read_output_file(tmp_path, "fifo.json", 100)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(ValueError, match="a regular file"):
        read_output_file(tmp_path, "dir.json", 100)
    for name in ("", "../x", ".."):
        with pytest.raises(SandboxConfigError):
            read_output_file(tmp_path, name, 100)
    linked_dir = tmp_path.parent / f"{tmp_path.name}-linked"
    linked_dir.symlink_to(tmp_path)
    with pytest.raises(OSError):
        read_output_file(linked_dir, "ok.json", 100)  # the directory itself is not followed

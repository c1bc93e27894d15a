"""Attacks on the sandbox, run for real under bubblewrap: each is refused or contained, and the
host is unaffected (files outside untouched, secrets absent from every result and message)."""

from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import stat
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledger.compute.custom import code_hash, run_custom
from ledger.compute.sandbox import (
    CustomResultError,
    SandboxLimitError,
    SandboxLimits,
    SandboxRunner,
    SandboxTimeoutError,
)

MIB = 1 << 20
SMALL = SandboxLimits(
    cpu_seconds=5,
    wall_seconds=10.0,
    memory_bytes=256 * MIB,
    max_pids=16,
    max_output_bytes=1 * MIB,
    max_output_files=32,
    tmp_bytes=4 * MIB,
)
REPO = Path(__file__).resolve().parents[2]


class Vaults:
    """Two owners' vaults on the host: the input (owner A's data dir) and what must stay out."""

    def __init__(self, root: Path) -> None:
        self.root = root
        base = root / "vault"
        self.data = base / "0xAAAA" / "datasets" / "trial" / "v1" / "data"
        self.other = base / "0xBBBB"
        other_data = self.other / "datasets" / "trial" / "v1" / "data"
        for path in (self.data, other_data):
            path.mkdir(parents=True)
        table = pa.table({"age": [30, 40, 50, 60], "_row": [0, 1, 2, 3]})
        pq.write_table(table, self.data / "part-00000.parquet")
        self.secret = secrets.token_hex(16)
        (self.other / "key").write_text(self.secret)
        (self.other / "key").chmod(0o600)
        pq.write_table(pa.table({"name": [self.secret]}), other_data / "part-00000.parquet")
        (base / "0xAAAA" / "key").write_text(self.secret)
        self.host_secret = root / "host-secret.txt"
        self.host_secret.write_text(self.secret)
        self.canary = root / "canary"
        self.canary.mkdir()


@pytest.fixture
def vaults(tmp_path: Path) -> Vaults:
    return Vaults(tmp_path)


def attack(
    vaults: Vaults, body: str, params: dict[str, Any] | None = None, **limits: Any
) -> dict[str, Any]:
    """Run `body` (the inside of run(input_dirs, params)) as custom code and return its result."""
    code = "import ctypes, errno, json, os, socket, sys\n\ndef run(input_dirs, params):\n"
    code += "".join(f"    {line}\n" for line in body.strip().splitlines())
    data = code.encode()
    chosen = SandboxLimits(**{**SMALL.__dict__, **limits})
    run = run_custom(data, code_hash(data), [vaults.data], params or {}, chosen)
    assert vaults.secret not in json.dumps(run.result)
    assert not any(vaults.canary.iterdir()), "a file appeared outside the output dir"
    return run.result


TRY = """
def attempt(fn):
    try:
        value = fn()
        return {"ok": True, "value": str(value)[:200]}
    except OSError as exc:
        return {"ok": False, "errno": exc.errno}
"""


def with_try(body: str) -> str:
    return TRY + body


def test_tcp_to_host_listener_is_refused(vaults: Vaults) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    try:
        result = attack(
            vaults,
            with_try(
                "s = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))\n"
                "six = attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))\n"
                "return {'v4': s, 'v6': six}"
            ),
            {"port": port},
        )
        assert result["v4"] == {"ok": False, "errno": errno.EAFNOSUPPORT}
        assert result["v6"] == {"ok": False, "errno": errno.EAFNOSUPPORT}
        with pytest.raises(TimeoutError):
            listener.accept()  # the listener on the host saw no connection
    finally:
        listener.close()


def test_udp_dns_netlink_and_packet_sockets_are_refused(vaults: Vaults) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.3)
    port = receiver.getsockname()[1]
    try:
        result = attack(
            vaults,
            with_try(
                "udp = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))\n"
                "dns = attempt(lambda: socket.getaddrinfo('example.org', 53))\n"
                "nl = attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))\n"
                "pk = attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))\n"
                "ux = attempt(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))\n"
                "return {'udp': udp, 'dns': dns, 'netlink': nl, 'packet': pk, 'unix': ux}"
            ),
            {"port": port},
        )
        for family in ("udp", "netlink", "packet"):
            assert result[family] == {"ok": False, "errno": errno.EAFNOSUPPORT}, family
        assert result["dns"]["ok"] is False
        assert result["unix"]["ok"] is True  # local sockets stay usable (no one to reach)
        with pytest.raises(TimeoutError):
            receiver.recvfrom(64)
    finally:
        receiver.close()


def test_etc_shadow_and_host_accounts_are_not_there(vaults: Vaults) -> None:
    result = attack(
        vaults,
        with_try(
            "shadow = attempt(lambda: open('/etc/shadow').read())\n"
            "passwd = open('/etc/passwd').read()\n"
            "return {'shadow': shadow, 'passwd': passwd, 'etc': sorted(os.listdir('/etc'))}"
        ),
    )
    assert result["shadow"] == {"ok": False, "errno": errno.ENOENT}
    assert "root:" not in result["passwd"]
    assert set(result["etc"]) <= {"passwd", "group", "ld.so.cache"}


def test_other_owners_vault_and_own_vault_root_are_invisible(vaults: Vaults) -> None:
    other_key = str(vaults.other / "key")
    result = attack(
        vaults,
        with_try(
            "a = attempt(lambda: open(params['other_key']).read())\n"
            "b = attempt(lambda: open(input_dirs[0] + '/../../../../0xBBBB/key').read())\n"
            "c = attempt(lambda: open(input_dirs[0] + '/../../../../key').read())\n"
            "d = attempt(lambda: os.listdir(input_dirs[0] + '/..'))\n"
            "e = attempt(lambda: os.listdir(params['vault_root']))\n"
            "return {'a': a, 'b': b, 'c': c, 'd': d, 'e': e}"
        ),
        {"other_key": other_key, "vault_root": str(vaults.root / "vault")},
    )
    for name in ("a", "b", "c", "e"):
        assert result[name] == {"ok": False, "errno": errno.ENOENT}, name
    assert result["d"] == {"ok": True, "value": "['0']"}  # /data holds only the input


def test_root_home_and_repository_are_invisible(vaults: Vaults) -> None:
    assert any(name != ".pyenv" for name in os.listdir("/root"))
    result = attack(
        vaults,
        with_try(
            "root = attempt(lambda: sorted(os.listdir('/root')))\n"
            "repo = attempt(lambda: open(params['readme']).read())\n"
            "mod = attempt(lambda: open(params['module']).read())\n"
            "return {'root': root, 'repo': repo, 'module': mod, 'top': sorted(os.listdir('/'))}"
        ),
        {"readme": str(REPO / "README.md"), "module": str(REPO / "ledger" / "settings.py")},
    )
    assert result["root"]["value"] in ("[]", "['.pyenv']")  # at most the Python installation
    assert result["repo"] == {"ok": False, "errno": errno.ENOENT}
    assert result["module"] == {"ok": False, "errno": errno.ENOENT}
    allowed = {"bin", "code", "data", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt"}
    allowed |= {"output", "proc", "root", "sbin", "tmp", "usr"}
    assert set(result["top"]) <= allowed


def test_writes_outside_the_output_dir_and_to_the_input_fail(vaults: Vaults) -> None:
    before = sorted(p.name for p in vaults.data.iterdir())
    result = attack(
        vaults,
        with_try(
            "out = {}\n"
            "for path in [params['canary'] + '/x', input_dirs[0] + '/x', '/usr/x', '/etc/x',\n"
            "             '/code/x', '/x', '/opt/python-site/x', '/proc/x']:\n"
            "    out[path] = attempt(lambda: open(path, 'w').write('pwned'))\n"
            "out['unlink'] = attempt(lambda: os.unlink(input_dirs[0] + '/part-00000.parquet'))\n"
            "out['tmp'] = attempt(lambda: open('/tmp/fine', 'w').write('ok'))\n"
            "out['output'] = attempt(lambda: open('/output/fine', 'w').write('ok'))\n"
            "return out"
        ),
        {"canary": str(vaults.canary)},
    )
    for path, outcome in result.items():
        if path in ("tmp", "output"):
            assert outcome["ok"] is True, path
        else:
            assert outcome["ok"] is False, path
            assert outcome["errno"] in (errno.EROFS, errno.ENOENT, errno.EACCES), path
    assert sorted(p.name for p in vaults.data.iterdir()) == before


def _sandbox_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def test_fork_bomb_is_stopped_by_pids_limit_and_leaves_nothing(tmp_path: Path) -> None:
    code, out = tmp_path / "code", tmp_path / "out"
    code.mkdir()
    out.mkdir()
    (code / "bomb.py").write_text(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    marker = f"bomb-{uuid.uuid4().hex}"
    limits = SandboxLimits(**{**SMALL.__dict__, "wall_seconds": 2.0, "max_pids": 12})
    start = time.monotonic()
    result = SandboxRunner().run(["/code/bomb.py", marker], output_dir=out, code_dir=code,
                                 limits=limits)  # fmt: skip
    assert time.monotonic() - start < 6
    assert result.cgroup in ("v1", "v2")
    assert result.pids_refused > 0
    assert result.peak_pids is None or result.peak_pids <= 12
    with pytest.raises(SandboxLimitError) as caught:
        result.raise_for_failure()
    assert caught.value.kind == "pids"
    time.sleep(0.1)
    assert _sandbox_processes(marker) == []


def test_memory_bomb_is_stopped(vaults: Vaults) -> None:
    with pytest.raises(SandboxLimitError) as caught:
        attack(
            vaults,
            "hoard = []\nwhile True:\n    hoard.append(b'x' * (8 << 20))",
            memory_bytes=96 * MIB,
        )
    assert caught.value.kind == "memory"


def test_memory_bomb_without_cgroup_hits_the_address_space_rlimit(vaults: Vaults) -> None:
    limits = SandboxLimits(**{**SMALL.__dict__, "address_space_bytes": 256 * MIB})
    code = b"def run(input_dirs, params):\n    hoard = []\n    while True:\n"
    code += b"        hoard.append(b'x' * (8 << 20))\n"
    runner = SandboxRunner(cgroup_parent=vaults.root / "no-cgroups-here")
    with pytest.raises(SandboxLimitError) as caught:
        run_custom(code, code_hash(code), [vaults.data], {}, limits, runner=runner)
    assert caught.value.kind == "memory"


def test_endless_cpu_loop_hits_the_cpu_limit(vaults: Vaults) -> None:
    start = time.monotonic()
    with pytest.raises(SandboxLimitError) as caught:
        attack(vaults, "while True:\n    pass", cpu_seconds=1)
    assert caught.value.kind == "cpu"
    assert time.monotonic() - start < 5


def test_sleeping_forever_hits_the_wall_clock_timeout(vaults: Vaults) -> None:
    start = time.monotonic()
    with pytest.raises(SandboxTimeoutError) as caught:
        attack(vaults, "import time\nwhile True:\n    time.sleep(1)", wall_seconds=1.0)
    assert 1.0 <= caught.value.wall_seconds < 3.0
    assert time.monotonic() - start < 4


def test_huge_output_is_stopped(vaults: Vaults) -> None:
    with pytest.raises(SandboxLimitError) as big:
        attack(
            vaults,
            "with open('/output/big', 'wb') as f:\n"
            "    while True:\n"
            "        f.write(b'x' * (1 << 20))",
        )
    assert big.value.kind == "output"
    with pytest.raises(SandboxLimitError) as many:
        attack(
            vaults,
            "for i in range(10000):\n    open(f'/output/f{i}', 'w').close()\nreturn {}",
        )
    assert many.value.kind == "output"
    with pytest.raises(CustomResultError) as result_too_big:  # within the output limit, but
        attack(vaults, "return {'x': 'y' * (3 << 19)}", max_output_bytes=4 * MIB)  # > 1 MiB
    assert "at most" in str(result_too_big.value)


def test_parent_environment_is_not_visible(vaults: Vaults, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = secrets.token_hex(16)
    monkeypatch.setenv("LEDGER_TEST_SANDBOX_SECRET", secret)
    result = attack(
        vaults,
        with_try(
            "env = dict(os.environ)\n"
            "own = attempt(lambda: open('/proc/self/environ', 'rb').read().decode())\n"
            "init = attempt(lambda: open('/proc/1/environ', 'rb').read().decode())\n"
            "host = attempt(lambda: open(f\"/proc/{params['pid']}/environ\", 'rb').read())\n"
            "return {'env': env, 'own': own, 'init': init, 'host': host}"
        ),
        {"pid": os.getpid()},
    )
    assert secret not in json.dumps(result)
    assert set(result["env"]) <= {"PATH", "HOME", "LANG", "PWD", "OMP_NUM_THREADS",
                                  "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}  # fmt: skip


def test_host_processes_are_not_visible_in_proc(vaults: Vaults) -> None:
    result = attack(
        vaults,
        with_try(
            "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
            "host = attempt(lambda: open(f\"/proc/{params['pid']}/cmdline\").read())\n"
            "return {'pids': pids, 'host': host}"
        ),
        {"pid": os.getpid()},
    )
    assert max(result["pids"]) < 10 and len(result["pids"]) <= 4
    if os.getpid() not in result["pids"]:
        assert result["host"] == {"ok": False, "errno": errno.ENOENT}
    else:  # the same number inside is a sandbox process, never this test
        assert "pytest" not in result["host"].get("value", "")


def test_ptrace_and_process_vm_readv_are_refused(vaults: Vaults) -> None:
    result = attack(
        vaults,
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "out = {}\n"
        "for pid in (1, params['pid']):\n"
        "    rc = libc.ptrace(16, pid, None, None)\n"  # PTRACE_ATTACH
        "    out[f'ptrace{pid}'] = (rc, ctypes.get_errno())\n"
        "    buf = ctypes.create_string_buffer(16)\n"
        "    iov = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 16)\n"
        "    rc = libc.process_vm_readv(pid, iov, 1, iov, 1, 0)\n"
        "    out[f'vm{pid}'] = (rc, ctypes.get_errno())\n"
        "return out",
        {"pid": os.getpid()},
    )
    assert len(result) == 4
    for name, (rc, err) in result.items():
        assert rc == -1, name
        # Inside, pid 1 is bubblewrap's init (refused by seccomp); the host pid does not exist.
        assert err == errno.EPERM or (name.endswith(str(os.getpid())) and err == errno.ESRCH)


def test_symlink_in_input_pointing_at_a_host_file_leads_nowhere(vaults: Vaults) -> None:
    (vaults.data / "leak").symlink_to(vaults.host_secret)
    (vaults.data / "leak-relative").symlink_to(Path("../../../../0xBBBB/key"))
    result = attack(
        vaults,
        with_try(
            "a = attempt(lambda: open(input_dirs[0] + '/leak').read())\n"
            "b = attempt(lambda: open(input_dirs[0] + '/leak-relative').read())\n"
            "return {'a': a, 'b': b}"
        ),
    )
    assert result == {"a": {"ok": False, "errno": errno.ENOENT},
                      "b": {"ok": False, "errno": errno.ENOENT}}  # fmt: skip


@pytest.mark.parametrize(
    "make",
    [
        "os.symlink(params['target'], '/output/result.json')",
        "os.mkfifo('/output/result.json')",
        "os.link('/output/x', '/output/result.json') if open('/output/x', 'w') else None",
    ],
    ids=["symlink", "fifo", "hardlink-to-own-file"],
)
def test_result_json_replaced_by_a_link_or_fifo_is_refused(vaults: Vaults, make: str) -> None:
    body = f"{make}\nos._exit(0)"
    if "link(" in make and "symlink" not in make:
        # A hard link can only reach files inside /output: it reads as a regular (empty) file.
        with pytest.raises(CustomResultError) as caught:
            attack(vaults, body)
        assert "JSON" in str(caught.value)
        return
    start = time.monotonic()
    with pytest.raises(CustomResultError) as caught:
        attack(vaults, body, {"target": str(vaults.host_secret)})
    assert vaults.secret not in str(caught.value)
    assert "regular file" in str(caught.value)
    assert time.monotonic() - start < 5  # a FIFO must not block the host


def test_setuid_bits_unshare_mount_and_personality_are_refused(vaults: Vaults) -> None:
    result = attack(
        vaults,
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "open('/output/tool', 'w').close()\n"
        "out = {}\n"
        "try:\n"
        "    os.chmod('/output/tool', 0o4755)\n"
        "    out['chmod'] = 0\n"
        "except OSError as exc:\n"
        "    out['chmod'] = exc.errno\n"
        "for name, call in [('unshare_user', lambda: libc.unshare(0x10000000)),\n"
        "                   ('unshare_net', lambda: libc.unshare(0x40000000)),\n"
        "                   ('mount', lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)),\n"
        "                   ('personality', lambda: libc.personality(0x0040000)),\n"
        "                   ('setuid', lambda: libc.setuid(0))]:\n"
        "    rc = call()\n"
        "    out[name] = (rc, ctypes.get_errno())\n"
        "return out",
    )
    assert result["chmod"] == errno.EPERM
    for name in ("unshare_user", "unshare_net", "mount", "personality", "setuid"):
        rc, err = result[name]
        assert rc == -1 and err in (errno.EPERM, errno.EINVAL), name


def test_output_files_never_keep_setuid_bits_on_the_host(tmp_path: Path) -> None:
    code, out = tmp_path / "code", tmp_path / "out"
    code.mkdir()
    out.mkdir()
    (code / "s.py").write_text(
        "import os\nopen('/output/t', 'w').close()\n"
        "for mode in (0o4755, 0o2755):\n"
        "    try:\n        os.chmod('/output/t', mode)\n    except OSError:\n        pass\n"
    )
    result = SandboxRunner().run(["/code/s.py"], output_dir=out, code_dir=code, limits=SMALL)
    assert result.ok
    mode = (out / "t").stat().st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID)


def test_timeout_without_a_cgroup_still_kills_the_whole_tree(tmp_path: Path) -> None:
    code, out = tmp_path / "code", tmp_path / "out"
    code.mkdir()
    out.mkdir()
    (code / "linger.py").write_text(
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid() if hasattr(os, 'setsid') else None\n"
        "        break\n"
        "while True:\n    time.sleep(0.2)\n"
    )
    marker = f"linger-{uuid.uuid4().hex}"
    limits = SandboxLimits(**{**SMALL.__dict__, "wall_seconds": 1.0})
    runner = SandboxRunner(cgroup_parent=tmp_path / "no-cgroup-hierarchy")
    start = time.monotonic()
    result = runner.run(["/code/linger.py", marker], output_dir=out, code_dir=code, limits=limits)
    assert time.monotonic() - start < 4
    assert result.timed_out and result.cgroup.startswith("none (")
    with pytest.raises(SandboxTimeoutError):
        result.raise_for_failure()
    time.sleep(0.1)
    assert _sandbox_processes(marker) == []

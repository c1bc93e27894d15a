"""No party process ever holds another party's rows: each sandboxed party's filesystem holds its
own data directory (read-only, at /mpc/data) and the code, nothing else of the host's data.

Each check is first run against unsandboxed parties, where it must see the other parties' data:
so the checks can fail, and pass only because of the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ledger.compute.mpc import PartyPool, secure_sum
from ledger.compute.mpc.isolation import SANDBOX_DATA_DIR, code_roots, party_command
from tests.unit.mpc.vaults import hospital_dirs


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return hospital_dirs(tmp_path_factory.mktemp("vaults"))


def _python_of(outer: int) -> psutil.Process:
    """The party's Python process (inside bwrap's process tree, or the process itself)."""
    for process in [psutil.Process(outer), *psutil.Process(outer).children(recursive=True)]:
        command = process.cmdline()
        if "ledger.compute.mpc.party" in command and "bwrap" not in command[0]:
            return process
    raise AssertionError("no party process found")


def _view(pid: int, path: Path) -> Path:
    """`path` as the process `pid` sees it (its mount namespace, through /proc)."""
    return Path(f"/proc/{pid}/root") / path.relative_to("/")


@pytest.fixture(params=[False, True], ids=["plain", "bwrap"])
def pool(request: pytest.FixtureRequest, hospitals: list[Path]) -> Iterator[PartyPool]:
    with PartyPool(sandbox=request.param) as parties:
        secure_sum(hospitals, "mean_radius", timeout=60, pool=parties)
        yield parties


def test_a_party_sees_no_other_party_data(pool: PartyPool, hospitals: list[Path]) -> None:
    pids = pool.pids()
    assert sorted(pids) == sorted(hospitals)
    for index, data_dir in enumerate(hospitals):
        party = _python_of(pids[data_dir]).pid
        others = [d for d in hospitals if d != data_dir]
        visible = [other for other in others if _view(party, other).exists()]
        common_root = data_dir.parent.parent
        if not pool.sandbox:
            # The control: without the sandbox everything is there to be read.
            assert visible == others and _view(party, common_root).exists()
            continue
        assert visible == [], f"party {index} sees another party's data"
        assert not _view(party, common_root).exists()
        assert not _view(party, data_dir).exists()  # not even its own host path
        own = _view(party, Path(SANDBOX_DATA_DIR))
        assert sorted(os.listdir(own)) == sorted(os.listdir(data_dir))
        # The private /tmp holds nothing but the way to the code when the checkout is under /tmp.
        code_under_tmp = {
            root.relative_to("/tmp").parts[0]
            for root in code_roots()
            if Path("/tmp") in root.parents
        }
        assert set(os.listdir(_view(party, Path("/tmp")))) == code_under_tmp
        mounts = Path(f"/proc/{party}/mountinfo").read_text().splitlines()
        data_mounts = [m for m in mounts if f" {SANDBOX_DATA_DIR} " in m]
        assert len(data_mounts) == 1 and " ro" in data_mounts[0]
        environment = psutil.Process(party).environ()
        assert not any(k.startswith("LEDGER_") for k in environment)


PROBE = """
import os, sys
results = []
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
        results.append("read")
    except OSError:
        results.append("refused")
print(" ".join(results))
"""


@pytest.mark.parametrize("sandbox", [False, True], ids=["plain", "bwrap"])
def test_code_in_the_party_sandbox_cannot_open_other_parties_files(
    hospitals: list[Path], sandbox: bool
) -> None:
    own, *others = hospitals
    command = party_command(own, sandbox=sandbox)
    python = command.index(sys.executable)
    files = [next(d.glob("*.parquet")) for d in others]
    own_file = (
        f"{SANDBOX_DATA_DIR}/part-00000.parquet" if sandbox else str(own / "part-00000.parquet")
    )
    probe = [*command[:python], sys.executable, "-c", PROBE, own_file, *map(str, files)]
    output = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=True)
    if sandbox:
        assert output.stdout.split() == ["read", "refused", "refused"]
    else:
        assert output.stdout.split() == ["read", "read", "read"]
    write = [*command[:python], sys.executable, "-c", f"open('{own_file}', 'ab')"]
    assert (subprocess.run(write, capture_output=True, timeout=30).returncode != 0) is sandbox

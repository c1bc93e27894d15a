"""Failures of real party processes: a party killed mid-run, a timeout, the coordinator killed,
refusals (missing column, too few rows) and a stray connection: typed errors in bounded time,
nothing released, no process left behind."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from ledger.compute.mpc import (
    MpcColumnError,
    MpcPartyError,
    MpcTimeoutError,
    MpcTooFewRowsError,
    PartyPool,
    secure_logistic_regression,
    secure_sum,
)
from ledger.compute.mpc.launcher import _Exchange, _Party
from ledger.compute.mpc.spec import AggregateTask, task_to_json
from ledger.samples import hospital_split
from tests.unit.mpc.vaults import IDENTIFIERS, hospital_dirs, pooled, write_data_dir

FEATURES = [c for c in pooled().columns if c not in ("diagnosis", "_row", "_contributor")]


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return hospital_dirs(tmp_path_factory.mktemp("vaults"))


def _alive(pids: set[int]) -> set[int]:
    """Those of `pids` that still run (zombies awaiting their reaper do not)."""
    out = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.add(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _settle(pids: set[int], seconds: float = 3.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _alive(pids)


def _party_processes(root: int) -> list[psutil.Process]:
    """The party Python processes below `root` (not their bwrap wrappers)."""
    out = []
    for process in psutil.Process(root).children(recursive=True):
        try:
            command = process.cmdline()
        except psutil.NoSuchProcess:
            continue
        if "ledger.compute.mpc.party" in command and "bwrap" not in command[0]:
            out.append(process)
    return out


def _parties_running(root: int, count: int, timeout: float = 30.0) -> list[psutil.Process]:
    """The `count` party Python processes below `root`, once all of them have peers connected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parties = _party_processes(root)
        connected = []
        for party in parties:
            try:
                if any(c.status == "ESTABLISHED" for c in party.net_connections()):
                    connected.append(party)
            except psutil.NoSuchProcess:
                pass
        if len(parties) == count and len(connected) == count:
            return parties
        time.sleep(0.05)
    raise AssertionError("the parties did not start computing")


def _long_logistic(hospitals: list[Path], timeout: float, pool: PartyPool | None = None) -> None:
    # tol=0 never converges: the parties iterate until killed or out of time.
    secure_logistic_regression(
        hospitals,
        FEATURES,
        "diagnosis",
        positive_label="malignant",
        l2=1.0,
        max_iter=1_000_000,
        tol=0.0,
        timeout=timeout,
        pool=pool,
    )


def test_killing_a_party_mid_run_fails_fast_and_stops_every_party(hospitals: list[Path]) -> None:
    me = os.getpid()
    # Children of this process from earlier tests (a module's anvil, say) are not this job's.
    before = {p.pid for p in psutil.Process(me).children(recursive=True)}
    victims: dict[str, object] = {}
    pool = PartyPool(sandbox=True)

    def kill_party_one() -> None:
        _parties_running(me, 3)
        victims["all"] = {p.pid for p in psutil.Process(me).children(recursive=True)} - before
        time.sleep(0.3)
        [target] = _party_processes(pool.pids()[hospitals[1]])
        victims["killed"] = target.pid
        target.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_party_one)
    killer.start()
    began = time.monotonic()
    try:
        with pytest.raises(MpcPartyError) as caught:
            _long_logistic(hospitals, timeout=60, pool=pool)
        elapsed = time.monotonic() - began
    finally:
        killer.join()
        pool.close()
    assert not isinstance(caught.value, MpcTimeoutError)
    assert caught.value.party == 1
    assert "no result was released" in str(caught.value)
    assert elapsed < 20
    everything = victims["all"]
    assert isinstance(everything, set) and len(everything) >= 3
    assert victims["killed"] in everything
    assert pool.pids() == {}  # the failed job's parties were dropped, not kept for reuse
    assert _settle(everything) == set()


def test_a_timeout_stops_every_party_in_bounded_time(hospitals: list[Path]) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    seen: set[int] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.1):
            seen.update(p.pid for p in psutil.Process().children(recursive=True))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    began = time.monotonic()
    with pytest.raises(MpcTimeoutError) as caught:
        _long_logistic(hospitals, timeout=3.0)
    elapsed = time.monotonic() - began
    stop.set()
    assert caught.value.timeout == 3.0 and caught.value.stage == "computing"
    assert 3.0 <= elapsed < 8.0
    watcher.join()
    assert len(seen - before) >= 3
    assert _settle(seen - before) == set()


COORDINATOR = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ledger.compute.mpc import secure_logistic_regression
    dirs = [Path(p) for p in sys.argv[1:4]]
    features = sys.argv[4].split(",")
    secure_logistic_regression(dirs, features, "diagnosis", positive_label="malignant",
                               l2=1.0, max_iter=1_000_000, tol=0.0, timeout=120)
    """
)


def test_parties_die_with_a_killed_coordinator(hospitals: list[Path]) -> None:
    coordinator = subprocess.Popen(
        [sys.executable, "-c", COORDINATOR, *map(str, hospitals), ",".join(FEATURES)],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        _parties_running(coordinator.pid, 3)
        below = {p.pid for p in psutil.Process(coordinator.pid).children(recursive=True)}
        assert len(below) >= 3
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(timeout=10)
        assert _settle(below, 5.0) == set()
    finally:
        if coordinator.poll() is None:
            coordinator.kill()


def test_a_missing_column_names_the_party_and_keeps_the_pool(
    tmp_path: Path, hospitals: list[Path]
) -> None:
    frames = [f.drop(columns=list(IDENTIFIERS)) for f in hospital_split("breast_cancer")]
    frames[2] = frames[2].drop(columns=["mean_area"])
    dirs = [write_data_dir(tmp_path / f"h{i}", f) for i, f in enumerate(frames)]
    with PartyPool(sandbox=True) as pool:
        secure_sum(dirs, "mean_radius", timeout=60, pool=pool)
        pids = pool.pids()
        with pytest.raises(MpcColumnError) as caught:
            secure_sum(dirs, "mean_area", timeout=60, pool=pool)
        assert (caught.value.party, caught.value.column) == (2, "mean_area")
        with pytest.raises(MpcColumnError) as caught:
            secure_sum(dirs, "mean_radius", filters=[("ward", "==", "x")], timeout=60, pool=pool)
        assert (caught.value.party, caught.value.column) == (0, "ward")
        # A refusal before computing leaves the parties clean and running.
        assert pool.pids() == pids
        again = secure_sum(dirs, "mean_radius", timeout=60, pool=pool)
        assert again.n == 569 and pool.pids() == pids


def test_too_few_rows_at_one_party_refuses(hospitals: list[Path]) -> None:
    # The split holds 190, 190 and 189 rows: only the third party is short of 190.
    with pytest.raises(MpcTooFewRowsError) as caught:
        secure_sum(hospitals, "mean_radius", timeout=60, min_rows=190)
    assert (caught.value.party, caught.value.minimum) == (2, 190)
    assert "189" not in str(caught.value)
    with pytest.raises(MpcTooFewRowsError) as caught:
        secure_sum(
            hospitals, "mean_radius", filters=[("mean_radius", ">", 100.0)], timeout=60, min_rows=1
        )
    assert caught.value.party == 0


def test_a_stray_connection_without_the_job_token_is_turned_away(hospitals: list[Path]) -> None:
    parties = [_Party(d, True) for d in hospitals]
    try:
        exchange = _Exchange(parties, time.monotonic() + 60, 60.0)
        assert not exchange.gather("hello", "starting", stop_on_error=True).failed
        token = secrets.token_hex(32)
        for index, party in enumerate(parties):
            party.send(
                {
                    "type": "job",
                    "index": index,
                    "parties": 3,
                    "token": token,
                    "timeout": 60,
                    "task": task_to_json(AggregateTask("sum", "mean_radius")),
                }
            )
        ready = exchange.gather("ready", "loading", stop_on_error=False)
        ports = [ready.replies[i]["port"] for i in range(3)]
        # Before the real peers connect, a stranger claims to be party 0 at party 2.
        stranger = socket.create_connection(("127.0.0.1", ports[2]), timeout=10)
        stranger.sendall(secrets.token_bytes(32) + (0).to_bytes(2, "little"))
        for party in parties:
            party.send({"type": "peers", "ports": ports})
        done = exchange.gather("result", "computing", stop_on_error=True)
        assert not done.failed
        values = {done.replies[i]["result"]["value"] for i in range(3)}
        assert len(values) == 1
        assert values.pop() == pytest.approx(pooled()["mean_radius"].sum(), abs=1e-9)
        assert stranger.recv(1) == b""  # the party closed the stranger's connection
        stranger.close()
    finally:
        for party in parties:
            party.kill()

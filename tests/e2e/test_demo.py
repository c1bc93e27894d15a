"""``ledger demo`` as a user runs it: a real process (``python -m ledger.demo``, the command that
``install`` adds) on its own anvil and data dir. The JSON summary must tell a consistent story
(three datasets, three recorded and verified jobs, a regression equal to scikit-learn's on the
pooled rows, a published epoch, a paid claim, balances that add up), nothing may be left running,
the user's own data dir is never touched, and no key ever reaches the output."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ledger.demo.accounts import derive_many
from ledger.demo.errors import DemoError
from ledger.demo.story import run_demo as play
from ledger.demo.summary import StepReport, eth
from ledger.samples import hospital_split
from tests.e2e.cli import free_port

ROOT = Path(__file__).resolve().parents[2]
HASH = re.compile(r"0x[0-9a-f]{64}")
FEATURES = ["mean_radius", "mean_texture", "mean_smoothness"]


def run_demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.demo", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture()
def user_env(tmp_path: Path) -> dict[str, str]:
    """A user's environment: their own (fresh) data dir and anvil port, which the demo must
    leave alone."""
    variables = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    variables["LEDGER_DATA_DIR"] = str(tmp_path / "user-data")
    variables["LEDGER_ANVIL_PORT"] = str(free_port())
    return variables


def leftovers(marker: str, port: int) -> list[str]:
    """Command lines of live processes that name `marker` (the demo's data dir) or run an anvil
    on `port`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        text = " ".join(a.decode(errors="replace") for a in args if a)
        if state == "Z" or not text:
            continue
        if marker in text or ("anvil" in text and f"--port {port}" in text):
            found.append(text)
    return found


def dev_keys() -> list[str]:
    """Every key the demo derives (none may be printed)."""
    return [a.key[2:] for a in derive_many("http://127.0.0.1:1", [*range(5), *range(10, 22)])]


def test_demo_json_tells_a_consistent_story(user_env: dict[str, str], tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    port = free_port()
    proc = run_demo(user_env, "--json", "--data-dir", str(data_dir), "--port", str(port))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary: dict[str, Any] = json.loads(proc.stdout)

    assert summary["format"] == "ledger.demo/1" and summary["ok"] is True
    assert all(summary["checks"].values()) and len(summary["checks"]) >= 10
    assert summary["chain_id"] == 31337 and summary["kept"] is True

    # Three hospitals, three datasets registered with the vault's commitments.
    datasets = summary["datasets"]
    assert [d["hospital"] for d in datasets] == ["north", "central", "south"]
    assert len({d["dataset_id"] for d in datasets}) == 3
    assert len({d["owner"] for d in datasets}) == 3
    assert sum(d["rows"] for d in datasets) == 569
    for d in datasets:
        assert HASH.fullmatch(d["commitment"]) and HASH.fullmatch(d["register_tx"])
        manifest = json.loads(
            (
                data_dir / "vault" / d["owner"] / "datasets" / d["name"] / "v1" / "manifest.json"
            ).read_text()
        )
        assert manifest["commitment"] == d["commitment"] and manifest["row_count"] == d["rows"]
    assert all(g["signature_valid"] and HASH.fullmatch(g["tx_hash"]) for g in summary["grants"])
    assert len({g["grant_id"] for g in summary["grants"]}) == len(summary["grants"]) == 5

    # Three jobs, recorded, with receipts verified against the chain.
    jobs = {j["name"]: j for j in summary["jobs"]}
    assert set(jobs) == {"dp_mean", "cohort_count", "logistic_regression"}
    assert len({j["job_id"] for j in jobs.values()}) == 3
    for job in jobs.values():
        assert job["status"] == "done"
        assert job["verification"] == {"verified": True, "verdict": "verified"}
        for key in ("job_id", "receipt_hash", "result_hash", "record_tx"):
            assert HASH.fullmatch(job[key]), key
        assert int(job["paid_wei"]) == int(job["captured_wei"]) > 0
    assert len(jobs["logistic_regression"]["dataset_ids"]) == 3
    assert 0 <= jobs["dp_mean"]["result"]["mean"] <= 40
    cohort = jobs["cohort_count"]["result"]
    assert cohort["count"] == datasets[1]["rows"]
    assert sum(c["count"] for c in cohort["cells"]) == cohort["count"]

    # The secure regression equals scikit-learn's on the pooled rows (never pooled by the demo).
    model = jobs["logistic_regression"]["result"]
    assert [c["feature"] for c in model["coefficients"]] == FEATURES
    pooled = pd.concat(hospital_split("breast_cancer", 3), ignore_index=True)
    x = StandardScaler().fit_transform(pooled[FEATURES].to_numpy())
    y = (pooled["diagnosis"] == "malignant").to_numpy()
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x, y)
    coefficients = np.array([c["coefficient"] for c in model["coefficients"]])
    np.testing.assert_allclose(coefficients, reference.coef_[0], atol=1e-3)
    assert model["intercept"] == pytest.approx(reference.intercept_[0], abs=1e-3)
    assert model["n"] == 569 and model["converged"] is True

    # The index saw every use; an epoch was published; a department claimed its entitlement.
    assert summary["index"]["catalog_hits"] == 3
    assert summary["index"]["lineage"]["recorded"] is True
    assert sum(v["jobs"] for v in summary["index"]["datasets"].values()) == 5
    epoch = summary["epoch"]
    assert (
        epoch["epoch"] == 1 and HASH.fullmatch(epoch["root"]) and epoch["root"] != "0x" + "0" * 64
    )
    assert HASH.fullmatch(epoch["tx_hash"]) and epoch["usages"] == 5
    claim = summary["claim"]
    claimed = int(claim["amount_wei"])
    assert claimed > 0 and claimed == int(epoch["entitlements_wei"][claim["contributor"]])
    assert HASH.fullmatch(claim["tx_hash"])
    assert claim["account"] == summary["accounts"]["payouts"][claim["contributor"]]

    # Balances: the consumer paid what was captured (plus gas), the vault holds it less the
    # claim, the contributor got exactly the claim, the owners paid gas only.
    before, after = summary["balances"]["before"], summary["balances"]["after"]
    paid = sum(int(j["paid_wei"]) for j in jobs.values())
    captured = sum(int(j["captured_wei"]) for j in jobs.values())
    assert paid == captured == 5 * 10**16
    gas = summary["gas_wei"]
    assert int(before["consumer"]) - int(after["consumer"]) == paid + int(gas["consumer"])
    assert int(after["vault"]) - int(before["vault"]) == paid - claimed
    assert int(after["contributor"]) - int(before["contributor"]) == claimed
    assert int(before["contributor"]) == 0
    for name, value in before["owners"].items():
        assert int(value) - int(after["owners"][name]) == int(gas["owners"][name]) > 0
    assert int(epoch["total_wei"]) <= captured

    # The kept state can be explored later: chain state, deployment, index, vaults; the raw
    # hospital exports (with medical record numbers) were never left in it.
    assert (data_dir / "chain" / "state.json").is_file()
    assert (data_dir / "deployments" / "31337.json").is_file() and (
        data_dir / "ledger.db"
    ).is_file()
    assert not list(data_dir.rglob("*.csv"))

    # Nothing left running, the user's data dir untouched, no key in the output.
    assert leftovers(str(data_dir), port) == []
    assert not Path(user_env["LEDGER_DATA_DIR"]).exists()
    output = proc.stdout + proc.stderr
    assert not any(key in output for key in dev_keys())
    assert "MRN" not in output


def test_demo_prints_a_readable_account_and_cleans_up(user_env: dict[str, str]) -> None:
    port = free_port()
    proc = run_demo(user_env, "--port", str(port))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for title in (
        "Three hospitals ingest their records",
        "Datasets registered on chain",
        "Owners sign grants for the drug maker",
        "The drug maker pays for three computations",
        "Receipts verified against the chain",
        "Revenue settled in an epoch",
        "A department claims its share",
        "Balances add up",
    ):
        assert title in out
    assert out.count(" verified (signed by the executor") == 3
    assert "FAIL" not in out and "temporary state removed" in out
    assert re.search(r"claimed 0\.\d+ ETH", out)
    # The temporary data dir is gone and nothing it started survives.
    match = re.search(r"data in (\S+)", out)
    assert match is not None
    assert not Path(match.group(1)).exists()
    assert leftovers(match.group(1), port) == []
    assert not any(key in out + proc.stderr for key in dev_keys())
    assert not Path(user_env["LEDGER_DATA_DIR"]).exists()


def test_demo_refuses_a_data_dir_in_use(user_env: dict[str, str], tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "ledger.db").write_text("someone's state")
    proc = run_demo(user_env, "--json", "--data-dir", str(used))
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {
        "ok": False,
        "step": "setup",
        "error": proc.stderr.strip().removeprefix("error: "),
    }
    assert "must be absent or empty" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in used.iterdir()) == ["ledger.db"]
    assert (used / "ledger.db").read_text() == "someone's state"


def test_public_keys_only_on_loopback_and_amounts_in_eth() -> None:
    with pytest.raises(DemoError, match="loopback"):
        derive_many("http://10.0.0.1:8545", [0])
    first = derive_many("http://127.0.0.1:8545", [0, 10])
    assert first[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's account 0
    assert first[0].key[2:] not in repr(first[0])
    assert (
        eth(5 * 10**16) == "0.05 ETH"
        and eth(0) == "0 ETH"
        and eth(-297 * 10**12) == ("-0.000297 ETH")
    )


def test_a_failed_step_is_one_line_and_stops_the_chain(user_env: dict[str, str]) -> None:
    # The port is taken by someone else: the chain step fails, nothing is left behind.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_demo(user_env, "--port", str(port))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: demo step 'chain' failed: AnvilError")
    assert not any(key in proc.stdout + proc.stderr for key in dev_keys())


class Interrupted(Exception):
    pass


def test_an_interrupted_story_stops_everything_it_started() -> None:
    # A caller's progress callback stops the story after the grants (in process): the anvil,
    # the database and the temporary data dir are all gone afterwards.
    port = free_port()
    seen: list[StepReport] = []

    def stop_after_grants(report: StepReport) -> None:
        seen.append(report)
        if report.name == "grants":
            raise Interrupted

    with pytest.raises(Interrupted):
        play(progress=stop_after_grants, port=port)
    assert [r.name for r in seen] == ["chain", "ingest", "register", "grants"]
    match = re.search(r"data in (\S+)", seen[0].lines[0])
    assert match is not None
    assert not Path(match.group(1)).exists()
    assert leftovers(match.group(1), port) == []
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0

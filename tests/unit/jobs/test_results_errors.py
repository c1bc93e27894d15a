"""Result files (atomic, private), the crash hook, errors (messages, pickling), outcome JSON."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.jobs.adapters import _code
from ledger.jobs.crash import CRASH_ENV, CRASH_POINTS, crash_point
from ledger.jobs.errors import (
    JobAccessDeniedError,
    JobNotFoundError,
    JobNotReadyError,
    JobRefusedError,
    JobRequestError,
    JobStateError,
    JobStepUnavailableError,
    ResultStoreError,
)
from ledger.jobs.results import ResultStore
from ledger.jobs.steps import ComputeOutcome, JobFailure

JOB = "0x" + "ab" * 32


def test_result_written_atomically_and_private(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results")
    path = store.write_result(JOB, b'{"a": 1}')
    assert path == store.result_path(JOB)
    assert store.read(JOB) == b'{"a": 1}'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.write_result(JOB, b'{"a": 2}')
    assert store.read(JOB) == b'{"a": 2}'
    assert [p.name for p in store.job_dir(JOB).iterdir()] == ["result.json"]
    store.write_receipt(JOB, b"{}")
    assert store.read(JOB, "receipt.json") == b"{}"
    store.discard(JOB)
    assert not store.job_dir(JOB).exists()
    with pytest.raises(ResultStoreError, match="cannot read result.json"):
        store.read(JOB)


def test_result_write_failure_is_typed_and_leaves_no_temp(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(ResultStoreError, match="cannot write result.json"):
        ResultStore(blocker).write_result(JOB, b"{}")
    assert blocker.read_text().startswith("a file")


def test_crash_point_kills_only_at_its_point() -> None:
    code = (
        "from ledger.jobs.crash import crash_point\n"
        "crash_point('paid')\n"
        "print('survived paid', flush=True)\n"
        "crash_point('computed')\n"
        "print('survived computed', flush=True)\n"
    )
    env = dict(os.environ, **{CRASH_ENV: "computed"})
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == -signal.SIGKILL
    assert proc.stdout == "survived paid\n"


def test_crash_point_without_env_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRASH_ENV, raising=False)
    for point in CRASH_POINTS:
        crash_point(point)
    assert len(set(CRASH_POINTS)) == len(CRASH_POINTS)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (JobRequestError("params", "a JSON object"), ["'params'", "a JSON object"]),
        (JobNotFoundError(JOB), [JOB]),
        (JobAccessDeniedError(JOB, "0x" + "11" * 20), ["not the grantee"]),
        (JobNotReadyError(JOB, "paid"), ["is paid", "no result yet"]),
        (JobNotReadyError(JOB, "failed", "revoked"), ["failed (revoked)"]),
        (JobStepUnavailableError("compute", "missing"), ["'compute'", "missing"]),
        (JobRefusedError(0, "revoked", "the grantor revoked"), ["grant 0", "revoked"]),
        (ResultStoreError(JOB, "gone"), ["gone"]),
        (JobStateError(JOB, "escrow captured while failing"), [JOB, "for an operator"]),
    ],
)
def test_errors_say_what_and_survive_pickling(error: Exception, words: list[str]) -> None:
    for word in words:
        assert word in str(error)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.__dict__ == error.__dict__


def test_outcome_json_round_trip() -> None:
    outcome = ComputeOutcome(
        result={"mean": 1.5},
        result_hash="0x" + "01" * 32,
        algorithm_hash="0x" + "02" * 32,
        runtime_hash="0x" + "03" * 32,
        parameters_hash="0x" + "04" * 32,
        epsilon_spent={7: 500_000, 9: 0},
        suppression_k=10,
    )
    assert ComputeOutcome.from_json(outcome.to_json()) == outcome


def test_failure_codes_from_error_class_names() -> None:
    assert _code("BudgetExhaustedError") == "budget_exhausted"
    assert _code("SandboxTimeoutError") == "sandbox_timeout"
    failure = JobFailure("budget_exhausted", "no budget left")
    assert str(failure) == "budget_exhausted: no budget left"

"""SandboxLimits validation and the sandbox error tree (messages, fields, pickling)."""

from __future__ import annotations

import pickle

import pytest

from ledger.compute.sandbox import (
    CustomCodeFormatError,
    CustomCodeHashError,
    CustomResultError,
    SandboxConfigError,
    SandboxCrashError,
    SandboxLimitError,
    SandboxLimits,
    SandboxTimeoutError,
    SandboxUnavailableError,
)
from ledger.errors import LedgerError


def test_defaults_are_sane() -> None:
    limits = SandboxLimits()
    assert limits.cpu_seconds < limits.wall_seconds
    assert limits.memory_bytes < limits.address_space_bytes
    assert limits.fsize_bytes == limits.max_output_bytes + 1
    assert limits.prlimit_args() == [
        "--cpu=30:31",
        f"--as={8 << 30}",
        f"--fsize={(16 << 20) + 1}",
        "--nofile=256",
        "--core=0",
    ]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("cpu_seconds", 0, "> 0"),
        ("cpu_seconds", 1.5, "an integer"),
        ("wall_seconds", float("nan"), "finite"),
        ("wall_seconds", -1.0, "> 0"),
        ("memory_bytes", 1 << 20, ">= 32 MiB"),
        ("max_pids", 2, ">= 4"),
        ("max_pids", True, "a number"),
        ("max_output_bytes", "big", "a number"),
        ("max_open_files", 3, ">= 16"),
        ("address_space_bytes", 1 << 20, ">= 64 MiB"),
    ],
)
def test_bad_limits_name_the_field_and_rule(field: str, value: object, rule: str) -> None:
    with pytest.raises(SandboxConfigError) as caught:
        SandboxLimits(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == f"limits.{field}"
    assert rule in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "error",
    [
        SandboxUnavailableError("bubblewrap (/x not found)", "apt-get install bubblewrap"),
        SandboxConfigError("limits.max_pids", ">= 4", 2),
        SandboxTimeoutError(2.5, 2.0),
        SandboxLimitError("memory", 1 << 28, "out of memory"),
        SandboxCrashError("exit status 3", exit_code=3),
        CustomCodeFormatError("code", "UTF-8 text"),
        CustomCodeHashError("0x" + "aa" * 32, "0x" + "bb" * 32),
        CustomResultError("a JSON object"),
    ],
)
def test_errors_are_ledger_errors_and_survive_pickling(error: LedgerError) -> None:
    assert isinstance(error, LedgerError)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_messages_say_what_to_do() -> None:
    assert "apt-get install bubblewrap" in str(
        SandboxUnavailableError("bubblewrap", "apt-get install bubblewrap")
    )
    assert "not run" in str(CustomCodeHashError("0x" + "aa" * 32, "0x" + "bb" * 32))
    timeout = SandboxTimeoutError(2.5, 2.0)
    assert isinstance(timeout, TimeoutError) and "2 s" in str(timeout)

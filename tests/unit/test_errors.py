"""Errors keep their message and structured fields across pickling (worker processes, Dask)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from ledger.chain import reverts
from ledger.errors import (
    DeploymentNotFoundError,
    LedgerError,
    RpcUnavailableError,
    SettingsError,
)


@pytest.mark.parametrize(
    "error",
    [
        SettingsError("LEDGER_RPC_URL", "must be an http:// or https:// URL"),
        RpcUnavailableError("http://user:pw@node.example:8545/v3/KEY", "ConnectionError"),
        DeploymentNotFoundError(31337, Path("/tmp/deployments/31337.json")),
        reverts.AccessGrantsRevoked("AccessGrantsRevoked", {"grantId": "0x" + "ab" * 32}),
    ],
)
def test_errors_round_trip_through_pickle(error: LedgerError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_rpc_error_hides_credentials_and_path() -> None:
    error = RpcUnavailableError("http://user:pw@node.example:8545/v3/KEY", "ConnectionError")
    assert "http://node.example:8545" in str(error)
    assert "KEY" not in str(error) and "pw" not in str(error)


def test_decode_revert_of_garbage_is_none() -> None:
    assert reverts.decode_revert("0xzz") is None
    # Error(string) whose payload is not valid UTF-8.
    bad = "0x08c379a0" + "20".rjust(64, "0") + "2".rjust(64, "0") + "ffff".ljust(64, "0")
    assert reverts.decode_revert(bad) is None

"""Multi-party computation across owners (MPyC): secure sum, mean and logistic regression.

Each owner's data directory is its own party process (sandboxed with bubblewrap when available)
talking MPyC over TCP on 127.0.0.1; no process ever holds another party's rows. See
`ledger.compute.mpc.api` for the functions, `ledger.compute.mpc.protocols` for what is revealed.
"""

from __future__ import annotations

from ledger.compute.mpc.api import (
    MAX_PARTIES,
    MIN_PARTIES,
    MpcTiming,
    SecureAggregate,
    SecureModel,
    secure_logistic_regression,
    secure_mean,
    secure_sum,
)
from ledger.compute.mpc.errors import (
    MpcColumnError,
    MpcDataError,
    MpcError,
    MpcIsolationError,
    MpcParameterError,
    MpcPartyError,
    MpcProtocolError,
    MpcTimeoutError,
    MpcTooFewRowsError,
)
from ledger.compute.mpc.isolation import bwrap_path
from ledger.compute.mpc.launcher import PartyPool

__all__ = [
    "MAX_PARTIES",
    "MIN_PARTIES",
    "MpcColumnError",
    "MpcDataError",
    "MpcError",
    "MpcIsolationError",
    "MpcParameterError",
    "MpcPartyError",
    "MpcProtocolError",
    "MpcTimeoutError",
    "MpcTiming",
    "MpcTooFewRowsError",
    "PartyPool",
    "SecureAggregate",
    "SecureModel",
    "bwrap_path",
    "secure_logistic_regression",
    "secure_mean",
    "secure_sum",
]

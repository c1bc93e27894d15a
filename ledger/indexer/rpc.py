"""The indexer's read-only view of the chain: heads, headers and logs as raw JSON-RPC.

Raw responses skip web3's result formatters, which would cost more than everything else a
backfill does. Transient faults (connection, timeout, HTTP 429/5xx) are retried with backoff and
then become `RpcUnavailableError`. A node that refuses a log query as too large (every provider
words it differently) raises `RangeTooLarge`, which the indexer answers with a smaller range.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeVar, cast

import requests
from web3 import Web3
from web3.types import RPCEndpoint

from ledger.errors import RpcUnavailableError
from ledger.store.types import utc_from_timestamp

__all__ = ["BlockHeader", "ChainReader", "RangeTooLarge", "is_range_too_large"]

T = TypeVar("T")

# What geth, erigon, reth, besu, nethermind, Infura, Alchemy, QuickNode and others answer when a
# log query covers too many blocks or returns too many logs.
_TOO_LARGE: Final = re.compile(
    r"more than \d+ results|too many (logs|results|blocks)|exceeds? (the )?max|"
    r"limit exceeded|range (is )?too (large|wide|big)|block range|response size|"
    r"query timeout|returned more than|max results|maximum range|response too large|"
    r"log response size exceeded",
    re.IGNORECASE,
)
_TOO_LARGE_CODES: Final = frozenset({-32005})


class RangeTooLarge(Exception):
    """The node refused a log query as too large; retry with fewer blocks (internal signal)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """What the indexer needs of a block."""

    number: int
    hash: str
    parent_hash: str
    time: datetime


def is_range_too_large(error: Mapping[str, Any]) -> bool:
    """Whether a JSON-RPC error object says the log query was too large."""
    return error.get("code") in _TOO_LARGE_CODES or bool(
        _TOO_LARGE.search(str(error.get("message", "")))
    )


class ChainReader:
    """Reads heads, headers and logs through `w3`'s provider (HTTP batching when it has it)."""

    def __init__(self, w3: Web3, *, retries: int = 5, backoff: float = 0.2) -> None:
        self._provider = w3.provider
        self._retries = retries
        self._backoff = backoff
        self.url = str(getattr(w3.provider, "endpoint_uri", None) or w3.provider)

    def chain_id(self) -> int:
        """The node's chain id.

        Raises:
            RpcUnavailableError: the node is unreachable or answers with an error.
        """
        return int(self._call("eth_chainId", []), 16)

    def head(self) -> int:
        """The number of the latest block.

        Raises:
            RpcUnavailableError: as `chain_id`.
        """
        return int(self._call("eth_blockNumber", []), 16)

    def header(self, number: int) -> BlockHeader | None:
        """The header of block `number`, None if the chain is shorter.

        Raises:
            RpcUnavailableError: as `chain_id`.
        """
        return _header(self._call("eth_getBlockByNumber", [hex(number), False]))

    def headers(self, numbers: Sequence[int]) -> dict[int, BlockHeader | None]:
        """Headers of several blocks in one batch request (one by one if batching fails).

        Raises:
            RpcUnavailableError: as `chain_id`.
        """
        unique = sorted(set(numbers))
        batch = getattr(self._provider, "make_batch_request", None)
        if len(unique) <= 1 or batch is None:
            return {n: self.header(n) for n in unique}
        calls = [(RPCEndpoint("eth_getBlockByNumber"), [hex(n), False]) for n in unique]
        answers = self._retry(lambda: batch(calls))
        if not isinstance(answers, list) or len(answers) != len(unique):
            return {n: self.header(n) for n in unique}
        by_id = sorted(answers, key=lambda a: int(a.get("id", 0)))
        if any("error" in a for a in by_id):
            return {n: self.header(n) for n in unique}
        return {n: _header(a.get("result")) for n, a in zip(unique, by_id, strict=True)}

    def logs(self, first: int, last: int, addresses: Sequence[str]) -> list[dict[str, Any]]:
        """Raw logs of `addresses` in blocks `first`..`last` (inclusive), in chain order.

        Raises:
            RangeTooLarge: the node refuses the range as too large (or times out on it).
            RpcUnavailableError: the node is unreachable or answers with another error.
        """
        params = [{"fromBlock": hex(first), "toBlock": hex(last), "address": list(addresses)}]
        try:
            response = self._retry(
                lambda: self._provider.make_request(RPCEndpoint("eth_getLogs"), params),
                attempts=1 if last > first else None,
            )
        except RpcUnavailableError as exc:
            if last > first and ("timed out" in exc.reason.lower() or "413" in exc.reason):
                raise RangeTooLarge(exc.reason) from None
            raise
        error = response.get("error")
        if error:
            if is_range_too_large(cast(Mapping[str, Any], error)):
                raise RangeTooLarge(str(error.get("message", error)))
            raise RpcUnavailableError(self.url, f"eth_getLogs: {error.get('message', error)}")
        result = response.get("result")
        if not isinstance(result, list):
            raise RpcUnavailableError(self.url, f"eth_getLogs answered {result!r}")
        return result

    def _call(self, method: str, params: list[Any]) -> Any:
        response = self._retry(lambda: self._provider.make_request(RPCEndpoint(method), params))
        error = response.get("error")
        if error:
            raise RpcUnavailableError(self.url, f"{method}: {error.get('message', error)}")
        return response.get("result")

    def _retry(self, call: Callable[[], T], *, attempts: int | None = None) -> T:
        delay = self._backoff
        tries = attempts or self._retries
        error: Exception | None = None
        for attempt in range(tries):
            try:
                return call()
            except (
                requests.ConnectionError,
                requests.Timeout,
                ConnectionError,
                TimeoutError,
            ) as exc:
                error = exc
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status != 429 and status < 500 and status != 413:
                    raise RpcUnavailableError(self.url, f"HTTP {status}") from None
                error = exc
                if status == 413:
                    break
            if attempt + 1 < tries:
                time.sleep(delay)
                delay *= 2
        reason = str(error) if error is not None else "no answer"
        if isinstance(error, requests.Timeout):
            reason = f"timed out ({reason})"
        raise RpcUnavailableError(self.url, reason)


def _header(block: Any) -> BlockHeader | None:
    if not isinstance(block, dict):
        return None
    return BlockHeader(
        number=int(block["number"], 16),
        hash=str(block["hash"]).lower(),
        parent_hash=str(block["parentHash"]).lower(),
        time=utc_from_timestamp(int(block["timestamp"], 16)),
    )

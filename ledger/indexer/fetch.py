"""Reading chunks of events from the chain: adaptive ``eth_getLogs`` ranges, decoding, block
times, and the checks that the chain did not move under a chunk while it was read."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ledger.errors import LogQueryError
from ledger.indexer.decode import DecodedEvent, EventDecoder
from ledger.indexer.persist import Position
from ledger.indexer.rpc import BlockHeader, ChainReader, RangeTooLarge

__all__ = ["ChainMoved", "ChunkFetcher", "Fetched"]


class ChainMoved(Exception):
    """The chain reorganised while a chunk was read (internal signal: start the run over)."""


@dataclass(slots=True)
class Fetched:
    """A chunk read from the chain: it continues `start` up to block `end`; every event has
    its block time."""

    start: Position
    end: BlockHeader
    events: list[DecodedEvent]


class ChunkFetcher:
    """Fetches chunk after chunk, growing or shrinking the block range to aim at `target_logs`
    logs per request and halving it when the node refuses a range as too large."""

    def __init__(
        self,
        reader: ChainReader,
        decoder: EventDecoder,
        *,
        span: int,
        max_span: int,
        target_logs: int,
    ) -> None:
        self._reader = reader
        self._decoder = decoder
        self._addresses = decoder.addresses
        self._max_span = max_span
        self._target_logs = target_logs
        self.span = span

    def fetch(self, position: Position, target: int) -> Fetched:
        """The decoded events of the blocks after `position`, up to at most `target`.

        Raises:
            ChainMoved: the chain reorganised while the chunk was read.
            LogQueryError: the node refuses the logs of a single block.
            RpcUnavailableError: the node is unreachable or keeps failing.
        """
        first = position.number + 1
        while True:
            last = min(first + self.span - 1, target)
            end = self._reader.header(last)
            if end is None:
                raise ChainMoved(f"block {last} disappeared")
            try:
                logs = self._reader.logs(first, last, self._addresses)
            except RangeTooLarge as exc:
                if last == first:
                    raise LogQueryError(first, exc.reason) from None
                self.span = max(1, (last - first + 1) // 2)
                continue
            break
        self._check_unmoved(position, end)
        self._adapt(len(logs), last - first + 1)
        events = self._with_times(self._decoder.decode_all(logs), first, end)
        return Fetched(position, end, events)

    def _check_unmoved(self, position: Position, end: BlockHeader) -> None:
        """The chunk's last block and the block it continues must be unchanged after the logs
        were read: then the logs come from one chain that extends what is indexed."""
        numbers = [end.number] if position.hash is None else [end.number, position.number]
        now = self._reader.headers(numbers)
        current = now.get(end.number)
        if current is None or current.hash != end.hash:
            raise ChainMoved(f"block {end.number} changed while its logs were read")
        if position.hash is not None:
            parent = now.get(position.number)
            if parent is None or parent.hash != position.hash:
                raise ChainMoved(f"block {position.number} changed while logs were read")

    def _with_times(
        self, events: list[DecodedEvent], first: int, end: BlockHeader
    ) -> list[DecodedEvent]:
        hashes: dict[int, str] = {}
        for event in events:
            if not first <= event.block_number <= end.number:
                raise ChainMoved(f"a log of block {event.block_number} is outside the range")
            if hashes.setdefault(event.block_number, event.block_hash) != event.block_hash:
                raise ChainMoved(f"logs of block {event.block_number} carry two hashes")
        if hashes.get(end.number, end.hash) != end.hash:
            raise ChainMoved(f"block {end.number} changed while its logs were read")
        missing = sorted({e.block_number for e in events if e.block_time is None})
        if not missing:
            return events
        # This node leaves blockTimestamp out of its logs: read it from the headers.
        headers = self._reader.headers(missing)
        times: dict[int, datetime] = {}
        for number in missing:
            header = headers.get(number)
            if header is None or header.hash != hashes[number]:
                raise ChainMoved(f"block {number} changed while its logs were read")
            times[number] = header.time
        return [
            replace(e, block_time=times[e.block_number]) if e.block_time is None else e
            for e in events
        ]

    def _adapt(self, logs: int, span: int) -> None:
        if logs > self._target_logs:
            self.span = max(1, span * self._target_logs // logs)
        elif logs < self._target_logs // 2 and span >= self.span:
            self.span = min(self._max_span, self.span * 2)

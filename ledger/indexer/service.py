"""The indexer: every event of a deployment into the database, behind a confirmation depth,
through reorgs, restartable at any point.

`Indexer.run_once` indexes from the cursor to the confirmed head (``head - confirmations + 1``)
in chunks of blocks, one transaction per chunk: raw events, derived rows, state, block hashes and
the cursor commit together, so a killed run resumes from the cursor with nothing doubled or lost.
Before each run it compares the cursor's block hash with the chain's; on a mismatch it walks the
stored recent hashes back to the fork point, deletes everything derived from later blocks and
recomputes the state those blocks had changed. While fetching it checks that the chain under the
chunk did not move. `Indexer.follow` repeats `run_once` until stopped; the CLI and the API's
background thread both use it. Nothing here prints: progress goes to an optional callback.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Final, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session
from web3 import Web3

from ledger.chain.artifacts import load_artifact
from ledger.chain.deploy import Deployment
from ledger.errors import (
    DatabaseUnavailableError,
    IndexerError,
    IndexMismatchError,
    MigrationError,
    RpcUnavailableError,
    StaleDeploymentError,
    WrongChainError,
)
from ledger.indexer.decode import DecodedEvent, EventDecoder
from ledger.indexer.fetch import ChainMoved, ChunkFetcher, Fetched
from ledger.indexer.mapping import EVENT_MAP
from ledger.indexer.persist import (
    CursorMoved,
    Position,
    delete_index,
    load_cursor,
    move_cursor,
    prune_blocks,
    recent_blocks,
    rollback_to,
    write_chunk,
)
from ledger.indexer.rows import Projector
from ledger.indexer.rpc import ChainReader
from ledger.indexer.spec import EventMap
from ledger.indexer.validate import validate_mapping
from ledger.store.database import redact
from ledger.store.migrate import current_revision, head_revision

__all__ = [
    "IndexProgress",
    "Indexer",
    "IndexerOptions",
    "ProgressCallback",
    "Rollback",
    "RunReport",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")
_FORK_PAGE: Final = 64
# While runs are under way, the collector's first generation waits for this many new container
# objects instead of 700: a chunk allocates hundreds of thousands of short-lived dicts and
# events, and the default threshold spends a third of the decoding and row building in
# collections that find no cycles. Restored when the last run ends.
_GC_YOUNG: Final = 100_000
_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved: tuple[int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class IndexerOptions:
    """How the indexer works.

    Args:
        confirmations: Blocks, the including one counted, before a block is indexed (1 = index
            the head itself).
        chunk_blocks: Blocks of the first ``eth_getLogs`` range; adapted as the run goes.
        max_chunk_blocks: Upper bound of the adapted range.
        target_logs: Logs aimed at per range (and so per database transaction).
        reorg_window: Recent block hashes kept to find a fork point; a deeper reorg re-indexes
            from the deploy block.
        max_restarts: Times one run may start over because the chain reorganised under it or
            another indexer on the same database moved the cursor first; one more fails the run.
    """

    confirmations: int = 1
    chunk_blocks: int = 2_000
    max_chunk_blocks: int = 100_000
    target_logs: int = 10_000
    reorg_window: int = 256
    max_restarts: int = 20


@dataclass(frozen=True, slots=True)
class IndexProgress:
    """Where a run stands: it indexes `start_block`..`target_block` and reached `block`."""

    start_block: int
    target_block: int
    block: int
    events: int

    @property
    def done(self) -> bool:
        """Whether the run reached its target."""
        return self.block >= self.target_block


@dataclass(frozen=True, slots=True)
class Rollback:
    """A reorg the run undid: the cursor went from `from_block` back to `fork_block`."""

    from_block: int
    fork_block: int
    dropped_events: int


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one `Indexer.run_once` did."""

    start_block: int
    end_block: int
    target_block: int
    events: int
    chunks: int
    rollbacks: tuple[Rollback, ...]


ProgressCallback = Callable[[IndexProgress], None]


class Indexer:
    """Follows one deployment's events into the database of `engine` (migrated beforehand).

    Raises (from the constructor):
        EventMappingError: the event mapping does not fit the shipped ABIs.
        ArtifactError: an artifact of the deployment's contracts is missing.
    """

    def __init__(
        self,
        w3: Web3,
        deployment: Deployment,
        engine: Engine,
        *,
        options: IndexerOptions | None = None,
        progress: ProgressCallback | None = None,
        mapping: Mapping[tuple[str, str], EventMap] | None = None,
    ) -> None:
        self.deployment = deployment
        self.options = options or IndexerOptions()
        self._engine = engine
        self._progress = progress
        abis = {name: load_artifact(name).abi for name in deployment.addresses}
        chosen = EVENT_MAP if mapping is None else mapping
        validate_mapping(abis, chosen)
        self._decoder = EventDecoder(
            {name: (address, abis[name]) for name, address in deployment.addresses.items()}
        )
        self._projector = Projector(chosen)
        self._reader = ChainReader(w3)
        self._fetcher = ChunkFetcher(
            self._reader,
            self._decoder,
            span=self.options.chunk_blocks,
            max_span=self.options.max_chunk_blocks,
            target_logs=self.options.target_logs,
        )
        self._lock = threading.Lock()
        self._chain_checked = False

    @property
    def chain_id(self) -> int:
        """The chain id of the deployment indexed."""
        return self.deployment.chain_id

    def run_once(self, stop: threading.Event | None = None) -> RunReport:
        """Index from the cursor to the confirmed head, after undoing any reorg; `stop` ends
        the run after the current chunk.

        Raises:
            WrongChainError: the node is not on the deployment's chain.
            StaleDeploymentError: the deploy block is not on the chain any more.
            IndexMismatchError: the database indexes another deployment.
            RpcUnavailableError: the node is unreachable or keeps failing.
            LogQueryError: the node refuses the logs of a single block.
            MigrationError: the database is not migrated to the ledger's revision.
            DatabaseUnavailableError: the database cannot be reached.
            IndexerError: the chain kept reorganising under the run, or another indexer kept
                moving the cursor (more than ``max_restarts`` times), or a write broke a
                constraint of the database while the cursor stayed put (a bug, not a race: the
                message names the table and constraint).
        """
        with self._lock, _fewer_collections():
            try:
                return self._run(stop)
            except IntegrityError as exc:
                raise IndexerError(
                    f"indexing chain {self.chain_id} broke a constraint of the database "
                    f"({_integrity_detail(exc)})"
                ) from exc
            except (OperationalError, InterfaceError) as exc:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise DatabaseUnavailableError(redact(self._engine.url), reason) from None

    def follow(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Run `run_once` every `interval` seconds until `stop` is set. An unreachable node or
        database is logged and retried; any other error ends the loop.

        Raises:
            LedgerError: as `run_once`, except RpcUnavailableError and DatabaseUnavailableError.
        """
        while not stop.is_set():
            try:
                self.run_once(stop)
            except (RpcUnavailableError, DatabaseUnavailableError) as exc:
                _log.warning("indexer: %s; retrying in %.1f s", exc, interval)
            stop.wait(interval)

    def reset(self) -> None:
        """Delete the whole index of this chain (the next run starts at the deploy block).

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        with self._lock:
            try:
                with Session(self._engine) as session:
                    delete_index(session, self.chain_id)
                    session.commit()
            except (OperationalError, InterfaceError) as exc:
                raise DatabaseUnavailableError(redact(self._engine.url), str(exc.orig)) from None

    def _run(self, stop: threading.Event | None) -> RunReport:
        self._check_chain()
        rollbacks: list[Rollback] = []
        events = chunks = 0
        start: int | None = None
        restarts = 0
        while True:
            try:
                position = self._load_position()
                start = position.number + 1 if start is None else start
                position, undone = self._undo_reorg(position)
                if undone is not None:
                    rollbacks.append(undone)
                target = self._reader.head() - self.options.confirmations + 1
                self._report(start, target, position.number, events)
                for reached, count in self._index_range(position, target, stop):
                    position = reached
                    events += count
                    chunks += 1
                    self._report(start, target, position.number, events)
                return RunReport(start, position.number, target, events, chunks, tuple(rollbacks))
            except CursorMoved as exc:
                # Another indexer on this database got there first: it made the progress, so
                # this is no failure; carry on from where it left the cursor, a bounded number
                # of times (a cursor that keeps moving under every chunk is not progress).
                restarts += 1
                if restarts >= self.options.max_restarts:
                    raise IndexerError(
                        f"another indexer kept moving the cursor of chain {self.chain_id} "
                        f"through {restarts} attempts ({exc}); run `ledger index` again"
                    ) from None
                _log.info("indexer: continuing after another indexer (%s)", exc)
            except ChainMoved as exc:
                restarts += 1
                if restarts >= self.options.max_restarts:
                    raise IndexerError(
                        f"chain {self.chain_id} kept reorganising under the index through "
                        f"{restarts} attempts ({exc}); run `ledger index` again"
                    ) from None
                _log.info("indexer: starting over (%s)", exc)

    def _check_chain(self) -> None:
        if self._chain_checked:
            return
        revision, head = current_revision(self._engine), head_revision()
        if revision != head:
            raise MigrationError(
                redact(self._engine.url),
                f"the database is at revision {revision}, the indexer needs {head}; "
                "`ledger index` migrates it (or call ledger.store.migrate.upgrade)",
            )
        actual = self._reader.chain_id()
        if actual != self.chain_id:
            raise WrongChainError(self.chain_id, actual, "the deployment manifest")
        block = self.deployment.deploy_block
        header = self._reader.header(block)
        if header is None or header.hash != self.deployment.deploy_block_hash.lower():
            raise StaleDeploymentError(
                self.chain_id,
                block,
                self.deployment.deploy_block_hash,
                header.hash if header else None,
            )
        self._chain_checked = True

    def _load_position(self) -> Position:
        with Session(self._engine) as session:
            cursor = load_cursor(session, self.chain_id)
        if cursor is None:
            return Position(self.deployment.deploy_block - 1, None)
        if cursor.deploy_block_hash != self.deployment.deploy_block_hash:
            raise IndexMismatchError(
                self.chain_id, self.deployment.deploy_block_hash, cursor.deploy_block_hash
            )
        return Position(cursor.block_number, cursor.block_hash)

    def _undo_reorg(self, position: Position) -> tuple[Position, Rollback | None]:
        if position.hash is None:
            return position, None
        header = self._reader.header(position.number)
        if header is not None and header.hash == position.hash:
            return position, None
        fork = self._fork_point(position.number)
        with Session(self._engine) as session:
            dropped = rollback_to(session, self._projector, fork.number)
            self._move(session, position, fork)
            session.commit()
        _log.warning(
            "indexer: reorg below block %d; rolled back to block %d (%d events dropped)",
            position.number,
            fork.number,
            dropped,
        )
        return fork, Rollback(position.number, fork.number, dropped)

    def _fork_point(self, below: int) -> Position:
        """The newest stored block whose hash the chain still has, else the block before the
        deployment (everything is re-indexed)."""
        while True:
            with Session(self._engine) as session:
                page = recent_blocks(session, below=below, limit=_FORK_PAGE)
            if not page:
                break
            now = self._reader.headers([number for number, _ in page])
            for number, stored in page:
                header = now.get(number)
                if header is not None and header.hash == stored:
                    return Position(number, stored)
            below = page[-1][0] - 1
        number = self.deployment.deploy_block - 1
        header = self._reader.header(number)
        if header is None:
            raise ChainMoved(f"block {number} is missing")
        return Position(number, header.hash)

    def _index_range(
        self, position: Position, target: int, stop: threading.Event | None
    ) -> Iterator[tuple[Position, int]]:
        """Index chunk after chunk up to `target`, yielding the new position and event count of
        each; the next chunk is fetched while the current one is written."""
        if position.number >= target:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-index-fetch") as pool:
            pending: Future[Fetched] | None = pool.submit(self._fetcher.fetch, position, target)
            while pending is not None:
                fetched = pending.result()
                end = Position(fetched.end.number, fetched.end.hash)
                more = end.number < target and not (stop is not None and stop.is_set())
                pending = pool.submit(self._fetcher.fetch, end, target) if more else None
                try:
                    yield self._store(fetched), len(fetched.events)
                except BaseException:
                    if pending is not None:
                        pending.cancel()
                    raise

    def _store(self, fetched: Fetched) -> Position:
        """Write one fetched chunk and move the cursor over it, in one transaction."""
        projection = self._projector.project(fetched.events)
        end = fetched.end
        blocks = {event.block_number: (event.block_hash, _time(event)) for event in fetched.events}
        blocks[end.number] = (end.hash, end.time)
        new = Position(end.number, end.hash)
        with Session(self._engine) as session:
            try:
                write_chunk(session, projection, blocks)
                self._move(session, fetched.start, new)
                prune_blocks(session, below=end.number - self.options.reorg_window)
                session.commit()
            except IntegrityError as exc:
                session.rollback()
                error = exc
            else:
                return new
        # Rows of the chunk exist already. That is a race only if another indexer wrote them,
        # and then it also moved the cursor off where this chunk starts; otherwise it is a bug
        # (a mapping or state refresher writing a row twice) and retrying would spin forever.
        if self._load_position() != fetched.start:
            raise CursorMoved(
                f"another indexer wrote rows of this chunk ({_integrity_detail(error)})"
            )
        raise IndexerError(
            f"indexing blocks {fetched.start.number + 1}..{end.number} of chain {self.chain_id} "
            f"broke a constraint of the database while no other indexer moved the cursor "
            f"({_integrity_detail(error)})"
        ) from error

    def _move(self, session: Session, expected: Position, new: Position) -> None:
        move_cursor(
            session,
            self.chain_id,
            expected=expected,
            new=new,
            deploy_block=self.deployment.deploy_block,
            deploy_block_hash=self.deployment.deploy_block_hash,
        )

    def _report(self, start: int, target: int, block: int, events: int) -> None:
        if self._progress is not None:
            self._progress(IndexProgress(start, max(target, block), block, events))


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the collector's young-generation threshold (see `_GC_YOUNG`) while any run is
    under way in this process."""
    global _gc_runs, _gc_saved
    with _gc_lock:
        if _gc_runs == 0:
            _gc_saved = gc.get_threshold()
            if _gc_saved[0] and _gc_saved[0] < _GC_YOUNG:  # 0: collection is off, leave it
                gc.set_threshold(_GC_YOUNG, *_gc_saved[1:])
        _gc_runs += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)
                _gc_saved = None


def _integrity_detail(exc: IntegrityError) -> str:
    """The table and constraint an integrity error names, as far as the driver tells."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)  # psycopg
    table = getattr(diag, "table_name", None)
    constraint = getattr(diag, "constraint_name", None)
    message = str(orig if orig is not None else exc).strip().splitlines()[0]
    if table or constraint:
        return f"table {table or '?'}, constraint {constraint or '?'}: {message}"
    return message  # SQLite: "UNIQUE constraint failed: <table>.<column>, ..."


def _time(event: DecodedEvent) -> datetime:
    assert event.block_time is not None, "block times are filled in before projection"
    return event.block_time

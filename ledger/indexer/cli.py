"""``ledger index``: the indexer from a terminal, with a progress bar (registered in
``ledger.cli``). The library (`ledger.indexer.service`) never prints; this module does."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ledger.settings import get_settings

if TYPE_CHECKING:
    from ledger.indexer.service import IndexProgress, RunReport

#: `IndexerOptions().chunk_blocks`, written out so that building the command's help does not
#: import the indexer (and web3); tests/unit/test_cli_startup.py checks that the two agree.
_DEFAULT_CHUNK_BLOCKS = 2_000

__all__ = ["index_command"]

_console = Console()


def index_command(
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep indexing new blocks until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between polls with --follow.")
    ] = 2.0,
    chunk_blocks: Annotated[
        int, typer.Option("--chunk-blocks", min=1, help="Blocks per first eth_getLogs range.")
    ] = _DEFAULT_CHUNK_BLOCKS,
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete this chain's index first, then rebuild it.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run's report as JSON (no progress bar).")
    ] = False,
) -> None:
    """Index every contract event into the database (migrated first), up to the confirmed
    head (LEDGER_CONFIRMATIONS); with --follow, keep following the chain until Ctrl-C."""
    from ledger.chain.client import connect
    from ledger.chain.deploy import load_deployment
    from ledger.indexer.service import Indexer, IndexerOptions
    from ledger.store.database import open_engine, redact
    from ledger.store.migrate import upgrade

    settings = get_settings()
    w3 = connect(settings)
    deployment = load_deployment(settings.resolved_deployments_dir, w3.eth.chain_id)
    url = settings.resolved_database_url
    upgrade(url)
    engine = open_engine(url)
    options = IndexerOptions(confirmations=settings.confirmations, chunk_blocks=chunk_blocks)
    bar = _Bar(enabled=not as_json)
    indexer = Indexer(w3, deployment, engine, options=options, progress=bar.update)
    stop = threading.Event()
    try:
        with bar:
            if reset:
                indexer.reset()
            report = indexer.run_once(stop)
            if follow:
                bar.following(report)
                indexer.follow(stop, interval)
    except KeyboardInterrupt:
        stop.set()
        if not as_json:
            _console.print("stopped; the next run resumes from the cursor")
        return
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps({"database": redact(url)} | asdict(report), indent=2))
        return
    rollbacks = f", {len(report.rollbacks)} reorg(s) rolled back" if report.rollbacks else ""
    _console.print(
        f"chain {deployment.chain_id}: indexed through block {report.end_block} "
        f"({report.events:,} events in {report.chunks} chunk(s){rollbacks}) into {redact(url)}"
    )


class _Bar:
    """A rich progress bar over blocks, fed by the indexer's progress callback."""

    def __init__(self, *, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("blocks, {task.fields[events]:,} events"),
            TimeElapsedColumn(),
            console=_console,
            disable=not enabled,
        )
        self._task: TaskID | None = None
        self._description = "indexing"
        self._events = 0

    def __enter__(self) -> _Bar:
        self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._progress.stop()

    def following(self, report: RunReport) -> None:
        """Switch to follow mode: the bar shows the blocks and events indexed since."""
        self._description = "following (Ctrl-C stops)"
        self._events += report.events

    def update(self, progress: IndexProgress) -> None:
        """The indexer's progress callback."""
        total = max(progress.target_block - progress.start_block + 1, 1)
        done = (
            total
            if progress.done
            else min(max(progress.block - progress.start_block + 1, 0), total)
        )
        events = self._events + progress.events
        if self._task is None:
            self._task = self._progress.add_task(self._description, total=total, events=events)
        self._progress.update(
            self._task,
            description=self._description,
            total=total,
            completed=done,
            events=events,
        )
        if progress.done and self._description.startswith("following"):
            self._events = events

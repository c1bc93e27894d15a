"""``ledger demo``: play the whole story and print a readable account (or, with ``--json``, one
JSON summary). `install` adds the command to a Typer app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledger.errors import LedgerError

__all__ = ["demo_command", "install"]

_console = Console(highlight=False)
_err_console = Console(stderr=True, highlight=False)


def install(app: typer.Typer) -> None:
    """Add the top-level ``demo`` command to `app`."""
    app.command("demo")(demo_command)


def demo_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary instead of the account.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Absent or empty directory for the demo's state (kept); default: a temporary "
            "one, removed at the end.",
            file_okay=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1024, max=65535, help="anvil's port (default: a free one)."),
    ] = None,
) -> None:
    """Play the whole story on a chain, database and data dir of its own: three hospitals
    ingest and register breast cancer data, sign grants for a drug maker, which pays for a DP
    mean, a cohort count and a secure logistic regression; receipts are verified, revenue is
    settled and a department claims. Your own data dir and chain are never touched."""
    from ledger.demo.story import run_demo
    from ledger.demo.summary import StepReport

    count = 0

    def show(report: StepReport) -> None:
        nonlocal count
        count += 1
        _console.print(
            f"\n[bold]{count}. {escape(report.title)}[/bold] [dim]({report.seconds:.1f} s)[/dim]"
        )
        for line in report.lines:
            _console.print(f"   {escape(line)}", soft_wrap=True)

    try:
        if as_json:
            summary = run_demo(data_dir, port=port)
        else:
            _console.print("[bold]The data rights and value ledger, end to end[/bold]")
            with _console.status("playing the story...", spinner="dots"):
                summary = run_demo(data_dir, progress=show, port=port)
    except LedgerError as exc:
        step = getattr(exc, "step", None)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if as_json:
            typer.echo(json.dumps({"ok": False, "step": step, "error": message}))
        _err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
        raise typer.Exit(1) from None
    data = summary.to_json()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _print_balances(data)
    where = f"state kept in {summary.data_dir}" if summary.kept else "temporary state removed"
    _console.print(
        f"\n[green]Done[/green] in {summary.seconds:.1f} s; the chain is stopped, {where}. "
        "Run with --json for the machine-readable summary."
    )


def _print_balances(data: dict[str, object]) -> None:
    from ledger.demo.summary import eth

    balances = data["balances"]
    assert isinstance(balances, dict)
    before, after = balances["before"], balances["after"]
    claim = data["claim"]
    assert isinstance(claim, dict)
    table = Table("account", "before", "after", "change", title="Balances (ETH)")
    rows: list[tuple[str, int, int]] = [
        ("drug maker", int(before["consumer"]), int(after["consumer"])),
        *(
            (f"owner {name}", int(value), int(after["owners"][name]))
            for name, value in before["owners"].items()
        ),
        (
            f"contributor {claim['contributor']}",
            int(before["contributor"]),
            int(after["contributor"]),
        ),
        ("RevenueVault", int(before["vault"]), int(after["vault"])),
    ]
    for label, old, new in rows:
        change = new - old
        table.add_row(label, eth(old), eth(new), ("+" if change > 0 else "") + eth(change))
    _console.print()
    _console.print(table)

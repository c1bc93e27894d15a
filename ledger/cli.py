"""The ``ledger`` command: every capability of the product from a terminal.

Commands print a readable account; ``--json`` prints machine-readable output for scripts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import ledger
from ledger.chain.anvil import default_anvil_path
from ledger.chain.artifacts import CONTRACT_NAMES, load_artifact, source_hash
from ledger.errors import LedgerError

__all__ = ["app"]

app = typer.Typer(
    name="ledger",
    help="A data rights and value ledger: share the value of data, never the data.",
    no_args_is_help=True,
    add_completion=False,
)

_console = Console()
_PROJECT_ROOT = Path(ledger.__file__).resolve().parent.parent

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command()
def version() -> None:
    """Print the ledger's version."""
    typer.echo(ledger.__version__)


@app.command()
def info(as_json: JsonOption = False) -> None:
    """Show the toolchain and the contract artifacts this installation ships (and if they are fresh)."""
    src = _PROJECT_ROOT / "contracts" / "src"
    current = source_hash(src) if src.is_dir() else None
    contracts: list[dict[str, Any]] = []
    for name in CONTRACT_NAMES:
        try:
            artifact = load_artifact(name)
        except LedgerError as exc:
            contracts.append({"name": name, "error": str(exc)})
            continue
        contracts.append(
            {
                "name": name,
                "runtime_bytes": (len(artifact.deployed_bytecode) - 2) // 2,
                "fresh": None if current is None else artifact.source_hash == current,
            }
        )
    anvil = default_anvil_path(_PROJECT_ROOT)
    summary = {
        "version": ledger.__version__,
        "anvil": str(anvil) if anvil.exists() else None,
        "node": shutil.which("node"),
        "contracts": contracts,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _console.print(f"[bold]ledger[/bold] {ledger.__version__}")
    _console.print(f"anvil: {summary['anvil'] or '[red]missing: run `make setup`[/red]'}")
    table = Table("contract", "runtime bytes", "artifact")
    for item in contracts:
        if "error" in item:
            table.add_row(item["name"], "-", f"[red]{item['error']}[/red]")
            continue
        state = {True: "fresh", False: "[red]stale: run `make compile`[/red]", None: "shipped"}
        table.add_row(item["name"], f"{item['runtime_bytes']:,}", state[item["fresh"]])
    _console.print(table)
    _console.print(
        "The service (embedded chain, indexer, API and console) is not built yet; "
        "see README.md for what exists today."
    )


def main() -> None:
    """Entry point of the ``ledger`` console script."""
    app()

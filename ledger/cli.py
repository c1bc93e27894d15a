"""The ``ledger`` command: every capability of the product from a terminal.

Commands print a readable account; ``--json`` prints machine-readable output for scripts.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import ledger
from api.cli import install as install_api
from ledger.compute.cli import algorithm_app
from ledger.demo.cli import install as install_demo
from ledger.errors import LedgerError
from ledger.indexer.cli import index_command
from ledger.jobs.cli import install as install_jobs
from ledger.provenance.cli import install as install_provenance
from ledger.registry.cli import install as install_registry
from ledger.settings import get_settings
from ledger.settlement.cli import install as install_settlement
from ledger.vault.cli import dataset_app

if TYPE_CHECKING:
    from ledger.chain.embedded import ChainStatus

__all__ = ["app"]

app = typer.Typer(
    name="ledger",
    help="A data rights and value ledger: share the value of data, never the data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
chain_app = typer.Typer(help="The embedded chain (anvil under the data dir).", no_args_is_help=True)
app.add_typer(chain_app, name="chain")
app.add_typer(dataset_app, name="dataset")
app.add_typer(algorithm_app, name="algorithm")
install_registry(dataset_app)
install_jobs(app)
install_provenance(app)
install_settlement(app)
install_demo(app)
install_api(app)

_console = Console()
_err_console = Console(stderr=True)
_PROJECT_ROOT = Path(ledger.__file__).resolve().parent.parent

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command()
def version() -> None:
    """Print the ledger's version."""
    typer.echo(ledger.__version__)


@app.command()
def info(as_json: JsonOption = False) -> None:
    """Show the toolchain and the shipped contract artifacts (and whether they are fresh)."""
    from ledger.chain.anvil import default_anvil_path
    from ledger.chain.artifacts import CONTRACT_NAMES, load_artifact, source_hash

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
    _console.print("Next: `ledger chain up`, `ledger deploy`, `ledger index --follow`.")


def _print_chain(status: ChainStatus, as_json: bool) -> None:
    data = {
        "running": status.running,
        "url": status.url,
        "pid": status.pid,
        "chain_id": status.chain_id,
        "block_number": status.block_number,
        "state_file": str(status.state_file),
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    elif status.running:
        _console.print(
            f"chain [green]up[/green] at {status.url} (chain id {status.chain_id}, "
            f"block {status.block_number}, pid {status.pid}); state in {status.state_file}"
        )
    else:
        _console.print("chain [yellow]down[/yellow]; start it with `ledger chain up`")


@chain_app.command("up")
def chain_up(as_json: JsonOption = False) -> None:
    """Start the embedded chain in the background (state kept under the data dir)."""
    from ledger.chain.embedded import EmbeddedChain

    _print_chain(EmbeddedChain(get_settings()).up(), as_json)


@chain_app.command("down")
def chain_down(as_json: JsonOption = False) -> None:
    """Stop the embedded chain; its state is written to disk first."""
    from ledger.chain.embedded import EmbeddedChain

    stopped = EmbeddedChain(get_settings()).down()
    if as_json:
        typer.echo(json.dumps({"stopped": stopped}))
    else:
        _console.print("chain stopped" if stopped else "chain was not running")


@chain_app.command("status")
def chain_status(as_json: JsonOption = False) -> None:
    """Show whether the embedded chain runs, its chain id and height."""
    from ledger.chain.embedded import EmbeddedChain

    _print_chain(EmbeddedChain(get_settings()).status(), as_json)


@app.command()
def deploy(
    redeploy: Annotated[
        bool, typer.Option("--redeploy", help="Deploy anew even if this chain has a deployment.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Deploy and wire the contracts (once per chain); writes deployments/<chainId>.json."""
    from ledger.chain.client import connect
    from ledger.chain.deploy import deploy as deploy_contracts
    from ledger.chain.deploy import manifest_path
    from ledger.chain.sender import SendPolicy, TxSender

    settings = get_settings()
    w3 = connect(settings)
    sender = TxSender(w3, settings.resolved_executor_key(), SendPolicy(settings.confirmations))
    deployment, sent = deploy_contracts(
        w3, sender, settings.resolved_deployments_dir, redeploy=redeploy
    )
    path = manifest_path(settings.resolved_deployments_dir, deployment.chain_id)
    if as_json:
        typer.echo(json.dumps({"changed": sent, "manifest": str(path)} | asdict(deployment)))
        return
    verb = "deployed" if sent else "already deployed, nothing sent"
    _console.print(f"chain {deployment.chain_id}: {verb}; manifest {path}")
    for name, address in deployment.addresses.items():
        _console.print(f"  {name:<13} {address}")


app.command(name="index")(index_command)


def main() -> None:
    """Entry point of the ``ledger`` console script: errors become one readable line."""
    try:
        app()
    except LedgerError as exc:
        _err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()

"""``ledger algorithm ...``: the algorithm catalog from a terminal (see ``ledger.cli``).

``list`` and ``show`` describe the templates (name, code hash, parameters, result shape),
``hash`` gives the code hash of a custom algorithm file (what a grant names), and ``run``
computes a template on a local Parquet directory for developers, against a throwaway budget.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["algorithm_app"]

algorithm_app = typer.Typer(
    help="Algorithms: the catalog of templates, custom code hashes.", no_args_is_help=True
)

_console = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@algorithm_app.command("list")
def list_command(as_json: JsonOption = False) -> None:
    """List the catalog's templates with their code hashes."""
    from ledger.compute.catalog import catalog, runtime_hash

    entries = list(catalog().values())
    if as_json:
        rows = [
            {
                "name": e.name,
                "hash": e.hash,
                "dp": e.dp,
                "multi_owner": e.multi_owner,
                "description": e.description,
            }
            for e in entries
        ]
        typer.echo(json.dumps({"runtime_hash": runtime_hash(), "templates": rows}, indent=2))
        return
    table = Table("name", "code hash", "DP", "datasets")
    table.columns[0].no_wrap = table.columns[1].no_wrap = True
    for e in entries:
        table.add_row(
            e.name, e.hash, "yes" if e.dp else "", "several (MPC)" if e.multi_owner else "one"
        )
    _console.print(table)
    _console.print("`ledger algorithm show NAME` describes a template's parameters and result.")
    _console.print(f"runtime hash {runtime_hash()}")


@algorithm_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Template name or code hash.")],
    as_json: JsonOption = False,
) -> None:
    """Show one template: hash, parameters (JSON schema) and result shape."""
    from ledger.compute.catalog import entry

    found = entry(name)
    data = found.to_json()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _console.print(f"[bold]{found.name}[/bold]  {found.hash}")
    _console.print(escape(found.description))
    _console.print(f"differentially private: {'yes' if found.dp else 'no'}")
    _console.print(f"datasets: {'several owners (MPC)' if found.multi_owner else 'one'}")
    _console.print("parameters:")
    _console.print_json(json.dumps(data["parameters"]))
    _console.print("result:")
    _console.print_json(json.dumps(data["result"]))


@algorithm_app.command("hash")
def hash_command(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A Python module.")
    ],
    as_json: JsonOption = False,
) -> None:
    """The code hash of a custom algorithm (keccak256 of its canonical bytes)."""
    from ledger.compute.catalog import code_hash

    digest = code_hash(file.read_bytes())
    if as_json:
        typer.echo(json.dumps({"file": str(file), "hash": digest}))
    else:
        typer.echo(digest)


@algorithm_app.command("run")
def run_command(
    name: Annotated[str, typer.Argument(help="Template name or code hash.")],
    data: Annotated[
        list[Path],
        typer.Option("--data", exists=True, file_okay=False, help="A Parquet data directory."),
    ],
    params: Annotated[str, typer.Option("--params", help="Parameters as a JSON object.")] = "{}",
    k: Annotated[int, typer.Option("--k", help="Suppression threshold.")] = 10,
    budget: Annotated[
        float, typer.Option("--budget", min=0, help="Epsilon of the throwaway budget.")
    ] = 10.0,
) -> None:
    """Compute a template on local Parquet directories (developers; the budget is not kept)."""
    from ledger.compute.backend import DatasetRef
    from ledger.compute.budget import BudgetLedger
    from ledger.compute.engine import ComputeEngine, ComputeRequest, GrantBudget
    from ledger.store.database import open_engine
    from ledger.store.migrate import upgrade

    try:
        parsed: Any = json.loads(params)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc.msg})", param_hint="--params") from None
    refs = [DatasetRef(i + 1, 1, path) for i, path in enumerate(data)]
    grants = [
        GrantBudget("0x" + f"{i + 1:064x}", ref.dataset_id, round(budget * 1_000_000))
        for i, ref in enumerate(refs)
    ]
    with tempfile.TemporaryDirectory(prefix="ledger-run-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'budget.db'}"
        upgrade(url)
        database = open_engine(url)
        try:
            result = ComputeEngine(budget=BudgetLedger(database)).run(
                ComputeRequest(name, parsed, refs, grants, k)
            )
        finally:
            database.dispose()
    out = asdict(result)
    out["epsilon_spent"] = [asdict(s) for s in result.epsilon_spent]
    typer.echo(json.dumps(out, indent=2))

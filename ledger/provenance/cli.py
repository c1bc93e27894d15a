"""``ledger verify`` and ``ledger provenance lineage|uses|export`` (installed by `install`).

``ledger verify RESULT RECEIPT --rpc URL`` needs nothing but a JSON-RPC endpoint: no settings,
no database, no service. Exit codes: 0 verified, 1 rejected (the reason is printed), 2 usage
error, 3 no verdict (the node could not be asked). The ``provenance`` commands read the event
index and the executor's receipts in the configured database (``LEDGER_DATABASE_URL``).

``python -m ledger.provenance.cli`` runs these commands on their own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledger.errors import LedgerError, RpcUnavailableError
from ledger.settings import get_settings

if TYPE_CHECKING:
    from sqlmodel import Session

__all__ = ["install", "provenance_app", "verify_command"]

EXIT_REJECTED: Final = 1
EXIT_NO_VERDICT: Final = 3
_RPC_TIMEOUT: Final = 10.0

_console = Console()
_err_console = Console(stderr=True)

provenance_app = typer.Typer(
    help="Provenance: lineage of jobs and results, uses of datasets, W3C PROV export.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def install(app: typer.Typer) -> None:
    """Add ``verify`` and the ``provenance`` group to the ``ledger`` command."""
    app.command(name="verify")(verify_command)
    app.add_typer(provenance_app, name="provenance")


def verify_command(
    result: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="The released result (JSON)."
        ),
    ],
    receipt: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="The signed receipt."),
    ],
    rpc: Annotated[
        str, typer.Option("--rpc", help="JSON-RPC endpoint of the chain (http or https).")
    ],
    from_block: Annotated[
        int,
        typer.Option(
            "--from-block", min=0, help="First block to search events in (the deployment's)."
        ),
    ] = 0,
    usage_ledger: Annotated[
        str | None,
        typer.Option(
            "--usage-ledger",
            help="The UsageLedger address you trust (the platform's published deployment); a "
            "receipt naming another is rejected. Without it, only the receipt's own is checked.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a result and its receipt against the chain, using only a JSON-RPC endpoint:
    the result hash, the executor's signature, the chain and contracts, and the on-chain
    record or batch inclusion. Exit 0 verified, 1 rejected, 3 the node could not be asked."""
    if not rpc.startswith(("http://", "https://")):
        raise typer.BadParameter("must be an http:// or https:// URL", param_hint="--rpc")
    if usage_ledger is not None and not re.fullmatch(r"0x[0-9a-fA-F]{40}", usage_ledger):
        raise typer.BadParameter(
            "must be a 0x-prefixed 20-byte address", param_hint="--usage-ledger"
        )
    from web3 import Web3

    from ledger.provenance.verify import verify_result

    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": _RPC_TIMEOUT}))
    try:
        verdict = verify_result(
            result.read_bytes(),
            receipt.read_bytes(),
            w3,
            from_block=from_block,
            usage_ledger=usage_ledger,
        )
    except RpcUnavailableError as exc:
        if as_json:
            typer.echo(json.dumps({"verified": None, "error": str(exc)}))
        else:
            _err_console.print(f"[red]no verdict:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_NO_VERDICT) from None
    if as_json:
        typer.echo(json.dumps(verdict.to_json(), indent=2))
    elif verdict.verified:
        _console.print(f"[green]VERIFIED[/green] {escape(verdict.message)}", soft_wrap=True)
    else:
        reason = verdict.reason.value if verdict.reason else "rejected"
        _console.print(f"[red]REJECTED[/red] ({reason}): {escape(verdict.message)}", soft_wrap=True)
    if not verdict.verified:
        raise typer.Exit(EXIT_REJECTED)


@provenance_app.command("lineage")
def lineage_command(
    key: Annotated[str, typer.Argument(help="A job id, receipt hash or result hash (0x hex).")],
    as_json: JsonOption = False,
) -> None:
    """Show where a job's result came from: dataset versions, grants, algorithm, job, result."""
    from ledger.provenance.lineage import lineage

    with _session() as session:
        found = lineage(session, key)
    if as_json:
        typer.echo(json.dumps(found.to_json(), indent=2))
        return
    data = found.to_json()
    _console.print(f"[bold]job[/bold] {found.job_id}")
    for label in (
        "executor",
        "consumer",
        "purpose",
        "algorithm_hash",
        "receipt_hash",
        "result_hash",
        "parameters_hash",
        "runtime_hash",
        "requested_at",
        "completed_at",
        "batch_root",
    ):
        if data.get(label) is not None:
            _console.print(f"  {label:<16} {data[label]}")
    if found.recorded is not None:
        _console.print(f"  {'recorded':<16} block {found.recorded.block_number}")
    table = Table("dataset", "version", "commitment", "owner", "grant", "uses", "micro-epsilon")
    for node, grant in zip(found.datasets, found.grants, strict=True):
        table.add_row(
            str(node.dataset_id),
            str(node.version),
            node.commitment or "-",
            node.owner or "-",
            grant.grant_id,
            str(grant.uses if grant.uses is not None else "-"),
            str(grant.epsilon if grant.epsilon is not None else "-"),
        )
    _console.print(table)


@provenance_app.command("uses")
def uses_command(
    dataset_id: Annotated[int, typer.Argument(min=1, help="The dataset id.")],
    as_json: JsonOption = False,
) -> None:
    """List every recorded use of a dataset: who, purpose, when, privacy spent, revenue."""
    from ledger.provenance.lineage import dataset_uses

    with _session() as session:
        uses = dataset_uses(session, dataset_id)
    if as_json:
        typer.echo(json.dumps([use.to_json() for use in uses], indent=2))
        return
    table = Table("when", "job", "consumer", "purpose", "micro-epsilon", "price", "revenue")
    for use in uses:
        table.add_row(
            use.when.isoformat(),
            use.job_id,
            use.consumer or "-",
            use.purpose or "-",
            str(use.epsilon),
            str(use.price),
            str(use.revenue),
        )
    _console.print(table)
    _console.print(f"{len(uses)} use(s) of dataset {dataset_id}")


@provenance_app.command("export")
def export_command(
    key: Annotated[str, typer.Argument(help="A job id, receipt hash or result hash (0x hex).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Export a job's lineage as W3C PROV-JSON."""
    from ledger.provenance.lineage import lineage
    from ledger.provenance.prov_export import prov_json

    with _session() as session:
        text = prov_json(lineage(session, key))
    if out is None:
        typer.echo(text)
        return
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(out)
    _console.print(f"PROV-JSON written to {out}")


@contextmanager
def _session() -> Iterator[Session]:
    # Imported here: `verify` needs no database code (a third party's start-up time).
    from sqlmodel import Session

    from ledger.store.database import open_engine
    from ledger.store.migrate import upgrade

    url = get_settings().resolved_database_url
    upgrade(url)
    engine = open_engine(url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def _standalone() -> None:
    app = typer.Typer(
        name="ledger", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )
    install(app)
    try:
        app()
    except LedgerError as exc:
        _err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    _standalone()

"""``ledger dataset ...``: the vault and the registry from a terminal (see ``ledger.cli``).

Output never carries a cell value of the input: reports list line numbers and columns,
proofs carry one row's canonical (hashed) values, contributor listings carry pseudonyms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ledger.settings import get_settings

if TYPE_CHECKING:
    from ledger.vault.store import Vault

__all__ = ["dataset_app"]

dataset_app = typer.Typer(
    help="Datasets: ingest into the vault, prove a record, register and version on chain, search.",
    no_args_is_help=True,
)

_console = Console()
_err_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
OwnerOption = Annotated[
    str | None,
    typer.Option("--owner", help="Owner address of the vault (default: LEDGER_OWNER_KEY's)."),
]
VersionOption = Annotated[
    int | None, typer.Option("--version", "-v", min=1, help="Version (default: the latest).")
]


def _vault(owner: str | None) -> Vault:
    from eth_utils.address import is_address

    from ledger.vault.store import Vault

    if owner is not None and not is_address(owner):
        raise typer.BadParameter("must be a 0x-prefixed 20-byte address", param_hint="--owner")
    return Vault.for_owner(get_settings(), owner)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True))


@dataset_app.command("ingest")
def ingest_command(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file to ingest.")],
    schema: Annotated[Path, typer.Option("--schema", help="Schema YAML file.")],
    name: Annotated[str, typer.Option("--name", help="Dataset name ([a-z0-9][a-z0-9_-]*).")],
    on_error: Annotated[
        str,
        typer.Option(
            "--on-error",
            help="reject: write nothing if any row is bad; quarantine: drop bad rows.",
        ),
    ] = "reject",
    payouts: Annotated[
        Path | None,
        typer.Option("--payouts", help="CSV contributor,address (raw contributor values)."),
    ] = None,
    owner: OwnerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate, de-identify and commit FILE as the next version of dataset NAME."""
    from ledger.vault.errors import ValidationFailedError
    from ledger.vault.ingest import ingest
    from ledger.vault.schema import load_schema

    if on_error not in ("reject", "quarantine"):
        raise typer.BadParameter("must be reject or quarantine", param_hint="--on-error")
    parsed = load_schema(schema)
    vault = _vault(owner)
    with Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=_err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("ingest", total=None, rows=0)

        def progress(rows: int, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, rows=rows)

        try:
            manifest = ingest(
                vault,
                file,
                parsed,
                name,
                on_error="quarantine" if on_error == "quarantine" else "reject",
                payouts=payouts,
                progress=progress,
            )
        except ValidationFailedError as exc:
            if as_json:
                _print_json({"error": str(exc), "report": exc.report})
                raise SystemExit(1) from None
            _print_report(exc.report, _err_console)
            raise
    if as_json:
        report = json.loads((vault.version_dir(name, manifest.version) / "report.json").read_text())
        _print_json({"manifest": manifest.to_json(), "report": report})
        return
    _console.print(
        f"dataset [bold]{escape(name)}[/bold] v{manifest.version}: {manifest.row_count:,} rows "
        f"committed\n  commitment        {manifest.commitment}\n"
        f"  contributors root {manifest.contributors_root}\n"
        f"  schema hash       {manifest.schema_hash}\n"
        f"  previous          {manifest.previous_commitment or '-'}\n"
        f"  stored in         {vault.version_dir(name, manifest.version)}"
    )
    if manifest.validation.get("rows_rejected"):
        report = json.loads((vault.version_dir(name, manifest.version) / "report.json").read_text())
        _print_report(report, _console)


def _print_report(report: dict[str, Any], console: Console) -> None:
    counts = report.get("counts", {})
    console.print(
        f"validation: {report.get('rows_read', 0):,} rows read, "
        f"{report.get('rows_rejected', 0):,} rejected ({report.get('on_error')})"
    )
    table = Table("rule", "rows")
    for rule, count in counts.items():
        table.add_row(rule, f"{count:,}")
    console.print(table)
    offending = report.get("offending", [])
    if offending:
        first = Table("line", "column", "rule", title="first offending rows")
        for entry in offending[:20]:
            first.add_row(str(entry["line"]), escape(entry["column"]), entry["rule"])
        console.print(first)


@dataset_app.command("prove")
def prove_command(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    row: Annotated[
        int | None, typer.Argument(help="Row index (0-based, the _row column).", min=0)
    ] = None,
    record: Annotated[
        str | None, typer.Option("--record", help="Prove the row with this record id instead.")
    ] = None,
    version: VersionOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the proof here.")] = None,
    owner: OwnerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print an inclusion proof of one row: its own canonical values, proof and root."""
    from ledger.vault.prove import find_record, prove

    if (row is None) == (record is None):
        raise typer.BadParameter("give either ROW or --record", param_hint="ROW")
    vault = _vault(owner)
    number = vault.resolve_version(name, version)
    index = row if row is not None else find_record(vault, name, number, str(record))
    proof = prove(vault, name, number, index)
    document = proof.to_json()
    if out is not None:
        out.write_text(json.dumps(document, indent=2) + "\n")
    if as_json:
        _print_json(document)
        return
    _console.print(f"dataset {escape(name)} v{number} row {index}: root {proof.root}")
    table = Table("field", "ABI type", "value")
    for column, abi_type, value in zip(
        proof.columns, proof.leaf_encoding, proof.values, strict=True
    ):
        table.add_row(escape(column), abi_type, escape(str(value)))
    _console.print(table)
    _console.print(f"leaf  {proof.leaf}\nproof ({len(proof.proof)} hashes):")
    for sibling in proof.proof:
        _console.print(f"  {sibling}")


@dataset_app.command("verify-proof")
def verify_proof_command(
    file: Annotated[Path, typer.Argument(help="A proof written by `ledger dataset prove --json`.")],
    root: Annotated[
        str | None, typer.Option("--root", help="Root to check against (e.g. from the chain).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a row proof offline; exits 1 when it does not verify."""
    from ledger.vault.errors import ProofError
    from ledger.vault.prove import RowProof, verify_row_proof

    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        raise ProofError("(file)", f"{file.name} is not a readable JSON document") from None
    proof = RowProof.from_json(data)
    ok = verify_row_proof(proof, root)
    checked = root or proof.root
    if as_json:
        _print_json({"valid": ok, "root": checked, "dataset": proof.dataset, "row": proof.row})
    else:
        verdict = "[green]valid[/green]" if ok else "[red]INVALID[/red]"
        _console.print(
            f"{verdict}: row {proof.row} of {escape(proof.dataset)} v{proof.version} "
            f"under root {checked}"
        )
    if not ok:
        raise SystemExit(1)


@dataset_app.command("contributors")
def contributors_command(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    version: VersionOption = None,
    owner: OwnerOption = None,
    as_json: JsonOption = False,
) -> None:
    """List a version's contributors: pseudonym, kind, rows, payout address."""
    from ledger.vault.contributors import load_contributors
    from ledger.vault.manifest import Manifest

    vault = _vault(owner)
    number = vault.resolve_version(name, version)
    entries = load_contributors(vault, name, number)
    manifest = Manifest.load(vault.version_dir(name, number) / "manifest.json")
    if as_json:
        _print_json(
            {
                "dataset": name,
                "version": number,
                "contributors_root": manifest.contributors_root,
                "contributors": [e.to_json() for e in entries],
            }
        )
        return
    table = Table("contributor", "kind", "rows", "payout", title=f"{name} v{number}")
    for entry in entries:
        table.add_row(entry.contributor_id, entry.kind, f"{entry.rows:,}", entry.payout or "-")
    _console.print(table)
    _console.print(f"contributors root {manifest.contributors_root}")


@dataset_app.command("list")
def list_command(owner: OwnerOption = None, as_json: JsonOption = False) -> None:
    """List the datasets in the vault with their versions, rows and commitments."""
    from ledger.vault.manifest import Manifest

    vault = _vault(owner)
    rows: list[dict[str, Any]] = []
    for name in vault.names():
        for number in vault.versions(name):
            m = Manifest.load(vault.version_dir(name, number) / "manifest.json")
            rows.append(
                {
                    "name": name,
                    "version": number,
                    "rows": m.row_count,
                    "commitment": m.commitment,
                    "schema_hash": m.schema_hash,
                    "created_at": m.created_at,
                }
            )
    if as_json:
        _print_json({"owner": vault.owner, "datasets": rows})
        return
    table = Table("name", "version", "rows", "commitment", "created", title=f"vault {vault.owner}")
    for r in rows:
        table.add_row(
            r["name"], str(r["version"]), f"{r['rows']:,}", r["commitment"], r["created_at"]
        )
    _console.print(table)

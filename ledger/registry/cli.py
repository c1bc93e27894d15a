"""``ledger dataset register|version|search|show``: the registry and the catalog from a terminal.

`install` adds the commands to the ``dataset`` group (``ledger.vault.cli.dataset_app``). The
library (`ledger.registry.register`, `ledger.registry.catalog`) never prints; this module does.
Errors are `LedgerError`s, which ``ledger.cli.main`` prints as one line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledger.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ledger.registry.catalog import DatasetDetail, SearchPage
    from ledger.registry.register import VersionResult

#: `ledger.registry.catalog.MAX_LIMIT` and `ledger.registry.register.DEFAULT_OWNER_SHARE_BPS`,
#: written out so that building the commands' help does not import the registry (web3,
#: SQLAlchemy); tests/unit/test_cli_startup.py checks that they agree.
MAX_LIMIT: Final = 100
DEFAULT_OWNER_SHARE_BPS: Final = 7_000

__all__ = ["install"]

_console = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def install(app: typer.Typer) -> None:
    """Add ``register``, ``version``, ``executor``, ``search`` and ``show`` to the ``dataset``
    group `app`."""
    app.command("register")(register_command)
    app.command("version")(version_command)
    app.command("search")(search_command)
    app.command("show")(show_command)
    app.command("executor")(executor_command)


def register_command(
    name: Annotated[str, typer.Argument(help="Dataset name in the owner's vault.")],
    metadata: Annotated[
        Path,
        typer.Option(
            "--metadata", help="FAIR metadata (YAML or JSON): title, description, keywords, ..."
        ),
    ],
    version: Annotated[
        int, typer.Option("--version", help="Vault version to register (1; later: `version`).")
    ] = 1,
    owner_share: Annotated[
        int,
        typer.Option(
            "--owner-share",
            help="Owner's revenue share in basis points (0..10000); the rest "
            "goes to the contributors.",
        ),
    ] = DEFAULT_OWNER_SHARE_BPS,
    as_json: JsonOption = False,
) -> None:
    """Register a vault dataset in DataRegistry (version 1) with its FAIR metadata; a second
    run finds the registration and sends nothing."""
    from ledger.registry.register import open_registry, register

    with open_registry(get_settings()) as ctx:
        result = register(ctx, name, metadata, version=version, owner_share_bps=owner_share)
    if as_json:
        typer.echo(json.dumps(_plain(result)))
        return
    _print_results([result])


def version_command(
    name: Annotated[str, typer.Argument(help="Dataset name in the owner's vault.")],
    version: Annotated[
        int | None,
        typer.Option("--version", help="Publish up to this vault version (default: the latest)."),
    ] = None,
    metadata: Annotated[
        Path | None,
        typer.Option("--metadata", help="New FAIR metadata (default: the previous version's)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Publish the vault's later versions of a registered dataset, each linking the one before
    (--json prints a list: versions already on chain too, with sent false)."""
    from ledger.registry.register import open_registry, publish_versions

    with open_registry(get_settings()) as ctx:
        results = publish_versions(ctx, name, up_to=version, metadata=metadata)
    if as_json:
        typer.echo(json.dumps(_plain(results)))
        return
    _print_results(results)


def executor_command(
    dataset_id: Annotated[int, typer.Argument(help="Dataset id on chain.", min=1)],
    executor: Annotated[
        str | None,
        typer.Argument(help="Executor address (default: this service's, LEDGER_EXECUTOR_KEY)."),
    ] = None,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Disallow the executor instead of allowing it.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Allow an executor (a compute service's key) to record jobs on a dataset you own, or
    disallow it with --revoke; nothing is sent when the chain already says so."""
    from eth_account import Account

    from ledger.registry.executors import set_executor
    from ledger.registry.register import open_registry

    settings = get_settings()
    if executor is None:
        executor = Account.from_key(settings.resolved_executor_key()).address
    with open_registry(settings) as ctx:
        approval = set_executor(ctx, dataset_id, executor, allowed=not revoke)
    if as_json:
        typer.echo(json.dumps(_plain(approval)))
        return
    verb = "allowed" if approval.allowed else "disallowed"
    sent = f"tx {approval.tx_hash}" if approval.tx_hash else "already so; nothing sent"
    _console.print(f"executor {approval.executor} {verb} on dataset {approval.dataset_id} ({sent})")


def search_command(
    query: Annotated[
        str | None, typer.Argument(help="Words to find in title, description or keywords.")
    ] = None,
    license: Annotated[
        str | None, typer.Option("--license", help="Only this SPDX license, e.g. CC-BY-4.0.")
    ] = None,
    keyword: Annotated[
        str | None, typer.Option("--keyword", help="Only with this keyword.")
    ] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's.")] = None,
    limit: Annotated[int, typer.Option("--limit", help=f"Hits per page (1..{MAX_LIMIT}).")] = 20,
    offset: Annotated[int, typer.Option("--offset", help="Hits to skip.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Search the catalog of indexed datasets (metadata only, never rows)."""
    from ledger.registry.catalog import search_datasets

    with _catalog() as engine:
        page = search_datasets(
            engine,
            query,
            license=license,
            keyword=keyword,
            owner=owner,
            limit=limit,
            offset=offset,
        )
    _print_page(page, as_json)


def show_command(
    dataset_id: Annotated[int, typer.Argument(help="Dataset id (the data asset's token id).")],
    as_json: JsonOption = False,
) -> None:
    """Show a dataset: metadata, schema, versions, owner and use recorded on chain."""
    from ledger.registry.catalog import dataset_detail

    with _catalog() as engine:
        detail = dataset_detail(engine, dataset_id)
    _print_detail(detail, as_json)


@contextmanager
def _catalog() -> Iterator[Engine]:
    from ledger.store.database import open_engine
    from ledger.store.migrate import upgrade

    url = get_settings().resolved_database_url
    upgrade(url)
    engine = open_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def _plain(value: Any) -> Any:
    from ledger.registry.metadata import MetadataDocument

    if isinstance(value, MetadataDocument):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        return str(value)  # beyond what JSON readers hold exactly
    return value


def _print_results(results: list[VersionResult]) -> None:
    for r in results:
        verb = "registered" if r.version == 1 else "published"
        state = f"[green]{verb}[/green]" if r.sent else f"already {verb}, nothing sent"
        _console.print(
            f"dataset {r.dataset_id} [bold]{escape(r.name)}[/bold] version {r.version}: {state} "
            f"(tx {r.tx_hash}, block {r.block_number})"
        )
        _console.print(f"  commitment {r.commitment}\n  metadata   {escape(r.metadata_uri)}")
    if results:
        _console.print("Next: `ledger index` to update the catalog, then `ledger dataset search`.")


def _print_page(page: SearchPage, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_plain(page)))
        return
    if not page.items:
        _console.print(f"no dataset matches ({page.total} in all); try fewer words or filters")
        return
    table = Table("id", "title", "license", "keywords", "records", "version", "owner")
    for item in page.items:
        table.add_row(
            str(item.dataset_id),
            escape(item.title or "(no metadata in this catalog)"),
            escape(item.license or "-"),
            escape(", ".join(item.keywords)),
            "-" if item.record_count is None else f"~{item.record_count:,}",
            str(item.version),
            item.owner,
        )
    _console.print(table)
    last = page.offset + len(page.items)
    more = f"; next page: --offset {last}" if last < page.total else ""
    _console.print(f"{page.offset + 1}-{last} of {page.total}{more}")


def _print_detail(detail: DatasetDetail, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_plain(detail)))
        return
    meta = detail.metadata
    title = meta.title if meta else "(no metadata document in this catalog)"
    _console.print(f"[bold]dataset {detail.dataset_id}: {escape(title)}[/bold]")
    _console.print(
        f"owner {detail.owner} (epoch {detail.owner_epoch}), owner share "
        f"{detail.owner_share_bps / 100:g}%, version {detail.version}, registered in block "
        f"{detail.registered_block} at {detail.registered_at:%Y-%m-%d %H:%M} UTC"
    )
    if meta:
        coverage = meta.temporal_coverage
        _console.print(escape(meta.description))
        _console.print(
            f"license {meta.license}; publisher {escape(meta.publisher)}; keywords "
            f"{escape(', '.join(meta.keywords))}; covers {coverage.start} to {coverage.end}"
        )
        _console.print(
            f"about {meta.record_count:,} records from about {meta.contributor_count:,} "
            "contributors (rounded)"
        )
        columns = Table("column", "type", "unit", title="schema (kept columns)")
        for column in meta.columns:
            columns.add_row(escape(column.name), escape(column.type), escape(column.unit or "-"))
        _console.print(columns)
    versions = Table("version", "commitment", "schema hash", "block", "tx", title="versions")
    for v in detail.versions:
        versions.add_row(
            str(v.version), v.commitment, v.schema_hash, str(v.block_number), v.tx_hash
        )
    _console.print(versions)
    usage = detail.usage
    revenue = ", ".join(f"{amount:,} of {token}" for token, amount in usage.revenue.items())
    _console.print(
        f"use on chain: {usage.jobs:,} job(s), {usage.uses:,} use(s), epsilon spent "
        f"{usage.epsilon_micro / 1_000_000:g}, revenue {revenue or 'none'}"
    )

"""``ledger settle ...`` and ``ledger claim``: settlement from a terminal (installed into the
``ledger`` app by `install`). The library (`ledger.settlement.service`) never prints; this does."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from ledger.errors import SettingsError
from ledger.settings import Settings, get_settings
from ledger.settlement.errors import SettlementError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ledger.settlement.allocation import AuthorShare
    from ledger.settlement.results import EpochOutcome
    from ledger.settlement.service import Settlement

#: `ledger.settlement.service.ETH` (the zero address), written out so that building the
#: commands' help does not import the settlement service; tests/unit/test_cli_startup.py
#: checks that the two agree.
ETH: Final = "0x" + "00" * 20

__all__ = ["install", "load_authors"]

_console = Console()

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
TokenOption = Annotated[
    str, typer.Option("--token", help="Payment token address (0x00..00 = ETH).")
]


class AuthorsFileError(SettlementError, ValueError):
    """Raised when the algorithm authors file is malformed; names the entry and the rule."""

    def __init__(self, path: Path, entry: str, rule: str) -> None:
        self.path = path
        self.entry = entry
        self.rule = rule
        super().__init__(f"authors file {path}: {entry} {rule}")


def load_authors(path: Path) -> dict[str, AuthorShare]:
    """Read ``{"0x<algorithm hash>": {"author": "0x<address>", "bps": 500}, ...}``.

    Raises:
        AuthorsFileError: the file is unreadable, or an entry is malformed (named).
    """
    from ledger.settlement.allocation import AuthorShare
    from ledger.settlement.results import checked_address

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AuthorsFileError(
            path, "file", f"must be readable JSON ({type(exc).__name__})"
        ) from None
    if not isinstance(data, dict):
        raise AuthorsFileError(path, "file", "must be a JSON object of algorithm hash: entry")
    authors: dict[str, AuthorShare] = {}
    for key, entry in data.items():
        name = f"entry {str(key)[:70]!r}"
        if not isinstance(key, str) or len(key) != 66 or not key.startswith("0x"):
            raise AuthorsFileError(path, name, "key must be an algorithm hash (0x + 64 hex)")
        if not isinstance(entry, dict):
            raise AuthorsFileError(path, name, "must be an object with author and bps")
        bps = entry.get("bps")
        if type(bps) is not int or not 0 <= bps <= 10_000:
            raise AuthorsFileError(path, name, "bps must be an integer in [0, 10000]")
        try:
            author = checked_address(entry.get("author", ""), "author")
        except ValueError:
            raise AuthorsFileError(path, name, "author must be an address") from None
        authors[key.lower()] = AuthorShare(author, bps)
    return authors


@dataclass
class _Context:
    settings: Settings
    engine: Engine
    service: Settlement


@contextmanager
def _open(
    *, sender_key: str | None = None, authors: Path | None = None, index: bool = False
) -> Iterator[_Context]:
    from ledger.chain.client import connect
    from ledger.chain.deploy import load_deployment
    from ledger.chain.sender import SendPolicy, TxSender
    from ledger.indexer.service import Indexer, IndexerOptions
    from ledger.settlement.service import Settlement
    from ledger.settlement.vaults import VaultIndex
    from ledger.store.database import open_engine
    from ledger.store.migrate import upgrade

    settings = get_settings()
    w3 = connect(settings)
    deployment = load_deployment(settings.resolved_deployments_dir, w3.eth.chain_id)
    url = settings.resolved_database_url
    upgrade(url)
    engine = open_engine(url)
    try:
        if index:
            options = IndexerOptions(confirmations=settings.confirmations)
            Indexer(w3, deployment, engine, options=options).run_once()
        sender = (
            TxSender(w3, sender_key, SendPolicy(settings.confirmations)) if sender_key else None
        )
        service = Settlement(
            w3,
            deployment,
            engine,
            vaults=VaultIndex(
                settings.data_dir,
                chain_id=deployment.chain_id,
                registry=deployment.addresses.get("DataRegistry"),
            ),
            out_dir=settings.data_dir / "settlement" / str(deployment.chain_id),
            sender=sender,
            confirmations=settings.confirmations,
            authors=load_authors(authors) if authors else None,
        )
        yield _Context(settings, engine, service)
    finally:
        engine.dispose()


def _key_from(variable: str | None, default: str) -> str:
    if variable is None:
        return default
    value = os.environ.get(variable)
    if not value:
        raise SettingsError(variable, "is not set (it must hold the private key to sign with)")
    return value


def _print_outcomes(outcomes: list[EpochOutcome], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([o.as_dict() for o in outcomes], indent=2))
        return
    if not outcomes:
        _console.print("nothing new to settle: no final captured revenue since the last epoch")
        return
    for o in outcomes:
        verb = {True: "published", False: "already published"}[o.sent]
        if o.status == "dry-run":
            verb = "computed (dry run, nothing stored or sent)"
        _console.print(
            f"token {o.token} epoch {o.epoch} (blocks {o.from_block}-{o.to_block}): {verb}; "
            f"root {o.root}, total {o.total:,} to {o.accounts:,} accounts, "
            f"{o.held_total:,} held for contributors without a payout address"
        )


def run_command(
    tokens: Annotated[
        list[str] | None,
        typer.Option("--token", help="Token to settle (repeatable); default: every token."),
    ] = None,
    epoch: Annotated[
        int | None, typer.Option("--epoch", min=1, help="The epoch to create or finish.")
    ] = None,
    from_block: Annotated[
        int | None, typer.Option("--from-block", min=0, help="Check: the epoch's first block.")
    ] = None,
    to_block: Annotated[
        int | None, typer.Option("--to-block", min=0, help="Last block (default: last final).")
    ] = None,
    authors: Annotated[
        Path | None,
        typer.Option("--authors", help="JSON: algorithm hash -> {author, bps}.", exists=True),
    ] = None,
    settler_key_env: Annotated[
        str | None,
        typer.Option("--key-env", help="Variable holding the settler key (default: executor)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Compute and show; store and send nothing.")
    ] = False,
    no_index: Annotated[
        bool, typer.Option("--no-index", help="Do not bring the index up to date first.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Settle captured revenue: compute the next epoch per token from the index and the
    vaults' weights, store it, publish its root on RevenueVault, and write its report."""
    from ledger.settlement.reports import write_report
    from ledger.settlement.results import checked_address

    settings = get_settings()
    key = _key_from(settler_key_env, settings.resolved_executor_key())
    if (epoch is not None or from_block is not None) and (not tokens or len(tokens) != 1):
        raise typer.BadParameter("--epoch and --from-block need exactly one --token")
    with _open(sender_key=key, authors=authors, index=not no_index) as ctx:
        chosen = [checked_address(t, "--token") for t in tokens] if tokens else None
        outcomes: list[EpochOutcome] = []
        for token in chosen or ctx.service.tokens(to_block):
            outcomes += ctx.service.run(
                token, epoch=epoch, from_block=from_block, to_block=to_block, dry_run=dry_run
            )
        for outcome in outcomes:
            if outcome.status != "dry-run":
                write_report(
                    ctx.engine,
                    outcome.token,
                    outcome.epoch,
                    Path(outcome.tree_file).parent,
                )
    _print_outcomes(outcomes, as_json)


def tree_command(
    file: Annotated[Path, typer.Argument(help="CSV with columns address,amount.", exists=True)],
    out: Annotated[
        Path | None, typer.Option("--out", help="Dump path (default: FILE with .tree.json).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build the entitlement tree of an address,amount CSV: print the root, write the
    OpenZeppelin dump (.tree.json), every proof (.tree.proofs.json) and the nodes."""
    from ledger.settlement.trees import build_tree, read_tree_csv, write_tree

    entitlements = read_tree_csv(file)
    tree, _ = build_tree(entitlements)
    files = write_tree(tree, out or file.with_suffix(".tree.json"))
    result = {
        "root": tree.root,
        "accounts": len(tree),
        "total": str(sum(entitlements.values())),
        "dump": str(files.dump),
        "proofs": str(files.proofs),
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(tree.root)
    _console.print(
        f"{len(tree):,} accounts, total {sum(entitlements.values()):,}; dump {files.dump}, "
        f"proofs {files.proofs}"
    )


def verify_command(
    epoch: Annotated[int, typer.Argument(min=1, help="Epoch to recompute.")],
    token: TokenOption = ETH,
    as_json: JsonOption = False,
) -> None:
    """Recompute an epoch from the index and the vaults' weights and compare its root with the
    stored and the published one; exits 1 on a mismatch."""
    from ledger.settlement.results import checked_address

    with _open() as ctx:
        report = ctx.service.verify(checked_address(token, "--token"), epoch)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    elif report.ok:
        _console.print(f"epoch {epoch} of {report.token}: OK, root {report.recomputed_root}")
    else:
        _console.print(
            f"[red]epoch {epoch} of {report.token}: MISMATCH[/red]: recomputed "
            f"{report.recomputed_root}, stored {report.stored_root}, published "
            f"{report.published_root or '(not published)'}"
        )
        for diff in report.differences:
            _console.print(
                f"  {diff['account']}: stored {diff['stored']}, recomputed {diff['recomputed']}"
            )
    if not report.ok:
        raise typer.Exit(1)


def report_command(
    epoch: Annotated[int, typer.Argument(min=1, help="Epoch to report on.")],
    token: TokenOption = ETH,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory (default: the epoch's tree dir).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write an epoch's report: CSV of entitlements, JSON summary, PNG chart."""
    from ledger.settlement.reports import write_report
    from ledger.settlement.results import checked_address

    with _open() as ctx:
        row = ctx.service.epoch(checked_address(token, "--token"), epoch)
        files = write_report(ctx.engine, row.token, epoch, out or Path(row.tree_file).parent)
    paths = {"csv": str(files.csv), "json": str(files.json), "png": str(files.png)}
    if as_json:
        typer.echo(json.dumps(paths, indent=2))
    else:
        _console.print(f"report of epoch {epoch}: {files.csv}, {files.json}, {files.png}")


def proof_command(
    address: Annotated[str, typer.Argument(help="The account to prove.")],
    token: TokenOption = ETH,
    as_json: JsonOption = False,
) -> None:
    """Show an account's cumulative entitlement, what it claimed, and its Merkle proof."""
    with _open() as ctx:
        proof = ctx.service.proof(token, address)
    if as_json:
        typer.echo(json.dumps(proof.as_dict(), indent=2))
        return
    table = Table("field", "value")
    for name, value in proof.as_dict().items():
        table.add_row(name, "\n".join(value) if isinstance(value, list) else str(value))
    _console.print(table)


def claim_command(
    token: TokenOption = ETH,
    account: Annotated[
        str | None, typer.Option("--account", help="Who is paid (default: the key's address).")
    ] = None,
    key_env: Annotated[
        str | None,
        typer.Option("--key-env", help="Variable holding the sending key (default: owner key)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Claim what an account is due in a token (anyone may send; the account is paid)."""
    from eth_account import Account

    from ledger.chain.sender import SendPolicy, TxSender

    settings = get_settings()
    key = _key_from(key_env, settings.resolved_owner_key())
    who = account or Account.from_key(key).address
    with _open() as ctx:
        sender = TxSender(ctx.service.w3, key, SendPolicy(settings.confirmations))
        outcome = ctx.service.claim(token, who, sender)
    data: dict[str, Any] = {
        "token": outcome.token,
        "account": outcome.account,
        "amount": str(outcome.amount),
        "cumulative": str(outcome.cumulative),
        "tx_hash": outcome.tx_hash,
    }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _console.print(
            f"claimed {outcome.amount:,} base units for {outcome.account} "
            f"(cumulative {outcome.cumulative:,}); tx {outcome.tx_hash}"
        )


def install(app: typer.Typer) -> None:
    """Add the ``settle`` group (run, tree, verify, report, proof) and ``claim`` to `app`."""
    settle = typer.Typer(
        help="Settlement: revenue to contributors in Merkle epochs.", no_args_is_help=True
    )
    settle.command("run")(run_command)
    settle.command("tree")(tree_command)
    settle.command("verify")(verify_command)
    settle.command("report")(report_command)
    settle.command("proof")(proof_command)
    app.add_typer(settle, name="settle")
    app.command("claim")(claim_command)

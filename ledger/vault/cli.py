"""``ledger dataset ...``: the vault and the registry from a terminal (see ``ledger.cli``)."""

from __future__ import annotations

import typer

__all__ = ["dataset_app"]

dataset_app = typer.Typer(
    help="Datasets: ingest into the vault, prove a record, register and version on chain, search.",
    no_args_is_help=True,
)

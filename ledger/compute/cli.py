"""``ledger algorithm ...``: the algorithm catalog from a terminal (see ``ledger.cli``)."""

from __future__ import annotations

import typer

__all__ = ["algorithm_app"]

algorithm_app = typer.Typer(
    help="Algorithms: the catalog of templates, custom code hashes.", no_args_is_help=True
)

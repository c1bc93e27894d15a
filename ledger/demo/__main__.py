"""``python -m ledger.demo [--json]``: the demo without the rest of the ``ledger`` command."""

from __future__ import annotations

import typer

from ledger.demo.cli import install

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
install(app)

if __name__ == "__main__":
    app()

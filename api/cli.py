"""``ledger serve``: the HTTP API (and the web console, if installed) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["install"]


def install(app: typer.Typer) -> None:
    """Add the ``serve`` command to `app`."""
    app.command(name="serve")(serve)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    index: Annotated[
        bool, typer.Option("--index/--no-index", help="Follow the chain into the index DB.")
    ] = True,
    domain: Annotated[
        str | None,
        typer.Option(help="EIP-4361 domain sign-in messages must name (default: the Host)."),
    ] = None,
) -> None:
    """Serve the API at http://HOST:PORT (one process: sessions live in its memory).

    On the embedded chain, anvil is started if it is not running; the contracts must be
    deployed (`ledger deploy`). The index database is migrated and followed in the background.
    """
    import uvicorn

    from api.app import create_app
    from api.deps import ApiOptions
    from ledger.chain.embedded import EmbeddedChain
    from ledger.settings import get_settings

    settings = get_settings()
    if settings.embedded:
        EmbeddedChain(settings).up()
    application = create_app(settings, ApiOptions(domain=domain, follow_index=index))
    typer.echo(f"ledger API at http://{host}:{port} (OpenAPI at /docs)")
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)

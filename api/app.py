"""The FastAPI application: `create_app(settings)` wires routes, error handlers, metrics, the
body limit, security headers, the documentation pages, the optional background indexer and the
web console's static files."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import ledger
from api.deps import ApiOptions, Services, open_services
from api.errors import install_handlers
from api.metrics import BodyLimitMiddleware, Metrics, MetricsMiddleware
from api.routes import algorithms, auth, datasets, grants, health, jobs, provenance, settlement
from api.schemas import ErrorResponse
from api.security import SecurityHeadersMiddleware, install_docs
from ledger.errors import LedgerError
from ledger.indexer.service import Indexer, IndexerOptions
from ledger.settings import Settings

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
_log = logging.getLogger("ledger.api")

_DESCRIPTION = """\
A data rights and value ledger: share the value of data, never the data.

Sign in with Ethereum (EIP-4361) at `/v1/auth`; the session is an HttpOnly cookie or a bearer
token. Every error is `{"error": {"code", "message", "field"}}` with a stable `code`.
"""


def create_app(
    settings: Settings,
    options: ApiOptions | None = None,
    *,
    services: Services | None = None,
) -> FastAPI:
    """The API app on the chain and database of `settings` (connected now, so a wrong setting
    fails here rather than on the first request).

    Raises:
        LedgerError: the chain, deployment or database cannot be reached (see `open_services`).
    """
    options = options or ApiOptions()
    services = services or open_services(settings, options)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = options.threads
        thread = None
        if options.follow_index:
            thread = threading.Thread(
                target=_follow, args=(services, stop), name="ledger-indexer", daemon=True
            )
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)

    app = FastAPI(
        title="Ledger API",
        version=ledger.__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        responses={422: {"model": ErrorResponse, "description": "Invalid request."}},
    )
    app.state.services = services
    app.state.metrics = Metrics()
    install_handlers(app)
    for module in (auth, algorithms, datasets, grants, jobs, provenance, settlement, health):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, limit=options.max_body)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: covers 413s and metrics too
    install_docs(app)
    static = Path(options.static_dir) if options.static_dir else STATIC_DIR
    if static.is_dir():
        app.mount("/", StaticFiles(directory=static, html=True), name="console")
    return app


def _follow(services: Services, stop: threading.Event) -> None:
    """Keep the index up to date until `stop` (errors are logged by class, then retried)."""
    options = IndexerOptions(confirmations=services.settings.confirmations)
    try:
        indexer = Indexer(services.w3, services.deployment, services.engine, options=options)
    except LedgerError as exc:
        _log.error("indexer cannot start: %s", type(exc).__name__)
        return
    while not stop.is_set():
        try:
            indexer.follow(stop, interval=services.options.index_interval)
        except LedgerError as exc:
            _log.warning("indexer stopped (%s); restarting", type(exc).__name__)
            stop.wait(services.options.index_interval)

"""``/healthz`` (chain, database, index lag) and Prometheus ``/metrics``."""

from __future__ import annotations

from typing import Any

import requests
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ServicesDep
from api.schemas import HealthOut
from ledger.settlement.inputs import index_cursor

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
def healthz(services: ServicesDep) -> JSONResponse:
    """200 when the chain and the database answer; the index lag is the chain head minus the
    indexed block. 503 (same body) when a part is down."""
    chain: dict[str, Any] = {"ok": False}
    head: int | None = None
    try:
        head = int(services.w3.eth.block_number)
        chain = {"ok": True, "chain_id": services.deployment.chain_id, "head": head}
    except (requests.RequestException, OSError, ValueError):
        chain = {"ok": False, "error": "the node does not answer"}
    database: dict[str, Any] = {"ok": True}
    index: dict[str, Any] = {"block": None, "lag": None}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        cursor = index_cursor(services.engine, services.deployment.chain_id)
        if cursor is not None:
            index["block"] = cursor.block_number
            if head is not None:
                index["lag"] = max(head - cursor.block_number, 0)
    except SQLAlchemyError:
        database = {"ok": False, "error": "the database does not answer"}
    ok = chain["ok"] and database["ok"]
    body = HealthOut(status="ok" if ok else "degraded", chain=chain, database=database, index=index)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, include_in_schema=True)
def metrics(request: Request) -> Response:
    """Prometheus metrics: ``ledger_api_requests_total`` and ``ledger_api_request_seconds``
    by method and route template."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

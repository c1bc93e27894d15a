"""Provenance: a job's lineage, its W3C PROV-JSON, and verification of a result + receipt.
Public: lineage holds hashes, ids and addresses, never data."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from api.deps import ServicesDep
from api.routes.common import reading, responses
from api.schemas import VerifyIn
from ledger.provenance.lineage import lineage
from ledger.provenance.prov_export import prov_json
from ledger.provenance.verify import verify_result

__all__ = ["router"]

router = APIRouter(prefix="/v1/provenance", tags=["provenance"])
Key = Annotated[
    str,
    Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="A job id, receipt hash or result hash."),
]


@router.get("/{key}/lineage", responses=responses(404, 422, 503))
def get_lineage(key: Key, services: ServicesDep) -> dict[str, Any]:
    """Dataset versions -> grants -> algorithm -> job -> result, with where it was recorded."""
    with reading(services.engine) as session:
        return lineage(session, key).to_json()


@router.get(
    "/{key}/prov",
    responses=responses(
        404, 422, 503, ok={"content": {"application/json": {}}, "description": "PROV-JSON"}
    ),
    response_class=Response,
)
def get_prov(key: Key, services: ServicesDep) -> Response:
    """The lineage as a W3C PROV-JSON document."""
    with reading(services.engine) as session:
        text = prov_json(lineage(session, key))
    return Response(text, media_type="application/json")


@router.post("/verify", responses=responses(413, 422, 503))
def verify(body: VerifyIn, services: ServicesDep) -> dict[str, Any]:
    """Verify a released result and its signed receipt against the chain: a verdict with the
    rejection reason, never an error for a bad result. Receipts naming another UsageLedger than
    this service's deployment are rejected (`other_contracts`)."""
    result_bytes = json.dumps(body.result).encode()
    start = max(body.from_block, services.deployment.deploy_block)
    verdict = verify_result(
        result_bytes,
        body.receipt,
        services.w3,
        from_block=start,
        usage_ledger=services.deployment.addresses["UsageLedger"],
    )
    data: dict[str, Any] = json.loads(json.dumps(verdict.to_json(), default=str))
    return data

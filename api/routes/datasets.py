"""The public catalog: search, detail, versions, usage. Metadata only, never rows."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import ServicesDep
from api.routes.common import plain, responses
from ledger.registry.catalog import MAX_LIMIT, UsageStats, dataset_detail, search_datasets

__all__ = ["router"]

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
DatasetId = Annotated[int, Path(ge=1, le=2**256 - 1, description="The dataset's id on chain.")]

_SEARCH_EXAMPLE = {
    "total": 1,
    "limit": 20,
    "offset": 0,
    "items": [
        {
            "dataset_id": 1,
            "owner": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "version": 1,
            "title": "Breast cancer, hospital A",
            "license": "CC-BY-4.0",
            "keywords": ["oncology"],
            "record_count": 200,
        }
    ],
}


def _usage(usage: UsageStats) -> dict[str, Any]:
    return {
        "jobs": usage.jobs,
        "uses": usage.uses,
        "epsilon_micro": str(usage.epsilon_micro),
        "revenue": {token: str(amount) for token, amount in usage.revenue.items()},
    }


@router.get(
    "",
    responses=responses(
        422, 503, ok={"content": {"application/json": {"example": _SEARCH_EXAMPLE}}}
    ),
)
def search(
    services: ServicesDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Words of title/description.")
    ] = None,
    license: Annotated[str | None, Query(max_length=64)] = None,
    keyword: Annotated[str | None, Query(max_length=50)] = None,
    owner: Annotated[str | None, Query(max_length=42)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Search the catalog: every word of `q` must match; filters by license, keyword, owner;
    newest first."""
    page = search_datasets(
        services.engine,
        q,
        license=license,
        keyword=keyword,
        owner=owner,
        limit=limit,
        offset=offset,
    )
    return plain(asdict(page))


@router.get("/{dataset_id}", responses=responses(404, 422, 503))
def detail(dataset_id: DatasetId, services: ServicesDep) -> dict[str, Any]:
    """A dataset's catalog page: head, metadata document, versions, usage."""
    found = dataset_detail(services.engine, dataset_id)
    data = {k: v for k, v in asdict(found).items() if k not in ("metadata", "usage")}
    data["metadata"] = None if found.metadata is None else found.metadata.model_dump(mode="json")
    data["usage"] = _usage(found.usage)
    return plain(data)


@router.get("/{dataset_id}/versions", responses=responses(404, 422, 503))
def versions(dataset_id: DatasetId, services: ServicesDep) -> dict[str, Any]:
    """Every version as the chain recorded it (commitments, schema and metadata hashes)."""
    found = dataset_detail(services.engine, dataset_id)
    return plain({"dataset_id": dataset_id, "versions": [asdict(v) for v in found.versions]})


@router.get("/{dataset_id}/usage", responses=responses(404, 422, 503))
def usage(dataset_id: DatasetId, services: ServicesDep) -> dict[str, Any]:
    """Use of the dataset recorded on chain: jobs, grant uses, privacy spent, revenue."""
    found = dataset_detail(services.engine, dataset_id)
    return {"dataset_id": dataset_id, **_usage(found.usage)}

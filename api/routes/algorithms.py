"""The algorithm catalog: templates by name and code hash, with their parameter schemas.
Public: grants name algorithms by these hashes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.errors import ApiError
from api.routes.common import responses
from ledger.compute.catalog import catalog, entry

__all__ = ["router"]

router = APIRouter(prefix="/v1/algorithms", tags=["algorithms"])


def _summary(name: str) -> dict[str, Any]:
    found = entry(name)
    return {
        "name": found.name,
        "hash": found.hash,
        "description": found.description,
        "dp": found.dp,
        "multi_owner": found.multi_owner,
    }


@router.get("")
def list_algorithms() -> dict[str, Any]:
    """Every catalog template: name, code hash, description, whether it is differentially
    private and whether it combines several owners' datasets."""
    return {"items": [_summary(name) for name in catalog()]}


@router.get("/{algorithm}", responses=responses(404))
def show(
    algorithm: Annotated[str, Path(max_length=100, description="A name or a 0x code hash.")],
) -> dict[str, Any]:
    """One template with the JSON schema of its parameters and the shape of its result."""
    try:
        found = entry(algorithm)
    except LookupError:
        raise ApiError(
            404, "unknown_algorithm", "algorithm must be a catalog name or code hash", "algorithm"
        ) from None
    data: dict[str, Any] = found.to_json()
    return data

"""Settlement: epochs, the signed-in account's entitlement and claim proof, reports, charts.

Entitlements are private to their account: an address sees only its own. Reports list top
accounts; everyone signed in sees the totals, only settlement operators (``SETTLER_ROLE`` on
the ``RevenueVault``) see the per-account lines and the chart.
"""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from eth_utils.crypto import keccak
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.deps import AddressDep, Services, ServicesDep
from api.errors import ApiError
from api.routes.common import address, responses
from ledger.chain.client import call
from ledger.settlement.reports import epoch_report, write_report

__all__ = ["router"]

router = APIRouter(prefix="/v1/settlement", tags=["settlement"])
ETH = "0x" + "00" * 20
Token = Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{40}$", description="Token (0x0 = ETH).")]
Epoch = Annotated[int, Path(ge=1, lt=2**32)]
_SETTLER_ROLE = keccak(text="SETTLER_ROLE")


def is_operator(services: Services, account: str) -> bool:
    """Whether `account` holds SETTLER_ROLE on the RevenueVault."""
    return bool(call(services.chain.vault.functions.hasRole(_SETTLER_ROLE, account)))


@router.get("/epochs", responses=responses(422, 503))
def epochs(services: ServicesDep, token: Token = ETH) -> dict[str, Any]:
    """Every stored epoch of a token: block range, status, root, totals (no accounts)."""
    rows = services.settlement.epochs(address(token, "token"))
    return {
        "token": address(token, "token"),
        "epochs": [
            {
                "epoch": e.epoch,
                "from_block": e.from_block,
                "to_block": e.to_block,
                "status": str(e.status),
                "root": e.root,
                "tx_hash": e.tx_hash,
                "total": str(e.total),
                "distributable": str(e.distributable),
                "accounts": e.accounts,
            }
            for e in rows
        ],
    }


@router.get("/entitlements/{account}", responses=responses(401, 403, 404, 422, 503))
def entitlement(
    account: str,
    caller: AddressDep,
    services: ServicesDep,
    token: Token = ETH,
    epoch: Annotated[int | None, Query(ge=1, lt=2**32)] = None,
) -> dict[str, Any]:
    """The signed-in account's cumulative entitlement, what it claimed, the Merkle proof to
    claim the rest, and the unsigned ``RevenueVault.claim`` transaction (``tx``) for its wallet
    to send. Only for the account itself."""
    wanted = address(account, "account")
    if wanted != caller:
        raise ApiError(
            403, "not_your_entitlement", "account must be the signed-in address", "account"
        )
    proof = services.settlement.proof(address(token, "token"), wanted, epoch)
    data = proof.as_dict()
    data["claimable"] = str(proof.claimable)
    vault = services.chain.vault
    data["tx"] = {
        "chainId": services.deployment.chain_id,
        "from": wanted,
        "to": vault.address,
        "data": vault.encode_abi(
            "claim",
            args=[
                proof.token,
                proof.account,
                proof.cumulative,
                [bytes.fromhex(p[2:]) for p in proof.proof],
            ],
        ),
        "value": "0",
    }
    return data


@router.get("/epochs/{epoch}/report", responses=responses(401, 404, 422, 503))
def report(
    epoch: Epoch, caller: AddressDep, services: ServicesDep, token: Token = ETH
) -> dict[str, Any]:
    """An epoch's report (amounts as decimal strings). Operators see the top accounts;
    others see totals and their own line only."""
    data = epoch_report(services.engine, address(token, "token"), epoch)
    if not is_operator(services, caller):
        data["top_accounts"] = [a for a in data["top_accounts"] if a["account"] == caller]
        data["top_contributors"] = []
    return data


@router.get(
    "/epochs/{epoch}/chart.png",
    response_class=Response,
    responses=responses(
        401,
        403,
        404,
        422,
        503,
        ok={"content": {"image/png": {}}, "description": "The epoch's chart."},
    ),
)
def chart(epoch: Epoch, caller: AddressDep, services: ServicesDep, token: Token = ETH) -> Response:
    """The epoch's chart (PNG), for settlement operators."""
    if not is_operator(services, caller):
        raise ApiError(
            403, "not_operator", "charts are for settlement operators (SETTLER_ROLE)", "epoch"
        )
    with tempfile.TemporaryDirectory() as out:
        files = write_report(services.engine, address(token, "token"), epoch, FilePath(out))
        return Response(files.png.read_bytes(), media_type="image/png")

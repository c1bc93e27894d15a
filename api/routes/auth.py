"""Sign-In with Ethereum: nonce, login, logout, whoami."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response

from api.auth import SiweMessage, build_message, iso, verify_login
from api.deps import SESSION_COOKIE, ServicesDep, SessionDep, session_token
from api.errors import ApiError
from api.routes.common import address, responses
from api.schemas import LoginIn, LoginOut, NonceOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/auth", tags=["auth"])
STATEMENT = "Sign in to the data rights ledger."


def _domain(request: Request, services: ServicesDep) -> str:
    options = services.options
    if options.domain:
        return options.domain
    host = request.headers.get("host", "")
    name = urlsplit(f"//{host}").hostname or ""
    if name not in options.allowed_hosts:
        raise ApiError(
            400,
            "host_not_allowed",
            f"Host header must name one of {', '.join(options.allowed_hosts)} "
            "(serve with --domain for any other address)",
            "host",
        )
    return host


def _origin(request: Request, services: ServicesDep) -> str:
    return f"{request.url.scheme}://{_domain(request, services)}"


@router.get("/nonce", response_model=NonceOut, responses=responses(422, 429))
def nonce(
    request: Request,
    services: ServicesDep,
    account: Annotated[
        str | None, Query(alias="address", description="Build the message for this address.")
    ] = None,
) -> NonceOut:
    """A fresh single-use nonce (expires after the nonce lifetime) and, given an address, the
    EIP-4361 message to sign with ``personal_sign``."""
    value, expires = services.auth.new_nonce()
    domain = _domain(request, services)
    origin = _origin(request, services)
    message = None
    if account is not None:
        message = build_message(
            SiweMessage(
                domain=domain,
                address=address(account, "address"),
                statement=STATEMENT,
                uri=origin,
                chain_id=services.deployment.chain_id,
                nonce=value,
                issued_at=iso(datetime.now(UTC)),
                expiration_time=iso(expires),
            )
        )
    return NonceOut(
        nonce=value,
        expires_at=iso(expires),
        domain=domain,
        uri=origin,
        chain_id=services.deployment.chain_id,
        message=message,
    )


@router.post("/login", response_model=LoginOut, responses=responses(401, 422))
def login(body: LoginIn, request: Request, response: Response, services: ServicesDep) -> LoginOut:
    """Check a signed EIP-4361 message (domain, URI, chain id, nonce, times, signature by the
    account or its ERC-1271 wallet) and open a session: an HttpOnly, SameSite=Strict cookie,
    and the same session as a bearer token."""
    message = verify_login(
        body.message,
        body.signature,
        store=services.auth,
        w3=services.w3,
        domain=_domain(request, services),
        origin=_origin(request, services),
        chain_id=services.deployment.chain_id,
    )
    token, session = services.auth.open_session(message.address)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(services.auth.session_ttl),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return LoginOut(address=session.address, token=token, expires_at=iso(session.expires_at))


@router.post("/logout", status_code=204, responses=responses(401))
def logout(
    request: Request, response: Response, session: SessionDep, services: ServicesDep
) -> None:
    """End the session (cookie or bearer token)."""
    token = session_token(request)
    if token:
        services.auth.close_session(token)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


@router.get("/me", responses=responses(401))
def me(session: SessionDep) -> dict[str, str]:
    """The signed-in address and when the session ends."""
    return {"address": session.address, "expires_at": iso(session.expires_at)}

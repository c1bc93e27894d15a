"""What routes are given: the service's parts (`Services`) and the signed-in address.

`Services` is built once per app from the ledger's settings (`open_services`) and kept on
``app.state``; routes receive it through the `ServicesDep` alias and the caller's address
through `AddressDep` (401 when nobody is signed in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from web3 import Web3
from web3.types import RPCEndpoint

from api.auth import AuthStore, SessionInfo
from api.errors import ApiError
from ledger.chain.client import connect
from ledger.chain.deploy import Deployment, load_deployment
from ledger.chain.sender import SendPolicy, TxSender
from ledger.jobs.chain import JobChain
from ledger.jobs.results import ResultStore
from ledger.jobs.store import JobStore
from ledger.settings import Settings
from ledger.settlement.service import Settlement
from ledger.settlement.vaults import VaultIndex
from ledger.store.database import open_engine
from ledger.store.migrate import upgrade

__all__ = [
    "SESSION_COOKIE",
    "AddressDep",
    "ApiOptions",
    "OptionalAddressDep",
    "Services",
    "ServicesDep",
    "open_services",
]

SESSION_COOKIE = "ledger_session"


@dataclass(frozen=True)
class ApiOptions:
    """HTTP-side options of the API (the ledger's own settings come from `Settings`).

    Args:
        domain: The EIP-4361 domain sign-in messages must name (``host:port`` of the public
            address). None = the request's Host, and then only a Host in `allowed_hosts`: a Host
            header is the client's to choose, so taking any would let a phishing site relay
            sign-ins made for its own domain.
        allowed_hosts: Host names accepted as the sign-in domain when `domain` is None.
        session_ttl: Seconds a session lives.
        nonce_ttl: Seconds a sign-in nonce lives.
        max_body: Largest request body accepted, in bytes (larger: 413).
        follow_index: Run the indexer in a background thread while the app runs.
        index_interval: Seconds between index runs when following.
        static_dir: Where the web console's files are; served at ``/`` if it exists.
        threads: Worker threads for the (synchronous) routes; fewer threads contend less for
            the GIL, more wait better on slow RPCs.
    """

    domain: str | None = None
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
    session_ttl: float = 12 * 3600.0
    nonce_ttl: float = 600.0
    max_body: int = 1_000_000
    follow_index: bool = False
    index_interval: float = 1.0
    static_dir: str | None = None
    threads: int = 40


@dataclass
class Services:
    """The parts every route may use."""

    settings: Settings
    options: ApiOptions
    w3: Web3
    deployment: Deployment
    engine: Engine
    chain: JobChain
    relayer: TxSender
    settlement: Settlement
    results: ResultStore
    auth: AuthStore = field(default_factory=AuthStore)

    @property
    def jobs(self) -> JobStore:
        """The job store on the service's database."""
        return JobStore(self.engine)

    def close(self) -> None:
        """Release the database engine."""
        self.engine.dispose()


def open_services(settings: Settings, options: ApiOptions) -> Services:
    """Connect to the chain and the (migrated) database of `settings`.

    Raises:
        RpcUnavailableError, WrongChainError: the node.
        DeploymentNotFoundError: no deployment on this chain (run ``ledger deploy``).
        DatabaseUnavailableError, MigrationError: the database.
        SettingsError: no executor key for a non-embedded chain.
    """
    w3 = connect(settings)
    w3.provider.cache_allowed_requests = True
    w3.provider.cacheable_requests = {RPCEndpoint("eth_chainId")}
    deployment = load_deployment(settings.resolved_deployments_dir, w3.eth.chain_id)
    url = settings.resolved_database_url
    upgrade(url)
    engine = open_engine(url)
    relayer = TxSender(w3, settings.resolved_executor_key(), SendPolicy(settings.confirmations))
    settlement = Settlement(
        w3,
        deployment,
        engine,
        vaults=VaultIndex(
            settings.data_dir,
            chain_id=deployment.chain_id,
            registry=deployment.addresses.get("DataRegistry"),
        ),
        out_dir=settings.data_dir / "settlement" / str(deployment.chain_id),
        confirmations=settings.confirmations,
    )
    return Services(
        settings=settings,
        options=options,
        w3=w3,
        deployment=deployment,
        engine=engine,
        chain=JobChain(w3, deployment),
        relayer=relayer,
        settlement=settlement,
        results=ResultStore(settings.data_dir / "results"),
        auth=AuthStore(nonce_ttl=options.nonce_ttl, session_ttl=options.session_ttl),
    )


def get_services(request: Request) -> Services:
    """The app's `Services`."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def session_token(request: Request) -> str | None:
    """The session token of a request: ``Authorization: Bearer`` or the session cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthenticated", "Authorization must be 'Bearer <token>'")
        return token.strip()
    return request.cookies.get(SESSION_COOKIE)


def optional_session(request: Request, services: ServicesDep) -> SessionInfo | None:
    """The caller's session, or None."""
    token = session_token(request)
    return services.auth.session(token) if token else None


def current_session(
    session: Annotated[SessionInfo | None, Depends(optional_session)],
) -> SessionInfo:
    """The caller's session (401 ``unauthenticated`` if none)."""
    if session is None:
        raise ApiError(
            401, "unauthenticated", "sign in first (POST /v1/auth/login); no live session"
        )
    return session


def current_address(session: Annotated[SessionInfo, Depends(current_session)]) -> str:
    """The signed-in address (checksummed)."""
    return session.address


def optional_address(
    session: Annotated[SessionInfo | None, Depends(optional_session)],
) -> str | None:
    """The signed-in address, or None."""
    return None if session is None else session.address


SessionDep = Annotated[SessionInfo, Depends(current_session)]
AddressDep = Annotated[str, Depends(current_address)]
OptionalAddressDep = Annotated[str | None, Depends(optional_address)]

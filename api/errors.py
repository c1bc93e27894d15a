"""Every error the API returns is JSON: ``{"error": {"code", "message", "field"}}``.

`ApiError` is raised by routes and dependencies; ledger errors are mapped to a status and a
stable code in one place (`status_of`, `code_of`); request validation errors (FastAPI's 422) and
unexpected exceptions are rewritten to the same shape. No stack trace, request body or secret
ever reaches a response or a log line from here.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.security import carries_session, with_security_headers
from ledger.errors import (
    ContractRevert,
    DatabaseUnavailableError,
    DeploymentError,
    InvalidGrantError,
    LedgerError,
    MigrationError,
    RpcUnavailableError,
    TransactionFailedError,
    WrongChainError,
)

__all__ = ["ApiError", "ErrorBody", "code_of", "error_response", "install_handlers", "status_of"]

_log = logging.getLogger("ledger.api")

_HTTP_CODES: Final = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable code, a message naming the rule, and the field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        super().__init__(message)


ErrorBody = dict[str, dict[str, Any]]


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    """The JSON response of an error."""
    body: ErrorBody = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status)


def code_of(exc: LedgerError) -> str:
    """A ledger error's stable code: its class name in snake case without ``Error``
    (``JobNotFoundError`` -> ``job_not_found``), or the reverted custom error's name."""
    if isinstance(exc, ContractRevert):
        return "contract_revert." + exc.error
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


#: Ledger errors whose status the builtin they subclass does not say.
_BY_CLASS: Final = {
    "JobNotReadyError": 409,
    "JobRefusedError": 403,
    "JobConflictError": 409,
    "NothingToClaimError": 409,
    "EpochNotFinalError": 409,
    "ReceiptConflictError": 409,
}


def status_of(exc: LedgerError) -> int:
    """The HTTP status of a ledger error."""
    for cls in type(exc).__mro__:
        if cls.__name__ in _BY_CLASS:
            return _BY_CLASS[cls.__name__]
    if isinstance(exc, (RpcUnavailableError, DatabaseUnavailableError, MigrationError)):
        return 503
    if isinstance(exc, (DeploymentError, WrongChainError)):
        return 503
    if isinstance(exc, PermissionError):
        return 403
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, (ValueError, InvalidGrantError)):
        return 422
    if isinstance(exc, (ContractRevert, TransactionFailedError)):
        return 409
    return 500


def _field_of(exc: LedgerError) -> str | None:
    for name in ("field", "variable"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            return value
    return None


def _loc(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "request"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field)


async def _ledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LedgerError)
    status = status_of(exc)
    if status >= 500:
        # The class only: messages of infrastructure errors may name hosts or paths.
        _log.warning("%s %s: %s", request.method, _route(request), type(exc).__name__)
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if status == 500:
        message = "the service failed to handle this request"
    return error_response(status, code_of(exc), message, _field_of(exc))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _loc(first.get("loc", ()))
    rule = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return error_response(422, "invalid_request", f"{field}: {rule}", field)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else code
    return error_response(exc.status_code, code, detail, "body" if exc.status_code == 413 else None)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.error("%s %s: unexpected %s", request.method, _route(request), type(exc).__name__)
    response = error_response(500, "internal_error", "the service failed to handle this request")
    # Starlette answers this outside every middleware: set the security headers here.
    response.raw_headers[:] = with_security_headers(
        response.raw_headers, request.url.path, authenticated=carries_session(request.scope)
    )
    return response


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def install_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on `app`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

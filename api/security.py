"""Security headers on every response, and the OpenAPI documentation pages under a policy of
their own.

Every response carries ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
``X-Frame-Options: DENY`` and a Content-Security-Policy: the console's strict `CONSOLE_CSP` on
its pages and files, a policy that allows nothing (`API_CSP`) on JSON, PNG and metrics. Every
``/v1`` response to a request carrying a session (bearer header or cookie), and every
``/v1/auth`` response (nonces, session tokens), carries ``Cache-Control: no-store``; ``/v1``
responses name ``Authorization`` and ``Cookie`` in ``Vary``.

Choice for ``/docs`` and ``/redoc``: FastAPI's pages load Swagger UI and ReDoc from a CDN (the
defaults of ``fastapi.openapi.docs``), which a strict policy would block. The app serves both
pages itself (`install_docs`) under `DOCS_CSP`: scripts only from the CDN's origin plus the
page's own inline script pinned by its SHA-256 hash; styles also inline (Swagger UI and ReDoc
inject ``<style>`` elements); no Google Fonts; fetches only to the service itself. Offline, the
pages stay blank, the API is unaffected, and ``/openapi.json`` is always served locally.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import re
from typing import Final
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "API_CSP",
    "CONSOLE_CSP",
    "DOCS_CSP",
    "DOCS_SCRIPT_ORIGINS",
    "SecurityHeadersMiddleware",
    "carries_session",
    "install_docs",
    "security_headers",
    "with_security_headers",
]

#: The console's pages and files: its own scripts, styles and images only, nothing inline.
CONSOLE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: API responses (JSON, PNG, metrics) are never documents: they may load and run nothing.
API_CSP: Final = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def _origin(url: object) -> str:
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}"


def _default(function: object, name: str) -> str:
    return str(inspect.signature(function).parameters[name].default)  # type: ignore[arg-type]


#: Where FastAPI's documentation pages load their scripts, styles and favicon from (derived
#: from FastAPI's own defaults, so a FastAPI upgrade that moves them moves the policy too).
DOCS_SCRIPT_ORIGINS: Final = tuple(
    sorted(
        {
            _origin(_default(get_swagger_ui_html, "swagger_js_url")),
            _origin(_default(get_swagger_ui_html, "swagger_css_url")),
            _origin(_default(get_redoc_html, "redoc_js_url")),
        }
    )
)
_DOCS_IMAGES: Final = tuple(
    sorted(
        {
            _origin(_default(get_swagger_ui_html, "swagger_favicon_url")),
            _origin(_default(get_redoc_html, "redoc_favicon_url")),
        }
    )
)
_INLINE_SCRIPT: Final = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _docs_csp(pages: list[str]) -> str:
    hashes = sorted(
        {
            "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
            for page in pages
            for body in _INLINE_SCRIPT.findall(page)
        }
    )
    origins = " ".join(DOCS_SCRIPT_ORIGINS)
    return (
        f"default-src 'none'; script-src 'self' {origins} {' '.join(hashes)}; "
        f"style-src 'self' 'unsafe-inline' {origins}; "
        f"img-src 'self' data: {' '.join(_DOCS_IMAGES)}; font-src 'self' data: {origins}; "
        "connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ).replace("  ", " ")


def _docs_pages(title: str) -> tuple[str, str]:
    swagger = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} - Swagger UI")
    redoc = get_redoc_html(
        openapi_url="/openapi.json", title=f"{title} - ReDoc", with_google_fonts=False
    )
    return bytes(swagger.body).decode(), bytes(redoc.body).decode()


#: The policy of ``/docs`` and ``/redoc`` (see the module's docstring); their inline script
#: names only ``/openapi.json``, so its hash does not depend on the app.
DOCS_CSP: Final = _docs_csp(list(_docs_pages("Ledger API")))

_DOCS_PATHS: Final = frozenset({"/docs", "/redoc"})


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` for an app created with ``docs_url=None``
    and ``redoc_url=None``: FastAPI's pages, without Google Fonts, under `DOCS_CSP`."""
    swagger, redoc = _docs_pages(app.title)
    if _docs_csp([swagger, redoc]) != DOCS_CSP:
        raise ValueError("the documentation pages' inline scripts changed; DOCS_CSP is stale")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(swagger)

    @app.get("/redoc", include_in_schema=False)
    def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc)


def carries_session(scope: Scope) -> bool:
    """Whether a request carries a bearer header or a session cookie."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return True
        if name == b"cookie" and b"ledger_session=" in value:  # api.deps.SESSION_COOKIE
            return True
    return False


def security_headers(path: str, content_type: str, *, authenticated: bool) -> list[tuple[str, str]]:
    """The security headers of a response to `path` with `content_type`."""
    if path in _DOCS_PATHS:
        csp = DOCS_CSP
    elif path.startswith("/v1/") or path in ("/metrics", "/healthz", "/openapi.json"):
        csp = API_CSP
    elif content_type.startswith("application/json"):
        csp = API_CSP
    else:
        csp = CONSOLE_CSP
    headers = [
        ("content-security-policy", csp),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ]
    if path.startswith("/v1/"):
        headers.append(("vary", "Authorization, Cookie"))
        if authenticated or path.startswith("/v1/auth/"):
            headers.append(("cache-control", "no-store"))
    return headers


class SecurityHeadersMiddleware:
    """Adds `security_headers` to every HTTP response (replacing any the app set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        authenticated = carries_session(scope)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(
                    list(message.get("headers", [])), path, authenticated=authenticated
                )
            await send(message)

        await self.app(scope, receive, sending)


def with_security_headers(
    raw: list[tuple[bytes, bytes]], path: str, *, authenticated: bool
) -> list[tuple[bytes, bytes]]:
    """Raw ASGI headers with the security headers of `path` set (same-named ones replaced)."""
    content_type = next((v.decode("latin-1") for k, v in raw if k.lower() == b"content-type"), "")
    extra = security_headers(path, content_type, authenticated=authenticated)
    vary = [v.decode("latin-1") for k, v in raw if k.lower() == b"vary"]
    if vary:  # keep what the app varies on, and add ours
        extra = [(k, ", ".join([*vary, v]) if k == "vary" else v) for k, v in extra]
    names = {name.encode() for name, _ in extra}
    kept = [(k, v) for k, v in raw if k.lower() not in names]
    return kept + [(k.encode(), v.encode("latin-1")) for k, v in extra]

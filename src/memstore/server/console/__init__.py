"""The web console: one static page (HTML, JS, CSS shipped in this package) over the /v1 API.

The page holds the API key in the tab's sessionStorage and sends it as a Bearer header, so
the console reads and writes through the same routes, engine checks, quotas and errors as
any other client, and no cookie ever carries a credential (nothing for CSRF to ride on).
Every response here carries a Content-Security-Policy that allows scripts and styles from
this server only: no inline script, no third party.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from memstore.errors import NotFoundError

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=307)


@router.get("/console")
def console_page() -> Response:
    return Response(
        _asset("index.html"),
        media_type="text/html; charset=utf-8",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
    )


@router.get("/console/static/{name}")
def console_asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFoundError(f"no console asset {name!r}")
    return Response(
        _asset(name),
        media_type=ASSETS[name],
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )

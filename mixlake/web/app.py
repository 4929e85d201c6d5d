"""The FastAPI application: error handlers, static files and the routers (state: `web.state`)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from curation import Lake
from mixlake.web.api import router as api_router
from mixlake.web.curate import router as curate_router
from mixlake.web.errors import WebError, message_of, package_errors, status_of
from mixlake.web.hostcheck import HostCheck, allowed_hosts
from mixlake.web.pages import render
from mixlake.web.pages import router as pages_router
from mixlake.web.state import WebState, state
from mixlake.web.workspace import router as workspace_router

__all__ = ["WebState", "create_app", "error_response", "state"]

STATIC = Path(__file__).parent / "static"


def create_app(
    lake_uri: str,
    *,
    allow_writes: bool = False,
    host: str = "127.0.0.1",
    port: int | None = None,
    extra_hosts: Sequence[str] = (),
) -> FastAPI:
    """Build the web app over the lake at `lake_uri`.

    Args:
        lake_uri: the lake to serve (it must exist).
        allow_writes: enable tag, rollback and delete-by-batch (each still confirmed).
        host: the address it is served on; requests whose `Host` names anything else get a
            421 (the DNS-rebinding guard, `mixlake.web.hostcheck`).
        port: the port it is served on (a `Host` naming another port is refused); None: any.
        extra_hosts: more names the server answers to (e.g. the machine's name on 0.0.0.0).

    Raises:
        CurationError: no lake at `lake_uri`.
    """
    Lake(lake_uri)
    # FastAPI's Swagger page loads its script from a CDN; /api/docs is our own offline page.
    app = FastAPI(title="mixlake", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.web = WebState(lake_uri, allow_writes)
    app.add_middleware(HostCheck, hosts=allowed_hosts(host, extra_hosts), port=port)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.include_router(curate_router)  # before api: its POST /api/{action} is a catch-all
    app.include_router(api_router)
    app.include_router(workspace_router)
    app.include_router(pages_router)

    async def on_error(request: Request, exc: Exception) -> Response:
        return error_response(request, status_of(exc), message_of(exc))

    kinds: list[type[Exception]] = [WebError, *package_errors()]
    for kind in kinds:
        app.add_exception_handler(kind, on_error)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(request, 422, "; ".join(parts))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return error_response(request, exc.status_code, str(exc.detail))

    async def on_bug(request: Request, exc: Exception) -> Response:
        return error_response(
            request, 500, f"internal error: {type(exc).__name__}: {message_of(exc)}"
        )

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_bug)
    app.add_exception_handler(StarletteHTTPException, on_http)
    return app


def error_response(request: Request, status: int, message: str) -> Response:
    """JSON `{"error", "status"}` under /api, else a small HTML page with the message."""
    if request.url.path.startswith("/api"):
        return JSONResponse({"error": message, "status": status}, status_code=status)
    try:
        body = render(
            request, "error.html", title=f"error {status}", status=status, message=message
        )
    except Exception:
        body = f"<h1>error {status}</h1><p>{html.escape(message)}</p>"
    return HTMLResponse(body, status_code=status)

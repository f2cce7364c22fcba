"""The FastAPI app of `wt serve`: three routers over one spool, auth, and error shapes."""

from __future__ import annotations

import hmac
import os

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from spool.client import Spool
from spool.layout import Layout
from spool.metrics import spool_registry
from whisper_cli import __version__
from whisper_cli.http import legacy, native, openai_api
from whisper_cli.http.uploads import ServeConfig, TooLarge

# Probes, a greeting and the scraper need no key (metrics hold counts, never job content).
OPEN_PATHS = {"/", "/health", "/metrics"}


CONFIG_ENV = "WT_SERVE_CONFIG"  # `wt serve --workers N`: the settings each process reads


def app_from_env() -> FastAPI:
    """The app of one of several server processes (uvicorn imports it by name)."""
    return create_app(ServeConfig.from_json(os.environ[CONFIG_ENV]))


def create_app(config: ServeConfig) -> FastAPI:
    app = FastAPI(title="wt", version=__version__, summary="Whisper transcription over a spool")
    app.state.config = config
    app.state.spool = Spool(config.spool)

    def require_key(request: Request) -> None:
        if not config.api_key or request.url.path in OPEN_PATHS:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {config.api_key}".encode()):
            raise HTTPException(
                401,
                "missing or wrong API key: send the header 'Authorization: Bearer KEY'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    for router in (legacy.router, openai_api.router, native.router):
        app.include_router(router, dependencies=[Depends(require_key)])

    registry = spool_registry(Layout(config.spool), "serve")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus text format: queue depth and jobs by state, read from the spool."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(RefuseOversized, limit=config.max_upload_bytes)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
            for e in exc.errors()
        )
        return error_response(request, HTTPException(400, problems))

    return app


class RefuseOversized:
    """413 from the Content-Length, before the body is read (the form parser would spool it
    all first). Plain ASGI: Starlette's BaseHTTPMiddleware would hide a client's disconnect
    from the endpoint, and a disconnect must cancel the job."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.limit + 65536:
                response = error_response(Request(scope), TooLarge(self.limit))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def error_response(request: Request, exc: HTTPException) -> JSONResponse:
    """OpenAI's error shape under /v1, FastAPI's {"detail"} elsewhere (the replaced
    service's clients read `detail`)."""
    if request.url.path.startswith("/v1/"):
        body = {
            "error": {
                "message": str(exc.detail),
                "type": getattr(exc, "kind", None) or openai_api.error_type(exc.status_code),
                "code": getattr(exc, "code", None),
            }
        }
    else:
        body = {"detail": exc.detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

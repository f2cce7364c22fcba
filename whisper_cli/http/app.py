"""The FastAPI app of `wt serve`: three routers over one spool, auth, and error shapes."""

from __future__ import annotations

import hmac

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from spool.client import Spool
from whisper_cli import __version__
from whisper_cli.http import legacy, native, openai_api
from whisper_cli.http.uploads import ServeConfig, TooLarge

OPEN_PATHS = {"/", "/health"}  # probes and a greeting need no key


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

    @app.middleware("http")
    async def refuse_oversized(request: Request, call_next):
        # Before the body is read: the form parser would otherwise spool it all first.
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > config.max_upload_bytes + 65536:
            return error_response(request, TooLarge(config.max_upload_bytes))
        return await call_next(request)

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

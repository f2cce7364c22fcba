"""The API of the service wt replaces, request and response shapes unchanged, so its
clients work as they are: POST /transcribe, GET /status/{id}, POST /cancel/{id}, GET /health.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from spool.client import JobNotFound, NotTaken, Spool
from whisper_cli.http.job_request import UPLOAD_FIELDS, read_job
from whisper_cli.http.render import legacy_status
from whisper_cli.http.streamed_form import streamed_form, upload_body

router = APIRouter(tags=["replaced service"])


def spool_of(request: Request) -> Spool:
    return request.app.state.spool


@router.get("/")
def greeting() -> dict[str, str]:
    return {
        "message": "wt transcription service: POST /transcribe, GET /status/{job_id}, "
        "POST /cancel/{job_id}, GET /health; the OpenAI audio API under /v1; /docs"
    }


@router.post("/transcribe", status_code=202, openapi_extra=upload_body(**UPLOAD_FIELDS))
async def transcribe(request: Request, model_name: str | None = None) -> dict[str, str]:
    """Queue an upload (multipart field `file`, streamed into the spool). `model_name` picks
    the model; without it, the daemon's default (the replaced service defaulted to tiny).
    Optional form fields, as on POST /jobs: any per-job option, `options` (JSON), `notify`,
    known speakers."""
    extra = {"model": model_name} if model_name else {}
    async with streamed_form(request, request.app.state.config) as form:
        job_id, _ = await read_job(form, spool_of(request), extra=extra)
    return {"job_id": job_id, "message": "Transcription job created"}


@router.get("/status/{job_id}", response_model=None)
def status(job_id: str, request: Request) -> JSONResponse | dict:
    sp = spool_of(request)
    try:
        # A JSONResponse: the document is JSON already, FastAPI's encoder would walk it again.
        return JSONResponse(legacy_status(sp.status(job_id), sp.job_dir(job_id)))
    except NotTaken:
        return {
            "job_id": job_id,
            "status": "queued",
            "progress": 0.0,
            "result": None,
            "error": None,
            "start_time": None,
            "end_time": None,
        }
    except JobNotFound:
        raise HTTPException(404, "Job ID not found") from None


@router.post("/cancel/{job_id}")
def cancel(job_id: str, request: Request) -> dict[str, str]:
    try:
        status = spool_of(request).cancel(job_id)
    except JobNotFound:
        raise HTTPException(404, "Job ID not found") from None
    if status is None or not status.terminal:
        message = "Cancellation requested"
    elif status.state == "canceled":
        message = "Job canceled"
    else:
        message = f"Job already {status.state}; nothing changed"
    return {"job_id": job_id, "message": message}


@router.get("/health")
async def health(request: Request):
    """200 only while a live daemon serves the spool and can work (the replaced service
    said 200 whenever its folders existed)."""
    try:
        live = await run_in_threadpool(spool_of(request).live_daemons)
    except Exception as exc:  # not a spool (yet): unhealthy, said plainly
        return JSONResponse({"status": "unhealthy", "detail": str(exc)}, status_code=503)
    if live:
        return {"status": "healthy", "daemons": len(live)}
    return JSONResponse(
        {"status": "unhealthy", "detail": "no live daemon serves the spool (see `wt health`)"},
        status_code=503,
    )

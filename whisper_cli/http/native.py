"""wt's own view of the spool over HTTP: status.json documents as they are."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from spool.client import JobNotFound, NoSuchResult, NotCompleted, NotTaken
from spool.layout import STATUS
from whisper_cli.http import job_request
from whisper_cli.http.legacy import spool_of
from whisper_cli.http.streamed_form import streamed_form, upload_body
from whisper_cli.options.transcribe_options import KNOWN_FORMATS

router = APIRouter(prefix="/jobs", tags=["wt jobs"])
MEDIA = {
    "txt": "text/plain",
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "tsv": "text/tab-separated-values",
    "rttm": "text/plain",
}


@router.post("", status_code=202, openapi_extra=upload_body(**job_request.UPLOAD_FIELDS))
async def submit(request: Request) -> dict:
    """Queue an upload with any per-job option as a form field (or one JSON `options`
    field), a webhook URL (`notify`) and known speakers; 202 with the job's id."""
    spool = spool_of(request)
    async with streamed_form(request, request.app.state.config) as form:
        job_id, notify = await job_request.read_job(form, spool)
    return {
        "id": job_id,
        "job_id": job_id,
        "state": "submitted",
        "notify": notify,
        "links": {"status": f"/jobs/{job_id}", "result": f"/jobs/{job_id}/result"},
    }


@router.get("")
async def jobs(request: Request) -> list[dict]:
    return [j.to_dict() for j in await run_in_threadpool(spool_of(request).jobs)]


@router.get("/{job_id}", response_model=None)
def job(job_id: str, request: Request) -> Response | dict:
    """status.json as it is on disk: its bytes are the answer (no parse, no re-encoding: the
    read an API service polls most, measured in bench/http_load.py)."""
    sp = spool_of(request)
    try:
        return Response((sp.job_dir(job_id) / STATUS).read_bytes(), media_type="application/json")
    except (FileNotFoundError, NotADirectoryError):
        pass
    try:
        return sp.status(job_id).to_dict()
    except NotTaken:  # submitted, in the inbox: no daemon has taken it yet
        return {"job_id": job_id, "state": "submitted", "taken": False}
    except JobNotFound:
        raise HTTPException(404, "Job ID not found") from None


@router.get("/{job_id}/result")
def result(job_id: str, request: Request, format: str = "txt") -> PlainTextResponse:
    if format not in KNOWN_FORMATS:
        raise HTTPException(400, f"format must be one of {', '.join(KNOWN_FORMATS)}")
    try:
        path = spool_of(request).result(job_id, format)
    except JobNotFound:
        raise HTTPException(404, "Job ID not found") from None
    except NotCompleted as exc:
        raise HTTPException(409, str(exc)) from None
    except NoSuchResult as exc:
        raise HTTPException(404, str(exc)) from None
    return PlainTextResponse(path.read_text(encoding="utf-8"), media_type=MEDIA[format])


@router.delete("/{job_id}")
def cancel(job_id: str, request: Request, purge: bool = False) -> dict:
    """Cancel a job; with purge=true remove a finished job's folder: its audio, results and
    status (409 while it runs: cancel it first)."""
    if purge:
        try:
            spool_of(request).purge(job_id)
        except JobNotFound:
            raise HTTPException(404, "Job ID not found") from None
        except NotCompleted as exc:
            raise HTTPException(409, str(exc)) from None
        return {"job_id": job_id, "purged": True}
    try:
        status = spool_of(request).cancel(job_id)
    except JobNotFound:
        raise HTTPException(404, "Job ID not found") from None
    if status is None:
        return {"job_id": job_id, "state": "queued", "cancel": "requested before intake"}
    return status.to_dict()

"""wt's own view of the spool over HTTP: status.json documents as they are."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from spool.client import JobNotFound, NoSuchResult, NotCompleted
from whisper_cli.http.legacy import spool_of
from whisper_cli.options import KNOWN_FORMATS

router = APIRouter(prefix="/jobs", tags=["wt jobs"])
MEDIA = {
    "txt": "text/plain",
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "tsv": "text/tab-separated-values",
    "rttm": "text/plain",
}


@router.get("")
async def jobs(request: Request) -> list[dict]:
    return [j.to_dict() for j in await run_in_threadpool(spool_of(request).jobs)]


@router.get("/{job_id}")
def job(job_id: str, request: Request) -> dict:
    try:
        return spool_of(request).status(job_id).to_dict()
    except JobNotFound:
        raise HTTPException(404, "Job ID not found") from None
    except NotCompleted as exc:  # submitted, not yet taken by a daemon
        raise HTTPException(404, str(exc)) from None


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
def cancel(job_id: str, request: Request) -> dict:
    try:
        status = spool_of(request).cancel(job_id)
    except JobNotFound:
        raise HTTPException(404, "Job ID not found") from None
    if status is None:
        return {"job_id": job_id, "state": "queued", "cancel": "requested before intake"}
    return status.to_dict()

"""The OpenAI audio API: POST /v1/audio/transcriptions and /v1/audio/translations, answered
when the job ends, and GET /v1/models. Point an OpenAI client's base URL at `.../v1`."""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from spool.client import NotTaken, Spool
from spool.layout import RESULT_STEM
from spool.status import COMPLETED, JobStatus
from whisper_cli.errors import InvalidOptions
from whisper_cli.http.job_request import known_speakers
from whisper_cli.http.legacy import spool_of
from whisper_cli.http.render import diarized_json, result_json, verbose_json
from whisper_cli.http.streamed_form import streamed_form, upload_body
from whisper_cli.options.transcribe_options import TranscribeOptions

router = APIRouter(prefix="/v1", tags=["OpenAI audio API"])

FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
# OpenAI's model names: the daemons' default Whisper model. The diarize model also diarizes.
DIARIZE_MODEL = "gpt-4o-transcribe-diarize"
DEFAULT_MODEL_ALIASES = {
    "",
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    DIARIZE_MODEL,
}
MEDIA = {"srt": "application/x-subrip", "vtt": "text/vtt", "text": "text/plain"}
# The spool's error types, as HTTP statuses: the caller's input, or the service.
CLIENT_ERRORS = {
    "not_audio": 400,
    "empty_audio": 400,
    "invalid_options": 400,
    "incomplete_input": 400,
    "input_refused": 400,
    "model_not_found": 404,
    "model_unavailable": 400,
    "engine_unavailable": 400,
}


class OpenAIError(HTTPException):
    def __init__(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        super().__init__(status, message)
        self.kind, self.code = kind, code


def error_type(status: int) -> str:
    return {401: "authentication_error", 413: "invalid_request_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error" if status < 500 else "server_error"
    )


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    """`whisper-1` (each daemon's default) and every model a live daemon has."""
    spool: Spool = request.app.state.spool
    names = {"whisper-1"}
    for beat in await run_in_threadpool(spool.live_daemons):
        names.update(beat.models)
    return {
        "object": "list",
        "data": [
            {"id": n, "object": "model", "created": 0, "owned_by": "wt"} for n in sorted(names)
        ],
    }


TEXT = {"type": "string"}
TRANSCRIPTION_FIELDS = {
    "model": {**TEXT, "default": "whisper-1"},
    "language": TEXT,
    "prompt": TEXT,
    "temperature": {"type": "number"},
    "response_format": {**TEXT, "enum": list(FORMATS), "default": "json"},
    "timestamp_granularities[]": {"type": "array", "items": {**TEXT, "enum": ["word", "segment"]}},
    "stream": {"type": "boolean", "default": False},
    "known_speaker_names[]": {"type": "array", "items": TEXT},
    "known_speaker_references[]": {
        "type": "array",
        "items": {
            **TEXT,
            "description": "data URL of a clip of that speaker alone: at least 2 s of speech, "
            "5-30 s best (OpenAI asks for 2-10 s)",
        },
    },
    "chunking_strategy": {**TEXT, "description": "accepted; wt always cuts long audio itself"},
    "diarize": {"type": "boolean", "default": False},
}
TRANSLATION_FIELDS = {
    k: v
    for k, v in TRANSCRIPTION_FIELDS.items()
    if k in ("model", "prompt", "temperature", "response_format")
}


@router.post("/audio/transcriptions", openapi_extra=upload_body(**TRANSCRIPTION_FIELDS))
async def transcriptions(request: Request):
    return await run(request, "transcribe")


@router.post("/audio/translations", openapi_extra=upload_body(**TRANSLATION_FIELDS))
async def translations(request: Request):
    return await run(request, "translate")


async def run(request: Request, task: str) -> Response:
    """The upload streams into the spool; once the form is whole its fields become the job's
    options and the drop is committed (a refused option removes the upload)."""
    async with streamed_form(request, request.app.state.config) as form:
        response_format = form.text("response_format", "json") or "json"
        if response_format not in FORMATS:
            raise OpenAIError(
                400,
                f"response_format must be one of {', '.join(FORMATS)}",
                "invalid_request_error",
                "invalid_value",
            )
        translate = task == "translate"
        words = not translate and "word" in form.texts("timestamp_granularities[]")
        stream = not translate and form.flag("stream")
        model = form.text("model", "whisper-1") or ""
        diarize = not translate and (
            model == DIARIZE_MODEL or response_format == "diarized_json" or form.flag("diarize")
        )
        if response_format == "diarized_json" and translate:
            raise OpenAIError(
                400, "diarized_json is for transcriptions", "invalid_request_error", "invalid_value"
            )
        options: dict[str, Any] = {
            "task": task,
            "output_formats": ["json", "txt", "srt", "vtt"],
            "word_timestamps": words,
        }
        if model not in DEFAULT_MODEL_ALIASES:
            options["model"] = model
        if diarize:
            options["diarize"] = True
            assert form.drop is not None
            try:
                speakers = await run_in_threadpool(
                    known_speakers, form, spool_of(request).layout.references, form.drop.job_id
                )
            except HTTPException as exc:
                raise OpenAIError(400, str(exc.detail), "invalid_request_error") from None
            if speakers:
                options["speakers"] = speakers
        language = None if translate else form.text("language")
        if language:
            options["language"] = language
        prompt = form.text("prompt")
        if prompt:
            options["initial_prompt"] = prompt
        temperature = form.number("temperature")
        if temperature is not None:
            options["temperature"] = temperature
        try:
            TranscribeOptions.from_mapping(options)
        except InvalidOptions as exc:
            shutil.rmtree(spool_of(request).layout.references / form.drop.job_id, True)
            raise OpenAIError(400, str(exc), "invalid_request_error", exc.kind) from None
        job_id = await form.commit(options)
    spool: Spool = request.app.state.spool
    if stream:
        stream_of = diarized_events if response_format == "diarized_json" else events
        return StreamingResponse(stream_of(request, spool, job_id), media_type="text/event-stream")
    status = await finished(request, spool, job_id)
    job_dir = spool.job_dir(job_id)
    if status.state != COMPLETED:
        raise failure(status)
    if response_format in ("srt", "vtt", "text"):
        suffix = "txt" if response_format == "text" else response_format
        text = (job_dir / f"{RESULT_STEM}.{suffix}").read_text(encoding="utf-8")
        return PlainTextResponse(text, media_type=MEDIA[response_format])
    data = result_json(job_dir)
    if response_format == "json":
        return JSONResponse({"text": data["text"]})
    if response_format == "diarized_json":
        return JSONResponse(diarized_json(data, task))
    return JSONResponse(verbose_json(data, task, words))


async def finished(request: Request, spool: Spool, job_id: str) -> JobStatus:
    """Wait for the job's final state; a client that goes away cancels its job."""
    poll = request.app.state.config.poll_seconds
    while True:
        try:
            status = await run_in_threadpool(spool.status, job_id)
            if status.terminal:
                return status
        except NotTaken:
            pass
        if await request.is_disconnected():
            await run_in_threadpool(spool.cancel, job_id)
            raise OpenAIError(499, "the client went away; its job was canceled", "canceled")
        await asyncio.sleep(poll)


def failure(status: JobStatus) -> OpenAIError:
    if status.state == "canceled":
        return OpenAIError(409, f"job {status.job_id} was canceled", "canceled", "canceled")
    error = status.error
    kind = error.type if error else "internal_error"
    message = error.message if error else "the job failed"
    return OpenAIError(CLIENT_ERRORS.get(kind, 500), message, kind, kind)


async def events(request: Request, spool: Spool, job_id: str):
    """Server-sent events in OpenAI's streaming shape: a `transcript.text.delta` for each
    segment as the daemon decodes it (read from the job's partial.jsonl), then
    `transcript.text.done` with the whole text."""
    poll = request.app.state.config.poll_seconds
    sent = 0
    while True:
        try:
            status: JobStatus | None = await run_in_threadpool(spool.status, job_id)
        except NotTaken:
            status = None
        for segment in (await run_in_threadpool(spool.partial_segments, job_id))[sent:]:
            sent += 1
            yield sse({"type": "transcript.text.delta", "delta": segment["text"]})
        if status is not None and status.terminal:
            break
        if await request.is_disconnected():
            await run_in_threadpool(spool.cancel, job_id)
            return
        await asyncio.sleep(poll)
    if status.state != COMPLETED:
        err = failure(status)
        yield sse({"type": "error", "error": {"message": err.detail, "type": err.kind}})
        return
    data = result_json(spool.job_dir(job_id))
    for segment in data["segments"][sent:]:
        yield sse({"type": "transcript.text.delta", "delta": segment["text"]})
    yield sse({"type": "transcript.text.done", "text": data["text"]})


async def diarized_events(request: Request, spool: Spool, job_id: str):
    """diarized_json streamed as OpenAI streams it: a `transcript.text.segment` event per
    segment, with its speaker, then `transcript.text.done`. Speakers are known only once the
    whole recording is clustered, so the segments come when the job ends."""
    status = await finished(request, spool, job_id)
    if status.state != COMPLETED:
        err = failure(status)
        yield sse({"type": "error", "error": {"message": err.detail, "type": err.kind}})
        return
    body = diarized_json(result_json(spool.job_dir(job_id)), "transcribe")
    for segment in body["segments"]:
        yield sse(segment)
    yield sse({"type": "transcript.text.done", "text": body["text"], "usage": body["usage"]})


def sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"

"""A job's options from an upload's form fields, the same way for every route.

Every per-job option (whisper_cli/options/job_options.py, the TranscribeOptions fields a sidecar may
set) may be sent as a form field of its own name (`diarize=true`, `num_speakers=2`,
`output_formats=json,srt`, `speakers` repeated) or all at once as one JSON `options` field;
they are validated as a sidecar's are, and a refusal names the field and the fix (400).
Known speakers may also come as OpenAI's `known_speaker_names[]` + `known_speaker_references[]`
(data URLs of short clips): the clips are written under SPOOL/references/JOB_ID/, where the
daemon reads them, and removed with the job.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from spool.sidecars import notify_url_problem
from whisper_cli.errors import InvalidOptions
from whisper_cli.http.streamed_form import FILE_FIELD, StreamedForm
from whisper_cli.options.job_options import JOB_OPTIONS
from whisper_cli.options.transcribe_options import TranscribeOptions

# Fields every upload route reads itself; anything else must be a job option.
ROUTE_FIELDS = {FILE_FIELD, "options", "notify", "known_speaker_names", "known_speaker_references"}
PER_JOB = {o.field for o in JOB_OPTIONS if o.per_job}
KINDS = {f.name: f.type for f in fields(TranscribeOptions)}
UPLOAD_FIELDS = {
    "options": {"type": "string", "description": "all job options as one JSON object"},
    "notify": {"type": "string", "description": "URL the daemon POSTs to when the job ends"},
    "known_speaker_names[]": {"type": "array", "items": {"type": "string"}},
    "known_speaker_references[]": {"type": "array", "items": {"type": "string"}},
    **{o.field: {"type": "string", "description": o.help} for o in JOB_OPTIONS if o.per_job},
}
MAX_REFERENCE_BYTES = 16 * 1024 * 1024  # a 10 s clip is 320 KB as 16-bit wav
REFERENCE_TYPES = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "ogg",
    "audio/webm": "webm",
    "audio/flac": "flac",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
}


def bad(field: str, problem: str, fix: str = "") -> HTTPException:
    return HTTPException(400, f"{field}: {problem}" + (f" ({fix})" if fix else ""))


def form_list(form: StreamedForm, name: str) -> list[str]:
    """A list field in any of the forms clients send: `name[]` or `name` repeated, or one
    JSON array string."""
    values = form.texts(f"{name}[]") + form.texts(name)
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            parsed = json.loads(values[0])
        except ValueError:
            raise bad(name, "is not a JSON array of strings") from None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise bad(name, "must be an array of strings")
        return parsed
    return values


def job_options(form: StreamedForm, ignore: set[str] | frozenset[str] = frozenset()) -> dict:
    """The per-job options a form carries (only those given: the daemon's defaults apply to
    the rest). `ignore`: fields the route reads itself (OpenAI's)."""
    options: dict[str, Any] = {}
    raw = form.text("options")
    if raw:
        try:
            options = json.loads(raw)
        except ValueError as exc:
            raise bad("options", f"is not valid JSON ({exc})") from None
        if not isinstance(options, dict):
            raise bad("options", "must be a JSON object of job options")
    for name in form.fields:
        key = name.removesuffix("[]")
        if key in ROUTE_FIELDS or name in ignore or key in ignore:
            continue
        if key not in KINDS:
            raise bad(key, "is not a job option", f"job options: {', '.join(sorted(PER_JOB))}")
        if key not in PER_JOB:
            raise bad(key, "is set for a whole daemon, not per job", "see wt daemon --help")
        options[key] = _typed(key, form)
    unknown = sorted(set(options) - PER_JOB)
    if unknown:
        raise bad("options", f"unknown or daemon-wide option(s): {', '.join(unknown)}")
    return options


def _typed(key: str, form: StreamedForm) -> Any:
    """A form field's text as the option's type (JSON's, as in a sidecar)."""
    kind = str(KINDS[key])
    if key in ("speakers", "output_formats"):
        values = form_list(form, key)
        return values if key == "speakers" or len(values) != 1 else values[0]
    text = (form.text(key) or form.text(f"{key}[]") or "").strip()
    if text == "" or text.lower() == "null":
        return None
    if kind.startswith("bool"):
        if text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise bad(key, f"{text!r} is not true or false")
        return text.lower() in ("true", "1", "yes", "on")
    if kind.startswith("int"):
        try:
            return int(text)
        except ValueError:
            raise bad(key, f"{text!r} is not a whole number") from None
    if kind.startswith("float"):
        try:
            return float(text)
        except ValueError:
            raise bad(key, f"{text!r} is not a number") from None
    return text


def validate(options: dict) -> None:
    try:
        TranscribeOptions.from_mapping(dict(options))
    except InvalidOptions as exc:
        raise HTTPException(400, str(exc)) from None


def known_speakers(form: StreamedForm, references: Path, job_id: str) -> list[str]:
    """`known_speaker_names[]` + `known_speaker_references[]` as `--speaker NAME=CLIP` specs,
    the clips written under references/JOB_ID/ (a name with no reference: an enrolled voice)."""
    names = form_list(form, "known_speaker_names")
    clips = form_list(form, "known_speaker_references")
    if not names and not clips:
        return []
    if clips and len(clips) != len(names):
        raise bad(
            "known_speaker_references",
            f"{len(clips)} references for {len(names)} names",
            "send one reference per name, in the same order",
        )
    if not clips:
        return names
    folder = references / job_id
    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for i, (name, url) in enumerate(zip(names, clips, strict=True)):
        audio, ext = _data_url(url, i)
        path = folder / f"{i}.{ext}"
        tmp = folder / f".{i}.{ext}.tmp"
        tmp.write_bytes(audio)
        os.replace(tmp, path)
        specs.append(f"{name}={path.resolve()}")
    return specs


DATA_URL = re.compile(r"^data:([\w.+/-]+)?(;[\w=.+-]+)*?;base64,", re.IGNORECASE)


def _data_url(url: str, index: int) -> tuple[bytes, str]:
    field = f"known_speaker_references[{index}]"
    match = DATA_URL.match(url)
    if not match:
        raise bad(field, "is not a base64 data URL", "send data:audio/wav;base64,...")
    mime = (match.group(1) or "").lower()
    if len(url) > MAX_REFERENCE_BYTES * 4 // 3 + 100:
        raise bad(field, f"is larger than {MAX_REFERENCE_BYTES // 2**20} MB", "send 2-30 s")
    try:
        audio = base64.b64decode(url[match.end() :], validate=True)
    except (binascii.Error, ValueError):
        raise bad(field, "is not valid base64") from None
    return audio, REFERENCE_TYPES.get(mime, "audio")


async def read_job(form, spool, ignore: frozenset[str] = frozenset(), extra: dict | None = None):
    """Options, known speakers and webhook of an upload, validated; commits the drop."""
    options = {**job_options(form, ignore), **(extra or {})}
    assert form.drop is not None
    speakers = await run_in_threadpool(
        known_speakers, form, spool.layout.references, form.drop.job_id
    )
    if speakers:
        options["speakers"] = [*options.get("speakers", []), *speakers]
        options.setdefault("diarize", True)
    notify = form.text("notify") or None
    try:
        validate(options)
        if notify and (problem := notify_url_problem(notify)):
            raise HTTPException(400, f"notify: {problem}")
        return await form.commit(options, notify=notify), notify
    except BaseException:
        shutil.rmtree(spool.layout.references / form.drop.job_id, ignore_errors=True)
        raise

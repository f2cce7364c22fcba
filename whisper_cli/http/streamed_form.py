"""A multipart upload written straight into the spool as it arrives.

Starlette's form parser first copies every file part to a temporary file in TMPDIR (in a
container often a tmpfs: memory), and wt would then copy it again into the inbox. Here the
body is parsed as it streams in (python-multipart's push parser, the one Starlette uses) and
the file part's bytes go straight to the drop's hidden temporary file in the inbox: one
write per byte, memory flat for any size. The size limit is enforced on the bytes as they
arrive (a chunked upload without Content-Length included): at the limit the request ends with
413 and the rest is not read. A client that disconnects, a limit crossed or a bad form leaves
nothing behind (Drop.abort).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from spool.client import Drop, Spool
from whisper_cli.http.uploads import ServeConfig, TooLarge, check_queue, queue_changed

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024  # a form field (model, prompt, ...) larger than this is refused
# Known speakers' reference clips come as data URLs in form fields (OpenAI's shape): a 30 s
# clip is ~1.3 MB of base64 as 16-bit wav.
LARGE_FIELDS = {"known_speaker_references", "known_speaker_references[]"}
MAX_LARGE_FIELD_BYTES = 22 * 1024 * 1024
MAX_FIELDS = 64
# Past the limit, up to this much more of the body is read and dropped before the 413: a
# client a little over the limit finishes sending and reads the answer (a server that closes
# with unread bytes resets the connection, and the client sees a broken pipe instead).
DRAIN_BYTES = 1 << 20
HANDOFF_BYTES = 1 << 20
# Uploads parsed and written at once, each on a thread of the server's pool: without a bound,
# 32 uploads at once held 32 of its 40 threads and status reads queued behind them (p99 of a
# status read during uploads 1.4-1.7 s; bench/http_load.py). Uploads still stream in at once;
# only their hand-offs to disk take turns.
PARALLEL_WRITES = 4
_writes: asyncio.Semaphore | None = None


async def _write(parser: MultipartParser, data: bytes) -> None:
    global _writes
    if _writes is None:
        _writes = asyncio.Semaphore(PARALLEL_WRITES)  # made on the server's event loop
    async with _writes:
        await run_in_threadpool(parser.write, data)


@dataclass
class StreamedForm:
    """The form's fields (name -> values, in order) and, once its part began, the drop the
    file part is being written into."""

    spool: Spool
    limit: int
    fields: dict[str, list[str]] = field(default_factory=dict)
    drop: Drop | None = None
    file_bytes: int = 0
    ended: bool = False  # the closing boundary came: the body is whole
    _out: Any = None
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _header: bytes = b""
    _value: bytes = b""
    _part: str | None = None  # field name of the current part; FILE_FIELD for the upload
    _buffer: bytearray = field(default_factory=bytearray)

    # ---- python-multipart callbacks (run in a worker thread: file writes may block) ----
    def on_part_begin(self) -> None:
        self._headers, self._part = {}, None
        self._buffer = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header = self._value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if name == FILE_FIELD and filename is not None:
            if self.drop is not None:
                raise HTTPException(400, "file: send one file per request")
            self.drop = self.spool.open_drop(filename.decode("utf-8", "replace") or "upload")
            self._out = open(self.drop.tmp, "wb")  # noqa: SIM115 (closed in on_part_end/close)
        elif len(self.fields) >= MAX_FIELDS:
            raise HTTPException(400, f"too many form fields (at most {MAX_FIELDS})")
        self._part = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self.file_bytes += end - start
            if self.file_bytes > self.limit:
                raise TooLarge(self.limit)
            self._out.write(data[start:end])
            return
        self._buffer += data[start:end]
        limit = MAX_LARGE_FIELD_BYTES if self._part in LARGE_FIELDS else MAX_FIELD_BYTES
        if len(self._buffer) > limit:
            raise HTTPException(400, f"{self._part}: form field larger than {limit} bytes")

    def on_part_end(self) -> None:
        if self._out is not None:
            self.close()
        elif self._part is not None:
            self.fields.setdefault(self._part, []).append(self._buffer.decode("utf-8", "replace"))

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    # ---- reading fields ----
    def text(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else default

    def texts(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def number(self, name: str) -> float | None:
        value = self.text(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except ValueError:
            raise HTTPException(400, f"{name}: {value!r} is not a number") from None

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "false").strip().lower()
        if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise HTTPException(400, f"{name}: {value!r} is not true or false")
        return value in ("true", "1", "yes", "on")

    async def commit(
        self,
        options: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        notify: str | None = None,
    ) -> str:
        assert self.drop is not None
        job_id = await run_in_threadpool(self.drop.commit, options, metadata, notify)
        queue_changed(self.spool)
        return job_id


@asynccontextmanager
async def streamed_form(request: Request, config: ServeConfig) -> AsyncIterator[StreamedForm]:
    """Reads the request's multipart body into the spool; the block then builds the options
    and commits the drop. Whatever goes wrong before the commit, the drop is removed."""
    spool: Spool = request.app.state.spool
    await check_queue(spool, config)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise HTTPException(400, "file: send the audio as multipart/form-data with a 'file' part")
    form = StreamedForm(spool, config.max_upload_bytes)
    callbacks = {
        name: getattr(form, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_end",
        )
    }
    parser = MultipartParser(boundary, callbacks)
    body = request.stream()
    try:
        try:
            # The server's reads are ~64 KB: handed to the parsing thread a MiB at a time
            # (one thread hop per read costs a quarter of the upload speed).
            pending: list[bytes] = []
            size = 0
            async for chunk in body:
                pending.append(chunk)
                size += len(chunk)
                if size >= HANDOFF_BYTES:
                    await _write(parser, b"".join(pending))
                    pending, size = [], 0
            if pending:
                await _write(parser, b"".join(pending))
        except TooLarge:
            form.close()
            await run_in_threadpool(form.drop.abort)  # type: ignore[union-attr]
            await _drain(body)
            raise
        parser.finalize()
        form.close()
        if not form.ended:
            raise HTTPException(400, "the multipart body ended early: send the whole upload")
        if form.drop is None:
            raise HTTPException(400, "file: Field required (a multipart part named 'file')")
        yield form
    except MultipartParseError as exc:
        form.close()
        if form.drop is not None:
            await run_in_threadpool(form.drop.abort)
        raise HTTPException(400, f"malformed multipart body: {exc}") from None
    except BaseException:
        form.close()
        if form.drop is not None:
            await run_in_threadpool(form.drop.abort)
        raise


def upload_body(**fields: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of an upload endpoint (the body is parsed by hand, so FastAPI
    cannot describe it itself): a binary `file` and the given form fields."""
    properties = {FILE_FIELD: {"type": "string", "format": "binary"}, **fields}
    schema = {"type": "object", "properties": properties, "required": [FILE_FIELD]}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


async def _drain(body: AsyncIterator[bytes]) -> None:
    drained = 0
    with suppress(ClientDisconnect):
        async for chunk in body:
            drained += len(chunk)
            if drained > DRAIN_BYTES:
                return

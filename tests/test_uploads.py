"""Uploads stream into the spool: no copy in TMPDIR, the limit enforced on the bytes as they
arrive (chunked uploads too), nothing left behind by a client that goes away. Spoken to over
raw sockets, so that the test controls exactly when each byte is sent."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path

from conftest import SAMPLE

from whisper_cli.http.streamed_form import HANDOFF_BYTES

SLACK = HANDOFF_BYTES + 65536  # what the server may hold in memory before writing it

BOUNDARY = "wtboundary7MA4YWxkTrZu0gW"


def _until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _head(path: str, port: int, length: int | None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _form(audio: bytes, fields: dict[str, str], filename: str = "talk.wav") -> tuple[bytes, bytes]:
    """(everything up to and including the file's bytes, the closing rest)."""
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    return head + audio, f"\r\n--{BOUNDARY}--\r\n".encode()


def _response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    sock.settimeout(60)
    while chunk := sock.recv(65536):
        data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def _parts(spool: Path) -> list[Path]:
    return list((spool / "inbox").glob(".*.part"))


def test_an_upload_streams_into_the_inbox_and_never_touches_tmpdir(server_factory, tmp_path):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    server = server_factory(env={"TMPDIR": str(tmpdir)})
    audio = SAMPLE[0].read_bytes() * 60  # 6.8 MB
    first, rest = _form(audio[: len(audio) // 2], {"model": "whisper-1"})
    second = audio[len(audio) // 2 :] + rest
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_head("/v1/audio/transcriptions", server.port, len(first) + len(second)))
        sock.sendall(first)
        # Half the body sent: its bytes are already in the inbox, under a hidden name.
        spool = server.spool
        _until(lambda: sum(p.stat().st_size for p in _parts(spool)) >= len(audio) // 2 - SLACK)
        assert not list(tmpdir.iterdir())  # no copy on the side
        assert not [p for p in (spool / "inbox").iterdir() if not p.name.startswith(".")]
        sock.sendall(second)
        sock.shutdown(socket.SHUT_WR)
        _until(lambda: list((spool / "inbox").glob("*.json")) or list((spool / "jobs").iterdir()))
    (sidecar,) = (spool / "inbox").glob("*.json")
    drop = sidecar.with_name(sidecar.name[: -len(".json")])
    assert hashlib.sha256(drop.read_bytes()).digest() == hashlib.sha256(audio).digest()
    assert json.loads(sidecar.read_text())["size"] == len(audio)
    assert not list(tmpdir.iterdir()) and not _parts(spool)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_a_chunked_upload_over_the_limit_gets_413_and_an_endless_one_is_not_read(
    server_factory,
):
    """No Content-Length to judge by: the server counts the bytes as they come. A body a
    little over the limit gets its 413; an endless one is read no further than the limit and
    a little more (the sender stalls), and neither leaves anything in the inbox."""
    server = server_factory("--max-upload-size", "1M")
    head, tail = _form(b"", {})
    block = b"\0" * 65536
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_head("/transcribe", server.port, None))
        sock.sendall(_chunk(head) + b"".join(_chunk(block) for _ in range(24)) + _chunk(tail))
        sock.sendall(b"0\r\n\r\n")
        status, body = _response(sock)
    assert status == 413 and b"limit" in body

    sent = 0
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.sendall(_head("/transcribe", server.port, None) + _chunk(head))
        sock.settimeout(10)
        try:
            while sent < 64 << 20:
                sock.sendall(_chunk(block))
                sent += len(block)
        except (TimeoutError, ConnectionError):
            pass  # the server stopped reading
    assert sent < 16 << 20  # the limit, the drain and the socket buffers: far from 64 MB
    _until(lambda: not _parts(server.spool))
    assert not list((server.spool / "inbox").iterdir())


def test_a_client_that_goes_away_mid_upload_leaves_nothing_behind(server_factory):
    server = server_factory()
    audio = SAMPLE[0].read_bytes() * 30
    first, rest = _form(audio, {})
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_head("/transcribe", server.port, len(first) + len(rest) + 10**6))
        sock.sendall(first)
        _until(lambda: sum(p.stat().st_size for p in _parts(server.spool)) >= len(audio) - SLACK)
    # Gone before the end of the body: the partial upload is removed, no drop is made.
    _until(lambda: not _parts(server.spool))
    assert not list((server.spool / "inbox").iterdir())
    assert not list((server.spool / "jobs").iterdir())


def test_a_refused_option_or_a_form_without_a_file_leaves_nothing_behind(server_factory):
    import httpx

    server = server_factory()
    audio = SAMPLE[0].read_bytes()
    r = httpx.post(
        server.url + "/v1/audio/transcriptions",
        files={"file": ("a.wav", audio)},
        data={"temperature": "hot"},
    )
    assert r.status_code == 400 and "temperature" in r.json()["error"]["message"]
    r = httpx.post(
        server.url + "/v1/audio/transcriptions",
        files={"file": ("a.wav", audio)},
        data={"language": "klingon"},
    )
    assert r.status_code == 400, r.text
    r = httpx.post(server.url + "/transcribe", data={"model_name": "tiny.en"})
    assert r.status_code == 400 and "file" in r.json()["detail"]
    assert not list((server.spool / "inbox").iterdir())

"""An upload becomes a spool drop: copied in 1 MiB blocks to a temporary name in the inbox,
then the sidecar, then the rename (Spool.deliver)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from spool.client import Spool

BLOCK = 1 << 20


@dataclass(frozen=True)
class ServeConfig:
    spool: Path
    max_upload_bytes: int = 2 * 1024**3
    max_queued: int = 0  # 0: no bound
    api_key: str | None = None
    poll_seconds: float = 0.1


class TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"upload is larger than the server's limit of {limit} bytes")


class Busy(HTTPException):
    def __init__(self, queued: int) -> None:
        super().__init__(
            429,
            f"{queued} jobs are waiting; try again shortly",
            headers={"Retry-After": "5"},
        )


_queued_cache: dict[Path, tuple[float, int]] = {}


def queued_jobs(spool: Spool) -> int:
    """Drops not yet taken plus queued jobs (counted at most once a second: a scan reads
    every job's status)."""
    now = time.monotonic()
    hit = _queued_cache.get(spool.root)
    if hit and now - hit[0] < 1.0:
        return hit[1]
    count = spool.counts().queue_depth
    _queued_cache[spool.root] = (now, count)
    return count


async def enqueue(
    spool: Spool,
    config: ServeConfig,
    upload: UploadFile,
    options: dict[str, Any],
    metadata: dict[str, Any] | None = None,
) -> str:
    if config.max_queued:
        queued = await run_in_threadpool(queued_jobs, spool)
        if queued >= config.max_queued:
            raise Busy(queued)

    def put(tmp: Path) -> None:
        copied = 0
        upload.file.seek(0)
        with open(tmp, "wb") as out:
            while block := upload.file.read(BLOCK):
                copied += len(block)
                if copied > config.max_upload_bytes:
                    raise TooLarge(config.max_upload_bytes)
                out.write(block)

    name = upload.filename or "upload"
    job_id = await run_in_threadpool(spool.deliver, put, name, options, metadata)
    _queued_cache.pop(spool.root, None)
    return job_id

"""The HTTP door's settings and the limits on what it takes in (whisper_cli/http/streamed_form.py
writes an upload into the spool)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from spool.client import Spool


@dataclass(frozen=True)
class ServeConfig:
    spool: Path
    max_upload_bytes: int = 2 * 1024**3
    max_queued: int = 0  # 0: no bound
    api_key: str | None = None
    poll_seconds: float = 0.1

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "spool": str(self.spool)})

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data = json.loads(text)
        return cls(**{**data, "spool": Path(data["spool"])})


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


async def check_queue(spool: Spool, config: ServeConfig) -> None:
    """429 before any byte of the body is read, when the queue is at its bound."""
    if config.max_queued:
        queued = await run_in_threadpool(queued_jobs, spool)
        if queued >= config.max_queued:
            raise Busy(queued)


def queue_changed(spool: Spool) -> None:
    _queued_cache.pop(spool.root, None)

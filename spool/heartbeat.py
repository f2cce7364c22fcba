"""Daemon heartbeats under SPOOL/daemons/: who is serving the spool, and who is dead.

Each daemon rewrites `daemons/<daemon-id>.json` every few seconds. A daemon is alive while
its beat is fresh; on its own host a dead pid also counts as dead at once, so a restarted
daemon recovers its predecessor's jobs without waiting for the beat to go stale.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from spool.layout import HOST, Layout, parse_time, utcnow
from spool.status import write_json_atomic

BEAT_SECONDS = 2.0
STALE_SECONDS = 30.0


@dataclass
class Heartbeat:
    daemon: str
    host: str
    pid: int
    version: str
    started_at: str
    last_beat: str = field(default_factory=utcnow)
    workers: int = 1
    jobs_running: list[str] = field(default_factory=list)
    jobs_done: int = 0
    accepting: bool = True
    watch: str = "inotify"
    # Why this daemon cannot take files from the inbox or write to the spool, while that
    # lasts (a full disk, an inbox it may not change); None when all is well.
    problem: str | None = None
    # Models this daemon has without a download (its default first): `GET /v1/models`.
    models: list[str] = field(default_factory=list)


def new_daemon_id() -> str:
    return f"{HOST}-{os.getpid()}-{secrets.token_hex(3)}"


def write_heartbeat(layout: Layout, beat: Heartbeat) -> None:
    beat.last_beat = utcnow()
    write_json_atomic(layout.daemons / f"{beat.daemon}.json", asdict(beat))


def remove_heartbeat(layout: Layout, daemon_id: str) -> None:
    (layout.daemons / f"{daemon_id}.json").unlink(missing_ok=True)


def read_heartbeats(layout: Layout) -> list[Heartbeat]:
    beats = []
    for path in sorted(layout.daemons.glob("*.json")):
        try:
            beats.append(Heartbeat(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue  # half-visible or foreign file; the writer replaces atomically
    return beats


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def beat_age(beat: Heartbeat) -> float:
    return (datetime.now(timezone.utc) - parse_time(beat.last_beat)).total_seconds()


def is_alive(beat: Heartbeat | None, stale_seconds: float = STALE_SECONDS) -> bool:
    if beat is None:
        return False
    if beat.host == HOST and not pid_alive(beat.pid):
        return False
    return beat_age(beat) < stale_seconds


def daemon_alive(layout: Layout, daemon_id: str, stale_seconds: float = STALE_SECONDS) -> bool:
    path = layout.daemons / f"{daemon_id}.json"
    try:
        beat = Heartbeat(**json.loads(path.read_text()))
    except FileNotFoundError:
        # A daemon writes its first beat before it claims anything and removes it only
        # after releasing its claims, so a claim without a beat belongs to a dead daemon.
        return False
    except (OSError, ValueError, TypeError):
        return True  # unreadable for a moment; do not steal on a guess
    return is_alive(beat, stale_seconds)


def cleanup_dead_beats(layout: Layout, stale_seconds: float = STALE_SECONDS * 10) -> None:
    for beat in read_heartbeats(layout):
        if not is_alive(beat, stale_seconds):
            remove_heartbeat(layout, beat.daemon)

"""status.json: the JobStatus record, its state machine, and atomic read/replace."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spool import PROTOCOL_VERSION
from spool.layout import STATUS, parse_time, utcnow
from whisper_cli.output.writers import write_atomic

QUEUED, PROCESSING, COMPLETED, FAILED, CANCELED = (
    "queued",
    "processing",
    "completed",
    "failed",
    "canceled",
)
STATES = (QUEUED, PROCESSING, COMPLETED, FAILED, CANCELED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELED})
# processing -> queued happens when a daemon dies or shuts down before finishing a job.
TRANSITIONS = {
    QUEUED: {PROCESSING, FAILED, CANCELED},
    PROCESSING: {COMPLETED, FAILED, CANCELED, QUEUED},
    COMPLETED: set(),
    FAILED: set(),
    CANCELED: set(),
}


class IllegalTransition(Exception):
    pass


@dataclass
class Progress:
    fraction: float = 0.0
    seconds_done: float = 0.0
    duration: float | None = None
    eta_seconds: float | None = None


@dataclass
class JobError:
    type: str
    message: str


@dataclass
class InputInfo:
    name: str  # the name it was dropped or submitted with (valid UTF-8; see name_hex)
    file: str  # its name inside the job folder
    size: int
    name_hex: str | None = None  # the exact bytes of a name that was not valid UTF-8


@dataclass
class Worker:
    host: str
    pid: int
    daemon: str


@dataclass
class JobStatus:
    job_id: str
    state: str
    input: InputInfo
    options: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utcnow)
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str = field(default_factory=utcnow)
    progress: Progress = field(default_factory=Progress)
    language: str | None = None
    error: JobError | None = None
    worker: Worker | None = None
    attempts: int = 0
    outputs: list[str] = field(default_factory=list)
    protocol: int = PROTOCOL_VERSION
    # The webhook (spool/webhooks.py), when the drop asked for one: url, state (waiting,
    # delivering, delivered, failed, refused), attempts [{at, status | error}].
    notify: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def run_seconds(self) -> float | None:
        """Seconds from the (last) start to the end; None for a job that never started."""
        if not self.started_at or not self.finished_at:
            return None
        return (parse_time(self.finished_at) - parse_time(self.started_at)).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["input"]["name_hex"] is None:
            del data["input"]["name_hex"]  # present only for names that are not UTF-8
        return data

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobStatus:
        d = dict(d)
        d["input"] = InputInfo(**d["input"])
        d["progress"] = Progress(**d.get("progress") or {})
        d["error"] = JobError(**d["error"]) if d.get("error") else None
        d["worker"] = Worker(**d["worker"]) if d.get("worker") else None
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in known})

    def advance(self, state: str, **changes: Any) -> JobStatus:
        if state != self.state and state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"job {self.job_id}: {self.state} -> {state} is not allowed")
        self.state = state
        for key, value in changes.items():
            setattr(self, key, value)
        now = utcnow()
        self.updated_at = now
        if state in TERMINAL and self.finished_at is None:
            self.finished_at = now
        return self


def write_json_atomic(path: Path, data: Any, durable: bool = True) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a sidecar's JSON escapes) cannot be UTF-8: write that
        # document with \u escapes instead, which JSON readers decode to the same strings.
        text = json.dumps(data, ensure_ascii=True, indent=2)
    write_atomic(path, text + "\n", durable)


def write_status(job_dir: Path, status: JobStatus, durable: bool = True) -> None:
    """durable=False for progress updates: state changes are always synced to disk."""
    write_json_atomic(job_dir / STATUS, status.to_dict(), durable)


def read_status(job_dir: Path) -> JobStatus | None:
    try:
        return JobStatus.from_dict(json.loads((job_dir / STATUS).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None

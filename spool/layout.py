"""Where things live under a spool root, job ids, and name validation."""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".filepart", ".crdownload", ".download", "~")
SIDECAR_SUFFIX = ".json"

# Files inside a job folder.
STATUS = "status.json"
REQUEST = "request.json"
SIDECAR = "sidecar.json"
UNUSED_SIDECAR = "sidecar.unused.json"  # NAME.json, when NAME.EXT.json was the one used
CANCEL = "cancel"
CLAIM = "claim"
RESULT_STEM = "result"
PARTIAL = "partial.jsonl"  # segments so far, one JSON object a line, while a job runs
INPUT_STEM = "input"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def staging(self) -> Path:
        return self.root / "tmp"

    @property
    def daemons(self) -> Path:
        return self.root / "daemons"

    @property
    def references(self) -> Path:
        """Reference clips of known speakers that came with HTTP uploads, one folder per
        job id (made when first needed; removed with the job)."""
        return self.root / "references"

    def job(self, job_id: str) -> Path:
        if not valid_job_id(job_id):
            raise ValueError(f"invalid job id {job_id!r}")
        return self.jobs / job_id

    def folders(self) -> list[Path]:
        return [self.inbox, self.jobs, self.staging, self.daemons]

    def ensure(self) -> Layout:
        for d in self.folders():
            d.mkdir(parents=True, exist_ok=True)
        return self


def valid_job_id(job_id: object) -> bool:
    return isinstance(job_id, str) and bool(JOB_ID_RE.match(job_id)) and ".." not in job_id


def new_job_id(now: datetime | None = None) -> str:
    """Sorts by creation time (millisecond UTC prefix); 40 random bits make it unique."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(5)}"


def duplicate_job_id(job_id: str) -> str:
    """Where a drop whose id is taken goes: `ID.dup-XXXXXXXX`, next to the job with that id."""
    return f"{job_id[:114]}.dup-{secrets.token_hex(4)}"


def is_temp_name(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(TEMP_SUFFIXES)


def is_sidecar_name(name: str) -> bool:
    return name.lower().endswith(SIDECAR_SUFFIX)


def input_file_name(original: str) -> str:
    """The input's name inside its job folder: `input` plus a safe extension of the original."""
    ext = os.path.splitext(original)[1].lower()
    return INPUT_STEM + (ext if re.fullmatch(r"\.[a-z0-9]{1,8}", ext) else "")


def printable_name(name: str) -> tuple[str, str | None]:
    """A file name as valid UTF-8 text, plus its exact bytes in hex when it was not.

    POSIX names are bytes; Python hands undecodable ones over with lone surrogates, which
    UTF-8 JSON cannot hold. Such a name is recorded with each undecodable byte written as
    `\\xNN` (readable, and what most tools show), and losslessly as hex of the raw bytes.
    """
    try:
        name.encode("utf-8")
        return name, None
    except UnicodeEncodeError:
        pass
    try:
        raw = os.fsencode(name)  # undecodable bytes from the filesystem come back exactly
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "surrogatepass")  # lone surrogates from a JSON sidecar
    return raw.decode("utf-8", "backslashreplace"), raw.hex()


def log_safe(text: str) -> str:
    """One line of valid text: control characters escaped, undecodable bytes as \\xNN."""
    text = printable_name(text)[0]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


HOST = socket.gethostname()

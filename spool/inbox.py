"""The inbox: when a dropped file is complete, and how it becomes a job.

A file is complete when its name is final (not `.x`, `*.part`, `*.tmp`, `*.partial`, ...) and
one of these holds:
- it was renamed into its final name: an inotify move event, or (when polling) its inode was
  seen under a temporary name in an earlier scan, or its ctime is later than its mtime (a
  rename or link after the last write, when the clock ticked in between);
- its sidecar declares a `size` and the file has exactly that size;
- it has not changed for the settle time (a file written in place).
Close events are not trusted: a writer may close and reopen, and polling and NFS send none.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spool import PROTOCOL_VERSION
from spool.layout import (
    REQUEST,
    SIDECAR,
    Layout,
    input_file_name,
    is_sidecar_name,
    is_temp_name,
    new_job_id,
    utcnow,
    valid_job_id,
)
from spool.status import (
    FAILED,
    QUEUED,
    InputInfo,
    JobError,
    JobStatus,
    write_json_atomic,
    write_status,
)
from whisper_cli.errors import IncompleteInput, InvalidOptions, WtError
from whisper_cli.options import TranscribeOptions

MAX_SIDECAR_BYTES = 64 * 1024
SIDECAR_KEYS = {"id", "name", "size", "options", "metadata"}


@dataclass
class Readiness:
    """Decides, from lstat alone, when an inbox entry may be taken."""

    settle: float
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    renamed: set[str] = field(default_factory=set)  # names that arrived by a move event
    temp_inodes: set[int] = field(default_factory=set)  # inodes seen under temporary names

    def note_scan(self, inbox: Path) -> None:
        """Remember the inodes of temporary names, to recognise them after their rename."""
        inodes = set()
        try:
            with os.scandir(inbox) as entries:
                for entry in entries:
                    if is_temp_name(entry.name):
                        try:
                            inodes.add(entry.inode())
                        except OSError:
                            pass
        except FileNotFoundError:
            pass
        self.temp_inodes = inodes

    def check(
        self, path: Path, now: float | None = None, declared_size: int | None = None
    ) -> tuple[bool, float | None]:
        """(ready, when to look again). Never opens the file."""
        now = time.time() if now is None else now
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.forget(path.name)
            return False, None
        if not stat.S_ISREG(st.st_mode):
            # Symlinks, FIFOs, devices, folders: taken (and refused) once they stop changing.
            return now - st.st_mtime >= self.settle, st.st_mtime + self.settle
        sig = (st.st_size, st.st_mtime_ns)
        previous = self.seen.get(path.name)
        self.seen[path.name] = sig
        if declared_size is not None and st.st_size == declared_size:
            return True, None
        if previous is not None and previous != sig:
            return False, now + self.settle  # still growing
        renamed = (
            path.name in self.renamed
            or st.st_ino in self.temp_inodes
            or st.st_ctime_ns > st.st_mtime_ns
        )
        if renamed or now - st.st_mtime >= self.settle:
            return True, None
        return False, st.st_mtime + self.settle

    def forget(self, name: str) -> None:
        self.seen.pop(name, None)
        self.renamed.discard(name)


def inbox_candidates(layout: Layout) -> list[Path]:
    try:
        names = sorted(os.listdir(layout.inbox))
    except FileNotFoundError:
        return []
    return [layout.inbox / n for n in names if not is_temp_name(n) and not is_sidecar_name(n)]


def find_sidecar(audio: Path) -> Path | None:
    for candidate in (audio.with_name(audio.name + ".json"), audio.with_suffix(".json")):
        if candidate != audio and os.path.lexists(candidate):
            return candidate
    return None


@dataclass
class Sidecar:
    job_id: str | None = None
    name: str | None = None
    size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def read_sidecar(path: Path) -> Sidecar:
    """Parse a sidecar without trusting it: bounded size, a regular file, known keys only."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return Sidecar(error=f"sidecar {path.name} is not a regular file")
        if st.st_size > MAX_SIDECAR_BYTES:
            return Sidecar(error=f"sidecar {path.name} is larger than {MAX_SIDECAR_BYTES} bytes")
        with open(path, "rb") as fh:
            data = json.loads(fh.read(MAX_SIDECAR_BYTES + 1))
    except (OSError, ValueError) as exc:
        return Sidecar(error=f"sidecar {path.name} is not valid JSON ({exc})")
    if not isinstance(data, dict):
        return Sidecar(error=f"sidecar {path.name} must be a JSON object")
    unknown = sorted(set(data) - SIDECAR_KEYS)
    job_id, name, size = data.get("id"), data.get("name"), data.get("size")
    options, metadata = data.get("options", {}), data.get("metadata", {})
    if unknown:
        known = ", ".join(sorted(SIDECAR_KEYS))
        error = f"unknown sidecar key(s): {', '.join(unknown)} (known: {known})"
    elif job_id is not None and not valid_job_id(job_id):
        error = (
            "sidecar id must be 1-128 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    elif name is not None and not (isinstance(name, str) and 0 < len(name) <= 1024):
        error = "sidecar name must be a non-empty string"
    elif size is not None and (type(size) is not int or size < 0):
        error = "sidecar size must be a whole number of bytes"
    elif not isinstance(options, dict) or not isinstance(metadata, dict):
        error = "sidecar options and metadata must be JSON objects"
    else:
        return Sidecar(job_id, name, size, options, metadata)
    return Sidecar(error=error)


def intake(
    layout: Layout, path: Path, defaults: TranscribeOptions, max_input_bytes: int, settle: float
) -> str | None:
    """Move a complete inbox entry into a new job folder. Returns the job id, or None when
    another daemon took the file first or its sidecar is still being written."""
    sidecar_path = find_sidecar(path)
    sidecar = read_sidecar(sidecar_path) if sidecar_path else Sidecar()
    if sidecar.error and sidecar_path and _recent(sidecar_path, settle):
        return None  # probably still being written: look again later
    error: WtError | None = None
    job_id = new_job_id()
    if sidecar.error:
        error = InvalidOptions(sidecar.error, "see the README's spool protocol section")
    elif sidecar.size is not None and _size(path) != sidecar.size:
        error = IncompleteInput(
            f"{sidecar.name or path.name}: has {_size(path)} bytes, its sidecar declares "
            f"{sidecar.size}",
            "the upload was cut short; send the file again",
        )
    elif sidecar.job_id:
        if os.path.lexists(layout.jobs / sidecar.job_id) or os.path.lexists(
            layout.staging / sidecar.job_id
        ):
            error = InvalidOptions(
                f"job id {sidecar.job_id!r} is already in use",
                "submit with a new id, or none to get one generated",
            )
        else:
            job_id = sidecar.job_id
    options: dict[str, Any] = defaults.to_dict()
    if error is None:
        try:
            options = TranscribeOptions.from_mapping(sidecar.options, defaults).to_dict()
        except InvalidOptions as exc:
            error = exc
    original = sidecar.name or path.name
    staging = layout.staging / job_id
    try:
        staging.mkdir()
    except FileExistsError:
        return None  # a concurrent intake of the same client id; it will fail one of them
    request = {
        "protocol": PROTOCOL_VERSION,
        "job_id": job_id,
        "input": {"name": original, "file": input_file_name(original)},
        "options": options,
        "metadata": sidecar.metadata,
        "submitted_at": utcnow(),
        "error": {"type": error.kind, "message": str(error)} if error else None,
    }
    # request.json goes in first so a crash at any later point can be finished by anyone.
    write_json_atomic(staging / REQUEST, request)
    try:
        os.rename(path, staging / request["input"]["file"])
    except FileNotFoundError:
        shutil.rmtree(staging, ignore_errors=True)
        return None  # another daemon took it
    if sidecar_path is not None:
        try:
            os.rename(sidecar_path, staging / SIDECAR)
        except FileNotFoundError:
            pass
    finish_intake(layout, staging, max_input_bytes)
    return job_id


def finish_intake(layout: Layout, staging: Path, max_input_bytes: int) -> None:
    """Write the first status and publish the job folder under jobs/ (idempotent)."""
    request = json.loads((staging / REQUEST).read_text())
    input_path = staging / request["input"]["file"]
    st = os.lstat(input_path)
    error = request.get("error")
    if error is None:
        error = _refusal(st, request["input"]["name"], max_input_bytes)
    status = JobStatus(
        job_id=request["job_id"],
        state=QUEUED,
        input=InputInfo(request["input"]["name"], request["input"]["file"], st.st_size),
        options=request["options"],
        metadata=request["metadata"],
        created_at=request["submitted_at"],
    )
    if error is not None:
        status.advance(FAILED, error=JobError(**error))
    write_status(staging, status)
    try:
        os.rename(staging, layout.jobs / request["job_id"])
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        # A job of that id was published meanwhile (a racing duplicate client id):
        # keep this one under a fresh id rather than lose it.
        new_id = new_job_id()
        request["job_id"] = status.job_id = new_id
        status.advance(FAILED, error=JobError("invalid_options", "job id already in use"))
        write_json_atomic(staging / REQUEST, request)
        write_status(staging, status)
        os.rename(staging, layout.jobs / new_id)


def _refusal(st: os.stat_result, name: str, max_input_bytes: int) -> dict | None:
    kind = "input_refused"
    if stat.S_ISLNK(st.st_mode):
        return {
            "type": kind,
            "message": f"{name}: is a symbolic link; links are never followed "
            "(copy or move the file itself into the inbox)",
        }
    if not stat.S_ISREG(st.st_mode):
        what = (
            "a folder"
            if stat.S_ISDIR(st.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a device or socket"
        )
        return {
            "type": kind,
            "message": f"{name}: is {what}, not a regular file (drop audio files only)",
        }
    if st.st_size > max_input_bytes:
        return {
            "type": kind,
            "message": f"{name}: {st.st_size} bytes is over the limit of "
            f"{max_input_bytes} bytes (raise the daemon's --max-input-size or split it)",
        }
    return None


def recover_staging(layout: Layout, max_input_bytes: int, older_than: float = 30.0) -> int:
    """Finish intakes that a killed daemon left half-done in tmp/. Returns how many."""
    count = 0
    now = time.time()
    for staging in sorted(layout.staging.iterdir()) if layout.staging.is_dir() else []:
        try:
            if not staging.is_dir() or now - staging.stat().st_mtime < older_than:
                continue
            request = json.loads((staging / REQUEST).read_text())
            if os.path.lexists(staging / request["input"]["file"]):
                finish_intake(layout, staging, max_input_bytes)
                count += 1
            else:
                shutil.rmtree(staging)  # the input never left the inbox
        except FileNotFoundError:
            shutil.rmtree(staging, ignore_errors=True)  # no request: nothing was moved yet
        except (OSError, ValueError, KeyError):
            continue
    return count


def _size(path: Path) -> int:
    return os.lstat(path).st_size


def _recent(path: Path, settle: float) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime < settle
    except FileNotFoundError:
        return False

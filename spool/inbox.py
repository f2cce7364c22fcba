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

import contextlib
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
    CANCEL,
    REQUEST,
    SIDECAR,
    STATUS,
    UNUSED_SIDECAR,
    Layout,
    duplicate_job_id,
    input_file_name,
    is_sidecar_name,
    is_temp_name,
    new_job_id,
    printable_name,
    utcnow,
)
from spool.sidecars import (  # noqa: F401 (the inbox's public names)
    MAX_SIDECAR_BYTES,
    NO_AUDIO,
    SHARED_STEM,
    SIDECAR_KEYS,
    OrphanSidecar,
    Sidecar,
    _shared_stem_sidecar,
    _sidecar_forms,
    _sole_file_of_stem,
    find_sidecar,
    orphan_sidecars,
    read_sidecar,
    spare_sidecar,
)
from spool.status import (
    CANCELED,
    FAILED,
    QUEUED,
    InputInfo,
    JobError,
    JobStatus,
    write_json_atomic,
    write_status,
)
from spool.webhooks import new_notify
from whisper_cli.errors import IncompleteInput, InvalidOptions, WtError
from whisper_cli.options.transcribe_options import TranscribeOptions


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


def intake_orphan(
    layout: Layout, sidecar_path: Path, max_input_bytes: int, why: str = NO_AUDIO
) -> str | None:
    """A sidecar no file can use becomes a failed job under its id, the sidecar kept as
    the job's input, so the client sees what happened."""
    sidecar = read_sidecar(sidecar_path)
    job_id, error = _choose_job_id(layout, sidecar.job_id)
    name = printable_name(sidecar_path.name)[0]
    if error is None:
        error = OrphanSidecar(
            f"{name}: {why}",
            "name the sidecar NAME.EXT.json after its audio file NAME.EXT, and drop both",
        )
    entry = {"name": name, "file": SIDECAR}
    staging = _stage(layout, _request(job_id, entry, {}, sidecar.metadata, error), sidecar_path)
    if staging is None:
        return None  # its audio arrived and took it, or another daemon did
    finish_intake(layout, staging, max_input_bytes)
    return job_id


def intake(
    layout: Layout, path: Path, defaults: TranscribeOptions, max_input_bytes: int, settle: float
) -> str | None:
    """Move a complete inbox entry into a new job folder. Returns the job id, or None when
    another daemon is taking the file or its sidecar is still being written.

    The client's id is honoured whatever else is wrong with the drop, so a client waiting
    on its id always finds its job; only an id already taken by another job is not.
    """
    sidecar_path, spare = find_sidecar(path), spare_sidecar(path)
    sidecar = read_sidecar(sidecar_path) if sidecar_path else Sidecar()
    if sidecar.error and sidecar_path and _recent(sidecar_path, settle):
        return None  # probably still being written: look again later
    name, name_hex = printable_name(sidecar.name or path.name)
    job_id, error = _choose_job_id(layout, sidecar.job_id)
    if error is None and sidecar.error:
        error = InvalidOptions(sidecar.error, "see docs/spool.md: Sidecars")
    if error is None and sidecar.size is not None:
        try:
            actual = _size(path)
        except FileNotFoundError:
            return None  # another daemon took it
        if actual != sidecar.size:
            error = _size_mismatch(name, actual, sidecar.size)
    options: dict[str, Any] = defaults.to_dict()
    if error is None:
        try:
            options = TranscribeOptions.from_mapping(sidecar.options, defaults).to_dict()
        except InvalidOptions as exc:
            error = exc
    entry: dict[str, Any] = {"name": name, "file": input_file_name(name)}
    if name_hex:
        entry["name_hex"] = name_hex
    request = _request(job_id, entry, options, sidecar.metadata, error, sidecar.notify)
    staging = _stage(layout, request, path)
    if staging is None:
        return None
    if sidecar_path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.rename(sidecar_path, staging / SIDECAR)
    if spare is not None:
        with contextlib.suppress(FileNotFoundError):
            os.rename(spare, staging / UNUSED_SIDECAR)
    finish_intake(layout, staging, max_input_bytes)
    shared = _shared_stem_sidecar(path)
    if shared is not None:
        # Its owner cannot be told, and waiting would only hand it to whichever file is
        # left last: it fails now, visibly, under its id.
        intake_orphan(layout, shared, max_input_bytes, SHARED_STEM)
    return job_id


def _request(
    job_id: str,
    entry: dict[str, Any],
    options: dict[str, Any],
    metadata: dict[str, Any],
    error: WtError | None,
    notify: str | None = None,
) -> dict[str, Any]:
    """request.json: what a half-done intake needs to be finished by any daemon."""
    return {
        "notify": notify,
        "protocol": PROTOCOL_VERSION,
        "job_id": job_id,
        "input": entry,
        "options": options,
        "metadata": metadata,
        "submitted_at": utcnow(),
        "error": {"type": error.kind, "message": str(error)} if error else None,
    }


def _stage(layout: Layout, request: dict[str, Any], source: Path) -> Path | None:
    """Make tmp/ID with request.json, then move `source` in as the job's input file.
    None when another daemon is taking it (or a drop with the same id) right now."""
    staging = layout.staging / request["job_id"]
    try:
        staging.mkdir()
    except FileExistsError:
        return None
    try:
        # request.json goes in first so a crash at any later point can be finished by anyone.
        write_json_atomic(staging / REQUEST, request)
        os.rename(source, staging / request["input"]["file"])
    except FileNotFoundError:
        shutil.rmtree(staging, ignore_errors=True)
        return None  # another daemon took it
    except OSError:
        # Nothing was taken (a full disk, an inbox this daemon may not change): leave no
        # staging folder behind, so retries do not pile them up.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def _choose_job_id(layout: Layout, wanted: str | None) -> tuple[str, WtError | None]:
    """The client's id when it is free; an id in use gives a failed job under
    `ID.dup-XXXXXXXX`, next to the job that holds the id, so neither is mistaken for the
    other. A folder holding only a cancel marker is an early cancel, not a job."""
    if not wanted:
        return new_job_id(), None
    existing = layout.jobs / wanted
    if not os.path.lexists(existing) or _early_cancel(existing):
        return wanted, None
    return duplicate_job_id(wanted), InvalidOptions(
        f"job id {wanted!r} is already in use by another job (its folder jobs/{wanted} is "
        "that job's, not this drop's)",
        "submit with a new id, or none to get one generated",
    )


def _early_cancel(job_dir: Path) -> bool:
    """A cancel marker made before its job existed (canceling an upload in flight)."""
    return os.path.lexists(job_dir / CANCEL) and not os.path.lexists(job_dir / STATUS)


def _size_mismatch(name: str, actual: int, declared: int) -> IncompleteInput:
    if actual < declared:
        return IncompleteInput(
            f"{name}: has {actual} bytes, its sidecar declares {declared}: the upload was "
            "cut short",
            "send the file again",
        )
    return IncompleteInput(
        f"{name}: has {actual} bytes, more than the {declared} its sidecar declares (written "
        "to after it was complete, or the wrong size declared)",
        "declare the file's final size, or write it under a temporary name and rename it",
    )


def finish_intake(layout: Layout, staging: Path, max_input_bytes: int) -> None:
    """Write the first status and publish the job folder under jobs/ (idempotent)."""
    request = json.loads((staging / REQUEST).read_text())
    entry = request["input"]
    st = os.lstat(staging / entry["file"])
    error = request.get("error")
    if error is None:
        error = _refusal(st, entry["name"], max_input_bytes)
    status = JobStatus(
        job_id=request["job_id"],
        state=QUEUED,
        input=InputInfo(entry["name"], entry["file"], st.st_size, entry.get("name_hex")),
        options=request["options"],
        metadata=request["metadata"],
        created_at=request["submitted_at"],
        notify=new_notify(request.get("notify")),
    )
    if error is not None:
        status.advance(FAILED, error=JobError(**error))
    _publish(layout, staging, request, status)


def _publish(layout: Layout, staging: Path, request: dict, status: JobStatus) -> None:
    """Rename the staged job into jobs/ under its id. An early cancel marker waiting there
    makes it a canceled job; a job already there sends this one to a duplicate id."""
    target = layout.jobs / status.job_id
    for _ in range(3):
        if _early_cancel(target):
            if not status.terminal:
                status.advance(CANCELED)
            write_status(staging, status)
            with contextlib.suppress(FileNotFoundError):
                os.rename(target / CANCEL, staging / CANCEL)
            with contextlib.suppress(OSError):
                os.rmdir(target)
        else:
            write_status(staging, status)
        try:
            os.rename(staging, target)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if not _early_cancel(target):
            break
    # A job of that id was published meanwhile (a racing duplicate client id).
    new_id = duplicate_job_id(status.job_id)
    message = f"job id {status.job_id!r} is already in use by another job"
    request["job_id"] = status.job_id = new_id
    if not status.terminal:
        status.advance(FAILED, error=JobError("invalid_options", message))
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

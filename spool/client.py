"""submit / status / cancel / wait / result / clean: the spool protocol for scripts and the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from spool.claims import Claim, release, try_claim
from spool.heartbeat import Heartbeat, is_alive, read_heartbeats
from spool.inbox import inbox_candidates
from spool.layout import (
    CANCEL,
    PARTIAL,
    RESULT_STEM,
    STATUS,
    Layout,
    new_job_id,
    parse_time,
    valid_job_id,
)
from spool.permissions import adopt
from spool.sidecars import notify_url_problem
from spool.status import (
    CANCELED,
    QUEUED,
    STATES,
    JobStatus,
    read_status,
    write_json_atomic,
    write_status,
)
from whisper_cli.errors import InputNotFound, InvalidOptions, WtError
from whisper_cli.options.transcribe_options import TranscribeOptions


@dataclass
class Drop:
    """A drop in the making: the audio goes to `tmp` (hidden from daemons: a dot name ending
    in .part), then commit writes the sidecar and renames the audio into the inbox."""

    inbox: Path
    job_id: str
    name: str
    final: Path
    tmp: Path

    @property
    def sidecar(self) -> Path:
        return self.final.with_name(self.final.name + ".json")

    def commit(
        self,
        options: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        notify: str | None = None,
    ) -> str:
        if options:
            TranscribeOptions.from_mapping(options)
        if notify is not None and (problem := notify_url_problem(notify)):
            raise InvalidOptions(f"notify: {problem}", "give the URL to call when the job ends")
        sidecar = {
            "id": self.job_id,
            "name": self.name,
            # Declared so that any daemon, polling ones included, takes the file the moment
            # it is complete (a copy renamed within one clock tick looks written in place).
            "size": self.tmp.stat().st_size,
            "options": options or {},
            "metadata": metadata or {},
        }
        if notify:
            sidecar["notify"] = notify
        write_json_atomic(self.sidecar, sidecar)
        os.rename(self.tmp, self.final)
        return self.job_id

    def abort(self) -> None:
        """Nothing of an unfinished drop stays behind."""
        with contextlib.suppress(OSError):
            self.tmp.unlink(missing_ok=True)
            if not self.final.exists():
                self.sidecar.unlink(missing_ok=True)

    @contextlib.contextmanager
    def kept_on_success(self):
        """Aborts the drop when the block fails (a permission error said plainly)."""
        try:
            yield self
        except BaseException as exc:
            self.abort()
            if (
                isinstance(exc, PermissionError)
                and exc.filename
                and str(exc.filename).startswith(str(self.inbox))
            ):
                raise not_permitted(self.inbox, exc) from None
            raise


class SpoolError(WtError):
    kind = "spool_error"


class JobNotFound(SpoolError):
    kind = "job_not_found"


class NotCompleted(SpoolError):
    kind = "not_completed"


class NotTaken(NotCompleted):
    """Submitted, but still on its way into jobs/ (no daemon has taken it yet)."""


class NoSuchResult(SpoolError):
    kind = "no_such_result"


def not_permitted(folder: Path, exc: OSError) -> SpoolError:
    """One line for a spool this user may not write: the folder, who, and the fix."""
    return SpoolError(
        f"{folder}: this user (uid {os.getuid()}) may not write here ({exc.strerror})",
        "share the spool with a group this user is in: `wt daemon --group GROUP` "
        "(docs/spool.md: Sharing a spool between users)",
    )


@dataclass(frozen=True)
class SpoolCounts:
    states: dict[str, int]  # jobs in jobs/ by state, every state listed
    waiting: int  # files in the inbox not yet taken by a daemon

    @property
    def queue_depth(self) -> int:
        """Jobs waiting for a worker: queued jobs plus files not yet taken."""
        return self.states[QUEUED] + self.waiting


@dataclass(frozen=True)
class Spool:
    root: Path

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    def check(self) -> Spool:
        if not self.layout.inbox.is_dir() or not self.layout.jobs.is_dir():
            raise SpoolError(
                f"{self.root}: not a wt spool (no inbox/ and jobs/)",
                "start `wt daemon --spool DIR` once, or check --spool / $WT_SPOOL",
            )
        adopt(self.root)  # a shared spool: what we drop must be group-writable
        return self

    # ---- submit ----------------------------------------------------------------------
    def submit(
        self,
        audio: Path,
        options: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        job_id: str | None = None,
        move: bool = False,
        link: bool = False,
        notify: str | None = None,
    ) -> str:
        """Enqueue a file. It is copied by default: a hard link would share the file with
        the caller, and an edit in place of the original would change the job's input."""
        if not audio.is_file():
            raise InputNotFound(f"{audio}: no such file", "check the path")

        def put(tmp: Path) -> None:
            if move:
                try:
                    os.rename(audio, tmp)
                    return
                except OSError:
                    shutil.copyfile(audio, tmp)
                    audio.unlink()
            elif link:
                try:
                    os.link(audio, tmp)  # same filesystem: no copy at all
                except OSError:
                    shutil.copyfile(audio, tmp)
            else:
                shutil.copyfile(audio, tmp)

        return self.deliver(put, audio.name, options, metadata, job_id, notify)

    def deliver(
        self,
        put: Callable[[Path], None],
        name: str,
        options: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        job_id: str | None = None,
        notify: str | None = None,
    ) -> str:
        """The one way wt produces a drop: `put` writes the audio under a temporary name in
        the inbox, the sidecar (with the client's id and the size) follows, and a rename
        makes the drop, complete, for any daemon."""
        if options:
            TranscribeOptions.from_mapping(options)  # refuse here what the daemon would refuse
        drop = self.open_drop(name, job_id)
        with drop.kept_on_success():
            put(drop.tmp)
            return drop.commit(options, metadata, notify)

    def open_drop(self, name: str, job_id: str | None = None) -> Drop:
        """A drop to write into (Drop.tmp), for producers that learn the options only after
        the audio (a streamed upload); nothing is visible to a daemon until Drop.commit."""
        job_id = job_id or new_job_id()
        if not valid_job_id(job_id):
            raise SpoolError(
                f"invalid job id {job_id!r}", "use 1-128 letters, digits, '.', '_' or '-'"
            )
        layout = self.check().layout
        if os.path.lexists(layout.jobs / job_id / STATUS):
            raise SpoolError(f"job {job_id} already exists", "choose another --id")
        ext = "".join(c for c in os.path.splitext(name)[1].lower() if c.isalnum() or c == ".")
        final = layout.inbox / f"{job_id}{ext[:9]}"
        return Drop(layout.inbox, job_id, name, final, layout.inbox / f".{final.name}.part")

    # ---- read ------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        if not valid_job_id(job_id):
            raise JobNotFound(f"invalid job id {job_id!r}")
        return self.layout.job(job_id)

    def status(self, job_id: str) -> JobStatus:
        status = read_status(self.job_dir(job_id))
        if status is None:
            if self.in_flight(job_id):
                status = read_status(self.job_dir(job_id))  # it may have just arrived
            if status is not None:
                return status
            if self.in_flight(job_id):
                raise NotTaken(
                    f"job {job_id} is in the inbox, not yet taken by a daemon",
                    "is `wt daemon` running? see `wt health`",
                )
            raise JobNotFound(f"no job {job_id} in {self.root}", "list jobs with `wt status`")
        return status

    def in_flight(self, job_id: str) -> bool:
        """Whether a drop with this id is on its way to jobs/, or has just arrived there.

        A drop moves inbox -> tmp/<id> -> jobs/<id>, each step an atomic rename. Looking in
        that same order means a drop that moves on while we look is found at a later stop,
        never missed between two of them.
        """
        layout = self.layout
        return (
            any(layout.inbox.glob(f"{glob_escape(job_id)}.*"))
            or os.path.lexists(layout.staging / job_id)
            or os.path.lexists(layout.jobs / job_id / STATUS)
        )

    def partial_segments(self, job_id: str) -> list[dict[str, Any]]:
        """The segments a running job has decoded so far (its partial.jsonl)."""
        try:
            text = (self.job_dir(job_id) / PARTIAL).read_text(encoding="utf-8")
        except (FileNotFoundError, JobNotFound):
            return []
        lines = text.split("\n")[:-1]  # the last piece may be a line still being written
        return [json.loads(line) for line in lines if line]

    def jobs(self) -> list[JobStatus]:
        out = []
        for d in sorted(self.check().layout.jobs.iterdir()):
            try:
                status = read_status(d)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if status is not None:
                out.append(status)
        return out

    def counts(self) -> SpoolCounts:
        states = dict.fromkeys(STATES, 0)
        for status in self.jobs():
            states[status.state] = states.get(status.state, 0) + 1
        return SpoolCounts(states, len(inbox_candidates(self.layout)))

    def result(self, job_id: str, fmt: str = "txt") -> Path:
        status = self.status(job_id)
        if status.state != "completed":
            raise NotCompleted(
                f"job {job_id} is {status.state}, not completed", f"wait for it: wt wait {job_id}"
            )
        path = self.job_dir(job_id) / f"{RESULT_STEM}.{fmt}"
        if not path.is_file():
            raise NoSuchResult(
                f"job {job_id} has no {fmt} result",
                f"it was submitted with formats {status.options['output_formats']}",
            )
        return path

    # ---- act -------------------------------------------------------------------------
    def cancel(self, job_id: str) -> JobStatus | None:
        """Create the cancel marker; a queued job is canceled here and now. A drop still on
        its way (in the inbox or being taken) gets the marker early and becomes a canceled
        job when it arrives; returns None then."""
        job_dir = self.job_dir(job_id)
        try:
            status = self.status(job_id)
        except NotTaken:
            try:
                job_dir.mkdir(exist_ok=True)
                (job_dir / CANCEL).touch()
            except PermissionError as exc:
                raise not_permitted(Path(exc.filename or job_dir).parent, exc) from None
            return read_status(job_dir)
        if status.terminal:
            return status  # canceling a finished job changes nothing
        try:
            (job_dir / CANCEL).touch()
        except PermissionError as exc:
            raise not_permitted(job_dir, exc) from None
        if status.state == QUEUED and try_claim(job_dir, Claim.mine(f"client-{os.getpid()}")):
            try:
                current = read_status(job_dir)
                if current is not None and current.state == QUEUED:
                    write_status(job_dir, current.advance(CANCELED))
            finally:
                release(job_dir)
        return self.status(job_id)

    def wait(self, job_id: str, timeout: float | None = None, interval: float = 0.2) -> JobStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                status = self.status(job_id)
                if status.terminal:
                    return status
            except NotTaken:
                pass
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(job_id)
            time.sleep(interval)

    def clean(self, older_than_seconds: float, dry_run: bool = False) -> list[str]:
        """Remove finished jobs whose finished_at is older than the given age."""
        now = datetime.now(timezone.utc)
        removed = []
        for status in self.jobs():
            if not status.terminal or not status.finished_at:
                continue
            if (now - parse_time(status.finished_at)).total_seconds() < older_than_seconds:
                continue
            if not dry_run:
                refused: list[OSError] = []
                shutil.rmtree(
                    self.layout.jobs / status.job_id,
                    onerror=lambda _f, _p, info, refused=refused: refused.append(info[1]),
                )
                if (self.layout.jobs / status.job_id).exists():
                    # Say which job could not go, rather than report it gone.
                    exc = next((e for e in refused if isinstance(e, PermissionError)), None)
                    if exc is not None:
                        raise not_permitted(Path(exc.filename).parent, exc)
                    continue  # removed in part meanwhile by someone else, or being written
                shutil.rmtree(self.layout.references / status.job_id, ignore_errors=True)
            removed.append(status.job_id)
        return removed

    def purge(self, job_id: str) -> Path:
        """Remove a finished job's folder: its input audio, results and status."""
        status = self.status(job_id)  # JobNotFound / NotTaken
        if not status.terminal:
            raise NotCompleted(
                f"job {job_id} is {status.state}: only a finished job is removed",
                "cancel it first, then remove it once it is canceled",
            )
        job_dir = self.job_dir(job_id)
        shutil.rmtree(job_dir, ignore_errors=True)
        shutil.rmtree(self.layout.references / job_id, ignore_errors=True)
        if job_dir.exists():
            raise SpoolError(f"{job_dir}: could not be removed", "check the folder's permissions")
        return job_dir

    def daemons(self) -> list[tuple[Heartbeat, bool]]:
        return [(b, is_alive(b)) for b in read_heartbeats(self.check().layout)]

    def live_daemons(self, host: str | None = None) -> list[Heartbeat]:
        """Daemons that serve the spool now: alive, accepting, and able to work (a daemon
        that cannot take files or write statuses says so in its heartbeat's `problem`)."""
        return [
            b
            for b, alive in self.daemons()
            if alive and b.accepting and not b.problem and (host is None or b.host == host)
        ]


def parse_duration(text: str) -> float:
    """'90s', '15m', '12h', '7d', '2w' or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise SpoolError(f"cannot read duration {text!r}", "use e.g. 90s, 15m, 12h, 7d") from None


def status_json(status: JobStatus) -> str:
    return json.dumps(status.to_dict(), ensure_ascii=False, indent=2)

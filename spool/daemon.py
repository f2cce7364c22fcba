"""The spool daemon: a supervisor process that takes files from the inbox, claims jobs and
hands them to worker processes, which keep models loaded between jobs.

A crash or out-of-memory kill of a worker fails the job it ran; a worker running several
jobs side by side (--max-batch) takes them all down, and each is requeued to run alone, so
the one that crashed it fails and its batch-mates complete. The supervisor starts a new
worker and carries on. Workers die with the supervisor (PR_SET_PDEATHSIG), and a restarted
daemon takes back the claims of a dead one, so every job ends in a final state exactly once.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from rich.markup import escape

from spool.claims import Claim, release, take_back_if_dead, try_claim
from spool.heartbeat import (
    BEAT_SECONDS,
    STALE_SECONDS,
    Heartbeat,
    cleanup_dead_beats,
    new_daemon_id,
    remove_heartbeat,
    write_heartbeat,
)
from spool.inbox import (
    Readiness,
    find_sidecar,
    inbox_candidates,
    intake,
    intake_orphan,
    orphan_sidecars,
    read_sidecar,
    recover_staging,
)
from spool.layout import CANCEL, CLAIM, HOST, REQUEST, Layout, log_safe, utcnow
from spool.metrics import DaemonMetrics
from spool.permissions import adopt, make_shared
from spool.status import (
    CANCELED,
    FAILED,
    PROCESSING,
    QUEUED,
    JobError,
    JobStatus,
    Progress,
    Worker,
    read_status,
    write_status,
)
from spool.worker import worker_main
from whisper_cli import __version__
from whisper_cli.audio import probe_duration
from whisper_cli.batching import CPU_REPLICAS
from whisper_cli.errors import WtError
from whisper_cli.options import TranscribeOptions

CREATE_GRACE = 0.05  # seconds to wait for an open event after a create event
NO_EVENT_FILESYSTEMS = {
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "fuse.sshfs",
    "9p",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "davfs",
    "fuse.s3fs",
    "fuse.rclone",
}


@dataclass
class DaemonConfig:
    spool: Path
    defaults: TranscribeOptions
    workers: int = 1
    poll: bool = False
    poll_interval: float = 1.0
    settle: float = 2.0
    max_input_bytes: int = 4 * 1024**3
    max_jobs_per_worker: int = 0
    model_ttl: float = 0.0
    cancel_grace: float = 5.0
    shutdown_timeout: float = 30.0
    stale_seconds: float = STALE_SECONDS
    max_attempts: int = 3
    log_format: str = "text"
    orphan_sidecar_after: float = 3600.0
    group: str | None = None  # share the spool with this group (setgid, group-writable)
    metrics_port: int | None = None
    metrics_address: str = "0.0.0.0"
    max_batch: int = 1  # jobs one worker runs side by side, sharing batched decoding


@dataclass
class WorkerSlot:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    jobs: list[str] = field(default_factory=list)
    alone: bool = False  # its job must have no batch-mates
    cancel_seen: dict[str, float] = field(default_factory=dict)
    served: bool = False  # it said ready once: a later death is not a failure to start
    retired: bool = False  # it takes no more jobs and exits when its jobs are done


class Log:
    """One line per job state change: human text on stderr, or JSON lines for shippers."""

    def __init__(self, fmt: str) -> None:
        self.json = fmt == "json"
        if not self.json:
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False, soft_wrap=True)

    def __call__(self, event: str, job: str | None = None, **fields: Any) -> None:
        if self.json:
            fields = {k: log_safe(v) if isinstance(v, str) else v for k, v in fields.items()}
            record = {"time": utcnow(), "event": event, **({"job": job} if job else {}), **fields}
            print(json.dumps(record, ensure_ascii=False), file=sys.stderr, flush=True)
            return
        style = {"completed": "green", "failed": "red", "canceled": "yellow"}.get(event, "")
        # One line per event whatever a file is called: control characters and undecodable
        # bytes escaped, and square brackets not read as markup.
        extra = " ".join(
            f"{k}={escape(log_safe(str(v)))}" for k, v in fields.items() if v is not None
        )
        head = f"[{style}]{event:<10}[/{style}]" if style else f"{event:<10}"
        self.console.print(
            f"{datetime.now():%H:%M:%S} {head} {job or ''} {extra}".rstrip(), markup=True
        )


def filesystem_sends_events(path: Path) -> bool:
    """False on network filesystems, where inotify misses changes made by other hosts."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return True
    real = str(path.resolve())
    best, fstype = "", ""
    for line in mounts:
        parts = line.split()
        if (
            len(parts) >= 3
            and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/"))
            and len(parts[1]) > len(best)
        ):
            best, fstype = parts[1], parts[2]
    return fstype not in NO_EVENT_FILESYSTEMS


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.cfg = config
        self.layout = Layout(config.spool)
        self.log = Log(config.log_format)
        self.id = new_daemon_id()
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        # Names that appeared without being opened for writing: linked or moved in from
        # another folder (sftp's link+unlink, mv), so complete. Decided after CREATE_GRACE.
        self.created: dict[str, float] = {}
        # The observer thread writes a byte here so the loop can wait on inbox events and
        # worker messages at once, and react to either without a polling delay.
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.readiness = Readiness(config.settle)
        self.recheck: dict[str, float] = {}
        self.pending: set[str] = set()
        self.finished: set[str] = set()
        # Jobs whose worker died while it ran them with batch-mates: the next attempt runs
        # alone, so only the job that crashed the worker fails.
        self.solo: set[str] = set()
        self.runs_alone: dict[str, bool] = {}
        self.slots: list[WorkerSlot] = []
        self.stopping = False
        self.stop_deadline = 0.0
        self.jobs_done = 0
        self.ctx = multiprocessing.get_context("spawn")
        self.observer = None
        self.beat: Heartbeat | None = None
        self.timers: dict[str, float] = {}
        # Final writes a job is owed that failed (a full disk): retried every turn, with the
        # claim held until they succeed, so the job is neither lost nor left to a dead worker.
        self.owed: dict[str, Any] = {}
        self.troubles: dict[str, str] = {}  # step -> what keeps failing there
        self.spawn_failures = 0
        self.next_spawn = 0.0
        self.metrics = DaemonMetrics(self.layout)
        self.metrics.running.set_function(lambda: len(self._running()))
        self.metrics.workers.set_function(
            lambda: sum(1 for s in list(self.slots) if s.process.is_alive())
        )

    # ---- lifecycle -------------------------------------------------------------------
    def run(self) -> int:
        self._check_spool()
        if self.cfg.metrics_port is not None:
            self._serve_metrics()  # before the heartbeat: a daemon that cannot start says nothing
        polling = self.cfg.poll or not filesystem_sends_events(self.layout.root)
        self.beat = Heartbeat(
            self.id,
            HOST,
            os.getpid(),
            __version__,
            utcnow(),
            workers=self.cfg.workers,
            watch="poll" if polling else "inotify",
            models=local_models(self.cfg.defaults.model),
        )
        write_heartbeat(self.layout, self.beat)
        self.metrics.info.info(
            {
                "id": self.id,
                "host": HOST,
                "workers": str(self.cfg.workers),
                "watch": self.beat.watch,
            }
        )
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if not polling:
            self._start_observer()
        self.log(
            "started",
            None,
            daemon=self.id,
            spool=str(self.layout.root),
            workers=self.cfg.workers,
            watch=self.beat.watch,
        )
        recovered = recover_staging(self.layout, self.cfg.max_input_bytes, older_than=0)
        if recovered:
            self.log("recovered", None, intakes=recovered)
        for _ in range(self.cfg.workers):
            self.slots.append(self._spawn())
        try:
            self._loop(polling)
        finally:
            self._shutdown()
        return 0

    def _check_spool(self) -> None:
        """Refuse to start, in one line, on a spool this daemon cannot use."""
        root = self.layout.root
        adopt(root)  # before creating folders in a shared spool, so they are group-writable
        try:
            self.layout.ensure()
            if self.cfg.group is not None:
                make_shared([root, *self.layout.folders()], self.cfg.group)
                adopt(root)
        except OSError as exc:
            raise SpoolUnusable(
                f"{exc.filename or self.layout.root}: cannot create the spool folders "
                f"({exc.strerror})",
                "run the daemon as the spool's owner, or give its user write access "
                "(see README: spool permissions)",
            ) from None
        for folder in (self.layout.jobs, self.layout.staging, self.layout.daemons):
            if not os.access(folder, os.W_OK | os.X_OK):
                raise SpoolUnusable(
                    f"{folder}: this daemon (uid {os.getuid()}) may not write here",
                    "run the daemon as the spool's owner, or give its user write access "
                    "(see README: spool permissions)",
                )

    def _serve_metrics(self) -> None:
        try:
            self.metrics.serve(self.cfg.metrics_port or 0, self.cfg.metrics_address)
        except OSError as exc:
            raise SpoolUnusable(
                f"--metrics-port {self.cfg.metrics_port}: cannot listen ({exc.strerror})",
                "choose a free port, or leave --metrics-port out",
            ) from None

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.stopping:  # a second signal: stop now, requeueing what runs
            self.stop_deadline = 0.0
            return
        self.stopping = True
        self.stop_deadline = time.monotonic() + self.cfg.shutdown_timeout
        self.log(
            "stopping",
            None,
            signal=signal.Signals(signum).name,
            running=len(self._running()),
        )

    def _start_observer(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        events = self.events
        inbox = os.fsencode(self.layout.inbox)
        wake = self.wake_w

        def put(item: tuple[str, str]) -> None:
            events.put(item)
            try:
                os.write(wake, b"\0")
            except BlockingIOError:
                pass  # the pipe is full: the loop is already due to wake

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.is_directory:
                    return
                src = os.fsencode(event.src_path)
                dest = os.fsencode(getattr(event, "dest_path", "") or b"")
                if event.event_type == "moved" and os.path.dirname(dest) == inbox:
                    put(("moved", os.path.basename(os.fsdecode(dest))))
                kind = {"created": "created", "moved": "gone"}.get(event.event_type, "written")
                put((kind, os.path.basename(os.fsdecode(src))))

        self.observer = Observer()
        self.observer.schedule(Handler(), str(self.layout.inbox), recursive=False)
        self.observer.daemon = True
        self.observer.start()

    def _spawn(self) -> WorkerSlot:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(
            target=worker_main,
            name="wt-worker",
            daemon=True,
            args=(
                child,
                os.getpid(),
                self.cfg.model_ttl,
                self.cfg.max_jobs_per_worker,
                CPU_REPLICAS if self.cfg.max_batch > 1 else 1,
            ),
        )
        proc.start()
        child.close()
        return WorkerSlot(proc, parent)

    def _shutdown(self) -> None:
        for slot in self.slots:
            for job_id in slot.jobs:
                self._guarded("requeue", self._requeue, job_id, "daemon stopped")
            self._stop_worker(slot)
        if self.observer is not None:
            self.observer.stop()
        with contextlib.suppress(OSError):
            remove_heartbeat(self.layout, self.id)
        self.log("stopped", None, daemon=self.id, jobs_done=self.jobs_done)

    @staticmethod
    def _stop_worker(slot: WorkerSlot) -> None:
        try:
            slot.conn.send(None)
        except OSError:
            pass
        slot.process.join(1.0)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join(5.0)

    # ---- main loop -------------------------------------------------------------------
    def _due(self, name: str, every: float) -> bool:
        now = time.monotonic()
        if now >= self.timers.get(name, 0.0):
            self.timers[name] = now + every
            return True
        return False

    def _loop(self, polling: bool) -> None:
        while True:
            if self.stopping:
                running = [s for s in self.slots if s.jobs]
                if not running:
                    return
                if time.monotonic() >= self.stop_deadline:
                    for slot in running:
                        self._kill_and_replace(slot, requeue="daemon stopped before it finished")
                    return
            names = self._wait_events(0.25)
            if not self.stopping:
                full_scan = self._due("inbox", self.cfg.poll_interval if polling else 5.0)
                self._guarded("intake", self._take_from_inbox, names, full_scan)
            if self._due("jobs", 1.0):
                self._guarded("scan", self._scan_jobs)
            self._guarded("workers", self._poll_workers)
            self._guarded("cancel", self._check_cancels)
            if not self.stopping:
                self._guarded("dispatch", self._dispatch)
            if self._due("beat", BEAT_SECONDS):
                self._guarded("heartbeat", self._heartbeat)
            if self._due("claims", 5.0):
                self._guarded("recover", self._recover_dead)
            if self.owed and self._due("owed", 1.0):
                self._pay_owed()

    def _settle(self, job_id: str, action: Any) -> None:
        """Do a job's final write now, or owe it and retry until the spool takes it."""
        try:
            action()
        except OSError as exc:
            self.owed[job_id] = action
            self._trouble("status", exc)

    def _pay_owed(self) -> None:
        for job_id, action in list(self.owed.items()):
            try:
                action()
            except OSError as exc:
                self._trouble("status", exc)
                return
            del self.owed[job_id]
        self._cleared("status")

    def _guarded(self, step: str, action: Any, *args: Any) -> None:
        """Run one step of the loop; a failed write (a full disk, a quota, an I/O error, a
        permission taken away) is logged once and retried on the next turn, never fatal."""
        try:
            action(*args)
        except OSError as exc:
            self._trouble(step, exc)
            return
        if step != "intake":  # intake is cleared by a file taken, not by a quiet turn
            self._cleared(step)

    def _trouble(self, step: str, exc: OSError) -> None:
        """Log a step's problem once (until it changes or clears), and publish it."""
        problem = f"{step}: {exc.strerror or exc}" + (
            f" ({log_safe(str(exc.filename))})" if exc.filename else ""
        )
        if self.troubles.get(step) != problem:
            self.troubles[step] = problem
            self.log("io-error", None, step=step, error=problem)
            self._publish_troubles()

    def _cleared(self, step: str) -> None:
        if self.troubles.pop(step, None) is not None:
            self.log("io-ok", None, step=step)
            self._publish_troubles()

    def _publish_troubles(self) -> None:
        # In the heartbeat at once: `wt health` reports a daemon that cannot work.
        if self.beat is not None:
            self.beat.problem = "; ".join(self.troubles.values()) or None
            with contextlib.suppress(OSError):
                write_heartbeat(self.layout, self.beat)

    def _wait_events(self, timeout: float) -> set[str]:
        """Names touched since the last call; classifies how each arrived."""
        waitables: list[Any] = [self.wake_r, *(s.conn for s in self.slots)]
        wait(waitables, CREATE_GRACE if self.created else timeout)
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        batch: list[tuple[str, str]] = []
        try:
            while True:
                batch.append(self.events.get_nowait())
        except queue.Empty:
            pass
        names: set[str] = set()
        for kind, name in batch:
            names.add(name)
            if kind == "moved":
                self.readiness.renamed.add(name)
            elif kind == "created":
                self.created[name] = time.monotonic()
            else:  # opened, modified or closed: written in place, so the settle rule applies
                self.created.pop(name, None)
        now = time.monotonic()
        for name, seen in list(self.created.items()):
            if now - seen >= CREATE_GRACE:
                # open(O_CREAT) queues IN_OPEN right behind IN_CREATE; none came, so the
                # name was made by link() or a rename from outside the inbox.
                del self.created[name]
                self.readiness.renamed.add(name)
                names.add(name)
        return names

    # ---- intake ----------------------------------------------------------------------
    def _take_from_inbox(self, names: set[str], full_scan: bool) -> None:
        now = time.time()
        due = {n for n, t in self.recheck.items() if t <= now}
        if full_scan:
            paths = inbox_candidates(self.layout)
        else:
            wanted = names | due
            paths = [p for p in inbox_candidates(self.layout) if p.name in wanted] if wanted else []
        for path in paths:
            sidecar = find_sidecar(path)
            declared = read_sidecar(sidecar).size if sidecar else None
            ready, again = self.readiness.check(path, now, declared)
            if not ready:
                if again is not None:
                    self.recheck[path.name] = again
                continue
            self.recheck.pop(path.name, None)
            try:
                job_id = intake(
                    self.layout, path, self.cfg.defaults, self.cfg.max_input_bytes, self.cfg.settle
                )
            except OSError as exc:
                self._trouble("intake", exc)
                self.recheck[path.name] = now + self.cfg.settle
                continue
            if job_id is None:
                if os.path.lexists(path):
                    self.recheck[path.name] = now + self.cfg.settle
                continue
            self.readiness.forget(path.name)
            self._cleared("intake")
            status = read_status(self.layout.job(job_id))
            if status is None:
                continue
            self.log(
                status.state,
                job_id,
                input=status.input.name,
                size=status.input.size,
                error=status.error.message if status.error else None,
            )
            if status.state == QUEUED:
                self.pending.add(job_id)
            else:
                self.finished.add(job_id)
        if full_scan:
            # After the checks: a temp file seen now is recognised by its inode next scan.
            self.readiness.note_scan(self.layout.inbox)
            for sidecar in orphan_sidecars(self.layout, self.cfg.orphan_sidecar_after):
                job_id = intake_orphan(self.layout, sidecar, self.cfg.max_input_bytes)
                if job_id is not None:
                    self.finished.add(job_id)
                    self.log(FAILED, job_id, input=sidecar.name, error="sidecar without audio")

    # ---- jobs ------------------------------------------------------------------------
    def _scan_jobs(self) -> None:
        """Find queued jobs (from any daemon or client) and cancel markers on queued jobs."""
        try:
            entries = os.listdir(self.layout.jobs)
        except FileNotFoundError:
            return
        running = self._running()
        for job_id in entries:
            if job_id in self.finished or job_id in running:
                continue
            job_dir = self.layout.jobs / job_id
            status = _read_status_quietly(job_dir)
            if status is None:
                continue
            if status.terminal:
                self.finished.add(job_id)
                self.pending.discard(job_id)
            elif status.state == QUEUED and not os.path.lexists(job_dir / CLAIM):
                self.pending.add(job_id)
                if os.path.lexists(job_dir / CANCEL):
                    self._cancel_queued(job_id)

    def _cancel_queued(self, job_id: str) -> None:
        job_dir = self.layout.jobs / job_id
        if not try_claim(job_dir, Claim.mine(self.id)):
            return
        try:
            status = read_status(job_dir)
            if status is not None and status.state == QUEUED:
                write_status(job_dir, status.advance(CANCELED))
                self.log(CANCELED, job_id, input=status.input.name, was="queued")
        finally:
            release(job_dir)
        self.pending.discard(job_id)
        self.finished.add(job_id)

    def _running(self) -> set[str]:
        return {job_id for slot in list(self.slots) for job_id in slot.jobs}

    def _dispatch(self) -> None:
        """Oldest job first, to the least busy worker that can take it: an idle one, or one
        running fewer than --max-batch jobs that may share batches. A job never waits for
        a batch to fill; it takes the room there is now."""
        while self.pending:
            job_id = min(self.pending)  # ids sort by submission time
            alone = self._must_run_alone(job_id)
            room = [
                s
                for s in self.slots
                if s.ready
                and not s.retired
                and (not s.jobs or (not alone and not s.alone and len(s.jobs) < self.cfg.max_batch))
            ]
            if not room:
                return  # the oldest waits for room, and the others wait behind it
            slot = min(room, key=lambda s: len(s.jobs))
            self.pending.discard(job_id)
            if not self._start(slot, job_id, alone):
                self.runs_alone.pop(job_id, None)

    def _must_run_alone(self, job_id: str) -> bool:
        """Only faster-whisper jobs decoding one window at a time share batches (the
        openai engine has no batched decoding; --batch-size jobs, and with the automatic
        batch size files longer than one window, batch within the file)."""
        if self.cfg.max_batch <= 1 or job_id in self.solo:
            return True
        known = self.runs_alone.get(job_id)
        if known is None:
            try:
                request = json.loads((self.layout.jobs / job_id / REQUEST).read_text())
                options = TranscribeOptions.from_mapping(request["options"])
                status = read_status(self.layout.jobs / job_id)
                duration = probe_duration(self.layout.jobs / job_id / status.input.file)
                known = options.engine != "faster" or options.decoding_batch(duration) > 1
            except (OSError, ValueError, KeyError, TypeError, AttributeError, WtError):
                known = True  # its worker will fail it with the reason; alone
            self.runs_alone[job_id] = known
        return known

    def _start(self, slot: WorkerSlot, job_id: str, alone: bool = True) -> bool:
        job_dir = self.layout.jobs / job_id
        if not try_claim(job_dir, Claim.mine(self.id)):
            return False  # another daemon has it
        status = read_status(job_dir)
        if status is None or status.state != QUEUED:
            release(job_dir)
            if status is not None and status.terminal:
                self.finished.add(job_id)
            return False
        if os.path.lexists(job_dir / CANCEL):
            write_status(job_dir, status.advance(CANCELED))
            release(job_dir)
            self.finished.add(job_id)
            self.log(CANCELED, job_id, input=status.input.name, was="queued")
            return False
        status.advance(
            PROCESSING,
            started_at=utcnow(),
            attempts=status.attempts + 1,
            worker=Worker(HOST, slot.process.pid or 0, self.id),
            error=None,
        )
        try:
            write_status(job_dir, status)
        except OSError:
            release(job_dir)  # still queued on disk: anyone may take it once writes work
            self.pending.add(job_id)
            raise
        slot.jobs.append(job_id)
        slot.alone = alone
        slot.conn.send(str(job_dir))
        self.log(
            PROCESSING,
            job_id,
            input=status.input.name,
            worker=slot.process.pid,
            attempt=status.attempts,
        )
        return True

    # ---- workers ---------------------------------------------------------------------
    def _poll_workers(self) -> None:
        for i, slot in enumerate(self.slots):
            try:
                while slot.conn.poll():
                    self._on_message(slot, slot.conn.recv())
            except (EOFError, OSError):
                pass
            if not slot.process.is_alive():
                code = slot.process.exitcode
                if slot.jobs:
                    self._fail_running(slot, code)
                if not slot.served and code != 0:
                    self._worker_start_failed(code)
                if time.monotonic() < self.next_spawn:
                    continue  # a dead slot takes no job; try again when the back-off ends
                self.slots[i] = self._spawn()
                self.metrics.worker_restarts.inc()

    def _on_message(self, slot: WorkerSlot, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            slot.ready = slot.served = True
            self.spawn_failures = 0
            self.next_spawn = 0.0
            self._cleared("workers")
        elif kind == "done":
            _, job_id, state = message
            self._leave(slot, job_id)
            if state == PROCESSING:
                # The worker could not write the job's final status (a full disk): run it
                # again once the spool takes writes.
                self._settle(
                    job_id, lambda: self._requeue(job_id, "its status could not be written")
                )
                return
            self.jobs_done += 1
            self.finished.add(job_id)
            status = read_status(self.layout.jobs / job_id)
            fields: dict[str, Any] = {}
            if status is not None:
                self.metrics.job_finished(state, status.run_seconds(), status.progress.duration)
                fields = {
                    "input": status.input.name,
                    "language": status.language,
                    "duration": status.progress.duration,
                    "error": status.error.message if status.error else None,
                }
            self.log(state, job_id, **fields)
        elif kind == "loaded":
            self.metrics.model_loads.labels(message[1]).inc()
        elif kind == "unloaded":
            self.log("unloaded", None, model=message[1])
        elif kind == "retire":
            slot.retired = True  # it exits after its jobs; _poll_workers starts a fresh one

    def _worker_start_failed(self, exitcode: int | None) -> None:
        """A worker that dies before it is ready (an interpreter other users cannot run, a
        broken install) would be restarted in a hot loop: back off, say so once, publish it."""
        self.spawn_failures += 1
        self.next_spawn = time.monotonic() + min(30.0, 0.5 * 2**self.spawn_failures)
        problem = f"workers: a worker process exits before it is ready (exit status {exitcode})"
        if self.troubles.get("workers") != problem:
            self.troubles["workers"] = problem
            self.log("worker-failed", None, error=problem, fix="run wt transcribe as this user")
            self._publish_troubles()

    def _leave(self, slot: WorkerSlot, job_id: str) -> None:
        with contextlib.suppress(ValueError):
            slot.jobs.remove(job_id)
        slot.cancel_seen.pop(job_id, None)
        self.solo.discard(job_id)
        self.runs_alone.pop(job_id, None)
        if not slot.jobs:
            slot.alone = False

    def _fail_running(self, slot: WorkerSlot, exitcode: int | None) -> None:
        jobs = list(slot.jobs)
        for job_id in jobs:
            self._leave(slot, job_id)
        how = (
            f"killed by signal {-exitcode}"
            if exitcode is not None and exitcode < 0
            else f"exit status {exitcode}"
        )
        if slot.retired and exitcode == 0:
            # Sent to a retiring worker just before it said so: never started.
            for job_id in jobs:
                self._settle(job_id, lambda j=job_id: self._requeue(j, "its worker retired"))
            return
        if len(jobs) > 1:
            # Which of them crashed the worker is unknown: each runs again alone, and only
            # the culprit fails then.
            for job_id in jobs:
                self.solo.add(job_id)
                why = f"its worker died ({how}) running {len(jobs)} jobs; it runs alone next"
                self._settle(job_id, lambda j=job_id, w=why: self._requeue(j, w))
            return
        job_id = jobs[0]
        hint = (
            " (signal 9 is usually the out-of-memory killer: use a smaller model or fewer workers)"
            if exitcode == -signal.SIGKILL
            else ""
        )
        message = f"the worker process died while transcribing: {how}{hint}"
        self._settle(job_id, lambda: self._finish(job_id, FAILED, f"worker {how}", message))

    def _finish(self, job_id: str, state: str, why: str, message: str | None = None) -> None:
        """Move a job this daemon holds to a final state (if it has none yet), and let go."""
        job_dir = self.layout.jobs / job_id
        status = read_status(job_dir)
        if status is not None and not status.terminal:
            error = JobError("worker_crashed", message) if message else None
            final = status.advance(state, error=error)
            write_status(job_dir, final)
            self.log(state, job_id, input=status.input.name, how=why)
            self.metrics.job_finished(state, final.run_seconds(), final.progress.duration)
        release(job_dir)
        self.finished.add(job_id)

    def _check_cancels(self) -> None:
        now = time.monotonic()
        for slot in list(self.slots):
            for job_id in list(slot.jobs):
                if not os.path.lexists(self.layout.jobs / job_id / CANCEL):
                    continue
                seen = slot.cancel_seen.setdefault(job_id, now)  # checked between segments
                if now - seen > self.cfg.cancel_grace:
                    self._kill_and_replace(slot, canceled=job_id)
                    break

    def _kill_and_replace(
        self, slot: WorkerSlot, canceled: str | None = None, requeue: str | None = None
    ) -> None:
        jobs = list(slot.jobs)
        slot.process.kill()
        slot.process.join(10)
        for job_id in jobs:
            self._leave(slot, job_id)
            if job_id == canceled:
                self._settle(job_id, lambda j=job_id: self._finish(j, CANCELED, "worker stopped"))
                continue
            why = requeue or (
                f"its worker was stopped to cancel {canceled}" if canceled else "requeued"
            )
            self._settle(job_id, lambda j=job_id, w=why: self._requeue(j, w))
        index = self.slots.index(slot)
        self.slots[index] = self._spawn()

    def _requeue(self, job_id: str, why: str) -> None:
        job_dir = self.layout.jobs / job_id
        status = read_status(job_dir)
        if status is not None and status.state == PROCESSING:
            # If this write fails the claim stays: once this daemon is gone, any daemon
            # takes the dead claim back and requeues the job.
            write_status(job_dir, status.advance(QUEUED, worker=None, progress=Progress()))
            self.log(QUEUED, job_id, input=status.input.name, why=why)
        release(job_dir)

    # ---- liveness --------------------------------------------------------------------
    def _heartbeat(self) -> None:
        assert self.beat is not None
        self.beat.jobs_running = sorted(self._running())
        self.beat.jobs_done = self.jobs_done
        self.beat.accepting = not self.stopping
        write_heartbeat(self.layout, self.beat)

    def _recover_dead(self) -> None:
        """Take back jobs claimed by daemons that died, and finish their half-done intakes."""
        recover_staging(self.layout, self.cfg.max_input_bytes)
        cleanup_dead_beats(self.layout)
        mine = self._running()
        for job_id in os.listdir(self.layout.jobs):
            if job_id in self.finished or job_id in mine:
                continue
            job_dir = self.layout.jobs / job_id
            if not os.path.lexists(job_dir / CLAIM):
                continue
            dead = take_back_if_dead(self.layout, job_dir, self.cfg.stale_seconds)
            if dead is None:
                continue
            status = read_status(job_dir)
            if status is None or status.terminal:
                continue
            if status.state == PROCESSING and status.attempts >= self.cfg.max_attempts:
                write_status(
                    job_dir,
                    status.advance(
                        FAILED,
                        error=JobError(
                            "gave_up",
                            f"gave up after {status.attempts} attempts: the daemon running "
                            "it died each time (crash or out of memory?)",
                        ),
                    ),
                )
                self.finished.add(job_id)
                self.log(FAILED, job_id, error="gave up", attempts=status.attempts)
                continue
            if status.state == PROCESSING:
                write_status(job_dir, status.advance(QUEUED, worker=None, progress=Progress()))
            self.pending.add(job_id)
            self.log("recovered", job_id, dead_daemon=dead.daemon)


def _read_status_quietly(job_dir: Path) -> JobStatus | None:
    try:
        return read_status(job_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def local_models(default: str) -> list[str]:
    from whisper_cli.models import list_local

    try:
        return list(dict.fromkeys([default, *(m.name for m in list_local())]))
    except OSError:  # a model cache this user may not read: the jobs will say so, one by one
        return [default]


class SpoolUnusable(WtError):
    kind = "spool_unusable"


def serve(config: DaemonConfig) -> int:
    return Daemon(config).run()

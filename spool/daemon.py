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
import multiprocessing
import os
import queue
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spool.client import Spool
from spool.daemon_log import Log
from spool.dispatch import Dispatch, WorkerSlot
from spool.heartbeat import (
    BEAT_SECONDS,
    STALE_SECONDS,
    Heartbeat,
    new_daemon_id,
    remove_heartbeat,
    write_heartbeat,
)
from spool.inbox import (
    Readiness,
    recover_staging,
)
from spool.layout import HOST, Layout, log_safe, utcnow
from spool.metrics import DaemonMetrics
from spool.permissions import adopt, make_shared
from spool.recovery import Recovery
from spool.status import COMPLETED, JobStatus
from spool.watch import InboxWatch, filesystem_sends_events
from spool.webhooks import Notifier, WebhookConfig
from whisper_cli import __version__
from whisper_cli.errors import WtError
from whisper_cli.options.transcribe_options import TranscribeOptions

RETENTION_EVERY = 60.0  # seconds between looks for jobs past --keep-finished


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
    pack: bool = False  # their short clips share one window (whisper_cli/engines/packing.py)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    delete_input: bool = False  # a completed job's input audio is deleted
    keep_finished: float | None = None  # seconds a finished job is kept (None: until cleaned)


class Daemon(InboxWatch, Dispatch, Recovery):
    """The supervisor: its loop, signals, metrics and I/O troubles; pickup (spool/watch.py),
    dispatch (spool/dispatch.py) and recovery (spool/recovery.py) are its parts."""

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
        self.notifier = Notifier(self.layout, config.webhooks, self.log)
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
        if not polling:
            # Armed before the heartbeat says this daemon serves the spool: a drop renamed in
            # the moment `wt health` says ready is seen as a rename (taken at once), not found
            # by a scan as a file that may still be written (taken after --settle).
            self._start_observer()
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
        self.notifier.start()
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

    def _shutdown(self) -> None:
        for slot in self.slots:
            for job_id in slot.jobs:
                self._guarded("requeue", self._requeue, job_id, "daemon stopped")
            self._stop_worker(slot)
        if self.observer is not None:
            self.observer.stop()
        self.notifier.stop()  # an undelivered webhook stays "waiting": the next start sends it
        with contextlib.suppress(OSError):
            remove_heartbeat(self.layout, self.id)
        self.log("stopped", None, daemon=self.id, jobs_done=self.jobs_done)

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
            keep = self.cfg.keep_finished
            # Looked for every minute, or every tenth of a short retention (1 s at least).
            if keep is not None and self._due(
                "retention", min(RETENTION_EVERY, max(1.0, keep / 10))
            ):
                self._guarded("retention", self._remove_expired)

    def _remove_expired(self) -> None:
        """--keep-finished: finished jobs older than that go, folder and all."""
        assert self.cfg.keep_finished is not None
        for job_id in Spool(self.layout.root).clean(self.cfg.keep_finished):
            self.finished.discard(job_id)
            self.log("removed", job_id, why="keep-finished", age_over=self.cfg.keep_finished)

    def _ended(self, job_id: str, status: JobStatus | None) -> None:
        """A job reached its final state (seen by this daemon): its webhook, and with
        --delete-input a completed job's input audio."""
        self.notifier.consider(job_id, status)
        if self.cfg.delete_input and status is not None and status.state == COMPLETED:
            path = self.layout.jobs / job_id / status.input.file
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                self.log("removed", job_id, why="delete-input", file=status.input.file)

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


def local_models(default: str) -> list[str]:
    from whisper_cli.models.weights import list_local

    try:
        return list(dict.fromkeys([default, *(m.name for m in list_local())]))
    except OSError:  # a model cache this user may not read: the jobs will say so, one by one
        return [default]


class SpoolUnusable(WtError):
    kind = "spool_unusable"


def serve(config: DaemonConfig) -> int:
    return Daemon(config).run()

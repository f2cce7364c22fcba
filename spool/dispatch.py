"""Dispatching jobs to worker processes: starting and replacing workers, choosing which queued
jobs run (alone or side by side in a batch), their messages, cancel, ends and requeues."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from spool.claims import Claim, release, try_claim
from spool.layout import CANCEL, HOST, REQUEST, utcnow
from spool.status import (
    CANCELED,
    FAILED,
    PROCESSING,
    QUEUED,
    JobError,
    Progress,
    Worker,
    read_status,
    write_status,
)
from spool.worker import worker_main
from whisper_cli.audio.decode import probe_duration
from whisper_cli.engines.batching import CPU_REPLICAS
from whisper_cli.errors import WtError
from whisper_cli.options.transcribe_options import TranscribeOptions


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


class Dispatch:
    """The daemon's queue manager: part of Daemon (spool/daemon.py), whose state it uses."""

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
                self.cfg.pack,
            ),
        )
        proc.start()
        child.close()
        return WorkerSlot(proc, parent)

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
            self._ended(job_id, status)
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
            self._ended(job_id, final)
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

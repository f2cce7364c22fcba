"""Recovery: the heartbeat, the scan of the jobs folder (cancels of queued jobs, jobs to
run), and taking back the claims of daemons that died, on this host or another."""

from __future__ import annotations

import os
from pathlib import Path

from spool.claims import Claim, release, take_back_if_dead, try_claim
from spool.heartbeat import (
    cleanup_dead_beats,
    write_heartbeat,
)
from spool.inbox import (
    recover_staging,
)
from spool.layout import CANCEL, CLAIM
from spool.status import (
    CANCELED,
    FAILED,
    PROCESSING,
    QUEUED,
    JobError,
    JobStatus,
    Progress,
    read_status,
    write_status,
)


class Recovery:
    """Part of Daemon (spool/daemon.py), whose state it uses."""

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
                self._ended(job_id, status)  # ended elsewhere, or before this daemon started
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
                self._ended(job_id, status)
        finally:
            release(job_dir)
        self.pending.discard(job_id)
        self.finished.add(job_id)

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

"""Watching the inbox: inotify events where the filesystem sends them, scans where it does not
(NFS, SMB, sshfs, ...), and taking complete drops in as queued jobs (the daemon's pickup)."""

from __future__ import annotations

import os
import queue
import time
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from spool.inbox import (
    find_sidecar,
    inbox_candidates,
    intake,
    intake_orphan,
    orphan_sidecars,
    read_sidecar,
)
from spool.status import (
    FAILED,
    QUEUED,
    read_status,
)

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


def no_move_pairing_delay() -> None:
    """watchdog holds each IN_MOVED_FROM up to 0.5 s to pair it with its IN_MOVED_TO, and its
    queue reader sleeps out those 0.5 s even when the pair has arrived, holding back every
    event behind it: measured, 41 drops renamed in at once were taken in by two rounds 0.5 s
    apart. The pickup does not need pairs (an unpaired IN_MOVED_TO comes as a create with no
    open behind it, which CREATE_GRACE tells from a file written in place), so the delay is
    set to nothing. The class moved between watchdog versions; either is handled."""
    try:
        from watchdog.observers.inotify_move_event_grouper import (
            InotifyMoveEventGrouper as Grouper,
        )
    except ImportError:  # watchdog < 7
        try:
            from watchdog.observers.inotify_buffer import InotifyBuffer as Grouper
        except ImportError:  # not Linux
            return
    Grouper.delay = 0.0


class InboxWatch:
    """The daemon's pickup: part of Daemon (spool/daemon.py), whose state it uses."""

    def _start_observer(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        no_move_pairing_delay()

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

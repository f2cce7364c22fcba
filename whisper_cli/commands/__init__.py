"""The `wt` command line: the Typer app, assembled from the command modules (transcribe.py,
spool.py, voices.py), and `main`, the console script. The command modules share common.py
(and the helpers inputs.py, progress.py), never import each other or this module."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from whisper_cli import __version__
from whisper_cli.commands import spool
from whisper_cli.commands.common import EXIT_INTERNAL, err
from whisper_cli.commands.transcribe import models_app, transcribe
from whisper_cli.commands.voices import voices_app

app = typer.Typer(
    name="wt",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    help="Whisper transcription from the terminal and from a file spool.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(models_app, name="models")
app.add_typer(voices_app, name="voices")


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


# In this order in `wt --help`: the terminal door, then the spool door.
for command in (
    transcribe,
    spool.daemon,
    spool.serve,
    spool.submit,
    spool.status,
    spool.cancel,
    spool.wait,
    spool.result,
    spool.clean,
    spool.health,
):
    app.command()(command)


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

"""What the command modules share: the error console, the exit statuses and the one way to
fail a command. Imports nothing from the other command modules, so none of them imports
another (no import circle)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from whisper_cli.errors import WtError

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
    """A companion's error, with the exit status docs/companions.md gives its kind."""
    codes = {
        "job_not_found": EXIT_NO_JOB,
        "not_completed": EXIT_NOT_COMPLETED,
        "no_such_result": EXIT_NO_RESULT,
    }
    return fail(error, codes.get(error.kind, EXIT_FAILED))

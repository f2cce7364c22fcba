"""Rich progress bars for the terminal door: one bar per file in audio seconds, one overall."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class AudioSecondsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        if task.fields.get("unit") != "s" or task.total is None:
            return Text(f"{int(task.completed)}/{int(task.total or 0)} files")
        return Text(f"{task.completed:6.1f}/{task.total:.1f} s audio")


class BatchProgress:
    """Context manager; `file_progress(name)` returns the on_progress callback for one file."""

    def __init__(self, console: Console, total_files: int, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            TaskProgressColumn(),
            AudioSecondsColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not enabled,
        )
        self.overall = None
        if enabled and total_files > 1:
            self.overall = self.progress.add_task("all files", total=total_files, unit="files")
        self.done_files = 0

    def __enter__(self) -> BatchProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def file_progress(self, name: str):
        task_id = self.progress.add_task(name[:40], total=None, unit="s")

        def on_progress(done: float, duration: float) -> None:
            self.progress.update(task_id, total=max(duration, 1e-6), completed=done)
            if self.overall is not None and duration > 0:
                self.progress.update(self.overall, completed=self.done_files + done / duration)

        def finish(ok: bool) -> None:
            self.done_files += 1
            if not ok:
                self.progress.update(task_id, description=f"[red]{name[:36]} ✗")
            if self.overall is not None:
                self.progress.update(self.overall, completed=self.done_files)

        return on_progress, finish

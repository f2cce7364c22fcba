"""The daemon's log: one line per job state change."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from rich.markup import escape

from spool.layout import log_safe, utcnow


class Log:
    """One line per job state change: human text on stderr, or JSON lines for shippers."""

    def __init__(self, fmt: str) -> None:
        self.json = fmt == "json"
        if not self.json:
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False, soft_wrap=True)

    def __call__(self, event: str, job: str | None = None, **fields: Any) -> None:
        if self.json:
            fields = {k: log_safe(v) if isinstance(v, str) else v for k, v in fields.items()}
            record = {"time": utcnow(), "event": event, **({"job": job} if job else {}), **fields}
            print(json.dumps(record, ensure_ascii=False), file=sys.stderr, flush=True)
            return
        style = {"completed": "green", "failed": "red", "canceled": "yellow"}.get(event, "")
        # One line per event whatever a file is called: control characters and undecodable
        # bytes escaped, and square brackets not read as markup.
        extra = " ".join(
            f"{k}={escape(log_safe(str(v)))}" for k, v in fields.items() if v is not None
        )
        head = f"[{style}]{event:<10}[/{style}]" if style else f"{event:<10}"
        self.console.print(
            f"{datetime.now():%H:%M:%S} {head} {job or ''} {extra}".rstrip(), markup=True
        )

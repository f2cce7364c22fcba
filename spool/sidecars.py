"""Sidecars: the JSON a producer puts beside a drop (id, name, size, options, metadata), how
a drop finds its own, and sidecars that no drop claims."""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spool.layout import (
    SIDECAR_SUFFIX,
    Layout,
    is_sidecar_name,
    is_temp_name,
    printable_name,
    valid_job_id,
)
from whisper_cli.errors import WtError

MAX_SIDECAR_BYTES = 64 * 1024
SIDECAR_KEYS = {"id", "name", "size", "options", "metadata", "notify"}


def find_sidecar(audio: Path) -> Path | None:
    """The sidecar of an inbox file: `NAME.EXT.json`, else `NAME.json` when no other file
    in the inbox is called `NAME.<something>` (a stem sidecar shared by several files
    belongs to none of them)."""
    full, stem = _sidecar_forms(audio)
    if os.path.lexists(full):
        return full
    if stem is not None and os.path.lexists(stem) and _sole_file_of_stem(audio):
        return stem
    return None


def spare_sidecar(audio: Path) -> Path | None:
    """`NAME.json` when `NAME.EXT.json` is the one used: kept with the job, never left."""
    full, stem = _sidecar_forms(audio)
    if stem is not None and os.path.lexists(full) and os.path.lexists(stem):
        return stem if _sole_file_of_stem(audio) else None
    return None


def _sidecar_forms(audio: Path) -> tuple[Path, Path | None]:
    full = audio.with_name(audio.name + SIDECAR_SUFFIX)
    stem = audio.with_name(os.path.splitext(audio.name)[0] + SIDECAR_SUFFIX)
    return full, (stem if stem != full else None)


def _sole_file_of_stem(audio: Path) -> bool:
    stem = os.path.splitext(audio.name)[0]
    try:
        names = os.listdir(audio.parent)
    except FileNotFoundError:
        return True
    return not any(
        n != audio.name
        and not is_temp_name(n)
        and not is_sidecar_name(n)
        and os.path.splitext(n)[0] == stem
        for n in names
    )


def _shared_stem_sidecar(audio: Path) -> Path | None:
    _, stem = _sidecar_forms(audio)
    if stem is not None and os.path.lexists(stem) and not _sole_file_of_stem(audio):
        return stem
    return None


def orphan_sidecars(layout: Layout, older_than: float, now: float | None = None) -> list[Path]:
    """Sidecars that no file in the inbox will use, untouched for `older_than` seconds and
    with no upload under a temporary name that could be their audio."""
    now = time.time() if now is None else now
    try:
        names = os.listdir(layout.inbox)
    except FileNotFoundError:
        return []
    files = [n for n in names if not is_temp_name(n) and not is_sidecar_name(n)]
    temps = [n for n in names if is_temp_name(n)]
    orphans = []
    for name in names:
        if is_temp_name(name) or not is_sidecar_name(name):
            continue
        audio = name[: -len(SIDECAR_SUFFIX)]
        if audio in files or sum(os.path.splitext(f)[0] == audio for f in files) == 1:
            continue  # its file is here (a stem sidecar of exactly one file)
        if any(audio in t for t in temps):
            continue  # probably its audio, still uploading
        try:
            if now - os.lstat(layout.inbox / name).st_mtime < older_than:
                continue
        except FileNotFoundError:
            continue
        orphans.append(layout.inbox / name)
    return orphans


NO_AUDIO = "no audio file arrived for this sidecar"
SHARED_STEM = "several files share its name (NAME.wav, NAME.mp3, ...), so it belongs to none"


class OrphanSidecar(WtError):
    kind = "orphan_sidecar"


@dataclass
class Sidecar:
    job_id: str | None = None
    name: str | None = None
    size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    notify: str | None = None  # a URL the daemon POSTs to when the job ends (spool/webhooks.py)


def notify_url_problem(url: object) -> str | None:
    """Why a webhook URL is unusable, or None (where it may go is the daemon's call)."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not 0 < len(url) <= 2048:
        return "must be an http:// or https:// URL of at most 2048 characters"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http:// or https:// URL"
    if parts.username or parts.password:
        return "credentials in the URL are refused: the daemon signs its calls instead"
    return None


def read_sidecar(path: Path) -> Sidecar:
    """Parse a sidecar without trusting it: bounded size, a regular file, known keys only."""
    label = printable_name(path.name)[0]
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            return Sidecar(error=f"sidecar {label} is not a regular file")
        if st.st_size > MAX_SIDECAR_BYTES:
            return Sidecar(error=f"sidecar {label} is larger than {MAX_SIDECAR_BYTES} bytes")
        with open(path, "rb") as fh:
            data = json.loads(fh.read(MAX_SIDECAR_BYTES + 1))
    except (OSError, ValueError) as exc:
        return Sidecar(error=f"sidecar {label} is not valid JSON ({exc})")
    if not isinstance(data, dict):
        return Sidecar(error=f"sidecar {label} must be a JSON object")
    unknown = sorted(set(data) - SIDECAR_KEYS)
    job_id, name, size = data.get("id"), data.get("name"), data.get("size")
    options, metadata = data.get("options", {}), data.get("metadata", {})
    notify = data.get("notify")
    if unknown:
        known = ", ".join(sorted(SIDECAR_KEYS))
        error = f"unknown sidecar key(s): {', '.join(unknown)} (known: {known})"
    elif job_id is not None and not valid_job_id(job_id):
        error = (
            "sidecar id must be 1-128 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    elif name is not None and not (isinstance(name, str) and 0 < len(name) <= 1024):
        error = "sidecar name must be a non-empty string"
    elif size is not None and (type(size) is not int or size < 0):
        error = "sidecar size must be a whole number of bytes"
    elif not isinstance(options, dict) or not isinstance(metadata, dict):
        error = "sidecar options and metadata must be JSON objects"
    elif notify is not None and (problem := notify_url_problem(notify)):
        error = f"sidecar notify: {problem}"
    else:
        return Sidecar(job_id, name, size, options, metadata, notify=notify)
    # The client's id is kept whatever else is wrong, so the failed job is found under it.
    return Sidecar(job_id=job_id if valid_job_id(job_id) else None, error=error)

"""Output writers: txt, json, srt, vtt, tsv, in the layouts openai-whisper writes.

Every file is written to a temporary name in the target folder and renamed into place,
so a reader (or a crash) never sees half a transcript.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from whisper_cli.errors import OutputError
from whisper_cli.output.result import Transcript, without_words
from whisper_cli.output.subtitles import SubtitleLayout, layout_cues


def timestamp(seconds: float, decimal: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def _cue_text(text: str) -> str:
    # "-->" inside a cue would end the cue line early in srt/vtt players.
    return text.strip().replace("-->", "->")


def render_txt(t: Transcript) -> str:
    lines, last = [], None
    for s in t.segments:
        text = s.text.strip()
        if not text:
            continue
        if s.speaker is not None and s.speaker != last:
            text = f"[{s.speaker}] {text}"  # at each change of speaker
            last = s.speaker
        lines.append(text + "\n")
    return "".join(lines)


def _srt_text(text: str, speaker: str | None) -> str:
    text = _cue_text(text)
    return f"[{speaker}] {text}" if speaker is not None else text


def _vtt_text(text: str, speaker: str | None) -> str:
    text = _cue_text(text)
    return f"<v {speaker}>{text}" if speaker is not None else text  # a WebVTT voice span


def _cues(
    t: Transcript, layout: SubtitleLayout | None
) -> list[tuple[float, float, str, str | None]]:
    """(start, end, text, speaker) of each cue: one per segment, or as the layout asks."""
    if layout is not None:
        return [(c.start, c.end, c.text(), c.speaker) for c in layout_cues(t, layout)]
    return [(s.start, s.end, s.text, s.speaker) for s in t.segments if s.text.strip()]


def render_srt(t: Transcript, layout: SubtitleLayout | None = None) -> str:
    return "\n".join(
        f"{i}\n{timestamp(a, ',')} --> {timestamp(b, ',')}\n{_srt_text(text, who)}\n"
        for i, (a, b, text, who) in enumerate(_cues(t, layout), start=1)
    )


def render_vtt(t: Transcript, layout: SubtitleLayout | None = None) -> str:
    return "WEBVTT\n\n" + "\n".join(
        f"{timestamp(a, '.')} --> {timestamp(b, '.')}\n{_vtt_text(text, who)}\n"
        for a, b, text, who in _cues(t, layout)
    )


def render_tsv(t: Transcript) -> str:
    speakers = bool(t.speakers)
    rows = ["start\tend\tspeaker\ttext\n" if speakers else "start\tend\ttext\n"]
    for s in t.segments:
        if s.text.strip():
            text = s.text.strip().replace("\t", " ")
            who = f"{s.speaker or ''}\t" if speakers else ""
            rows.append(f"{round(1000 * s.start)}\t{round(1000 * s.end)}\t{who}{text}\n")
    return "".join(rows)


def render_rttm(t: Transcript) -> str:
    """Who spoke when in NIST's RTTM, the timeline pyannote, NeMo and dscore read: one
    SPEAKER line per turn, overlapping turns where two people talk at once. The file id is
    the input's name without its extension (RTTM fields cannot hold spaces)."""
    name = Path(str(t.extra.get("input") or "audio")).stem
    file_id = "".join("_" if c.isspace() else c for c in name) or "audio"
    return "".join(
        f"SPEAKER {file_id} 1 {turn.start:.3f} {turn.end - turn.start:.3f} <NA> <NA> "
        f"{'_'.join(turn.speaker.split())} <NA> <NA>\n"
        for turn in t.speaker_turns
    )


def render_json(t: Transcript) -> str:
    return json.dumps(t.to_dict(), ensure_ascii=False, indent=2) + "\n"


RENDERERS: dict[str, Callable[[Transcript], str]] = {
    "txt": render_txt,
    "json": render_json,
    "srt": render_srt,
    "vtt": render_vtt,
    "tsv": render_tsv,
    "rttm": render_rttm,
}


def current_umask() -> int:
    """The process umask, read without changing it: an os.umask(0) and its restore would let
    another thread create a file with a wrong mode in between."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """What open() would give a new file. mkstemp creates 0600; results and status.json must be
    readable by the other programs sharing a spool (and group-writable on a shared spool, whose
    processes run with a group-writable umask)."""
    return 0o666 & ~current_umask()


def write_atomic(path: Path, text: str, durable: bool = True) -> None:
    """Write text to path via a temp file in the same folder and a rename.

    durable=False skips the fsync, for files rewritten every second (job progress) where the
    next write supersedes a lost one.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:100]}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def output_paths(out_dir: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    return [out_dir / f"{stem}.{fmt}" for fmt in formats]


def renderers_for(
    layout: SubtitleLayout | None, words_in_json: bool
) -> dict[str, Callable[[Transcript], str]]:
    """The renderers with a job's subtitle layout; word timings computed only for the layout
    stay out of the json unless asked for."""
    return {
        **RENDERERS,
        "json": render_json if words_in_json else lambda t: render_json(without_words(t)),
        "srt": lambda t: render_srt(t, layout),
        "vtt": lambda t: render_vtt(t, layout),
    }


def write_outputs(
    t: Transcript,
    out_dir: Path,
    stem: str,
    formats: tuple[str, ...],
    renderers: dict[str, Callable[[Transcript], str]] = RENDERERS,
) -> list[Path]:
    """Write all formats or none: on failure the files written so far are removed, so a
    reader never finds a partial set (and a full disk gets its space back)."""
    paths = output_paths(out_dir, stem, formats)
    written: list[Path] = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for fmt, path in zip(formats, paths):
            write_atomic(path, renderers[fmt](t))
            written.append(path)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise OutputError(
            f"{out_dir}: cannot write results ({exc.strerror or exc})",
            "check free disk space and permissions of the output folder",
        ) from None
    return paths

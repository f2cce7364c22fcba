"""A recording's speaker turns read back from what wt wrote for it (the json result's
`speaker_turns`, or an RTTM file), and the stretches where one speaker talks alone.

This is how a speaker wt found is enrolled by the label the transcript shows
(`wt voices add Therapist session.wav --turns session.json --label SPEAKER_01`): transcribe
once, say who SPEAKER_01 was, and that voice is named in every later session. A session gives
minutes of the person's speech in their own room, where a reference clip gives seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from whisper_cli.errors import InputNotFound, InvalidOptions

# Turns are cut where anybody else talks; what is left is kept when it lasts this long, less
# TRIM at each end. Seen on the carried AMI openings (the found speakers that are one person's
# by the reference): untrimmed, their turns hold a second voice for 1-2 s at the edges (overlap
# the segmentation did not mark), and the two-voices check of a reference clip refused 3 of
# them; trimmed 0.25 s, 1 of 12; trimmed 0.5 s, none.
TRIM_SECONDS = 0.5
MIN_STRETCH_SECONDS = 2.5
# More speech than this adds little to a voiceprint (22 s of one person named her at 0.82) and
# costs the whole diarization pipeline; the longest stretches are taken first.
MAX_SPEECH_SECONDS = 120.0


@dataclass(frozen=True)
class LabelledTurn:
    start: float
    end: float
    label: str


def read_turns(path: Path) -> list[LabelledTurn]:
    """The turns in a wt json result or an RTTM file; InvalidOptions says why a file is not one."""
    fix = "give the .json or .rttm that wt transcribe --diarize wrote for the recording"
    if not path.is_file():
        raise InputNotFound(f"{path}: turns file not found", fix)
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".rttm":
            turns = [
                LabelledTurn(float(f[3]), float(f[3]) + float(f[4]), f[7])
                for f in (line.split() for line in text.splitlines())
                if f and f[0] == "SPEAKER"
            ]
        else:
            data = json.loads(text)
            turns = [
                LabelledTurn(float(t["start"]), float(t["end"]), str(t["speaker"]))
                for t in data.get("speaker_turns", ())
            ]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise InvalidOptions(f"{path}: not a wt json result or an RTTM file ({e})", fix) from None
    if not turns:
        raise InvalidOptions(f"{path}: holds no speaker turns", fix)
    return turns


def solo_stretches(turns: list[LabelledTurn], label: str) -> list[tuple[float, float]]:
    """Where `label` talks and nobody else does, in stretches of MIN_STRETCH_SECONDS or more,
    each trimmed by TRIM_SECONDS at both ends; the longest first, up to MAX_SPEECH_SECONDS,
    returned in time order."""
    mine = _merged([(t.start, t.end) for t in turns if t.label == label])
    others = _merged([(t.start, t.end) for t in turns if t.label != label])
    stretches = []
    for start, end in mine:
        at = start
        for o_start, o_end in others:
            if o_end <= at or o_start >= end:
                continue
            stretches.append((at, o_start))
            at = max(at, o_end)
        stretches.append((at, end))
    kept = [
        (a + TRIM_SECONDS, b - TRIM_SECONDS) for a, b in stretches if b - a >= MIN_STRETCH_SECONDS
    ]
    chosen, total = [], 0.0
    for a, b in sorted(kept, key=lambda s: s[0] - s[1]):
        if total >= MAX_SPEECH_SECONDS:
            break
        b = min(b, a + MAX_SPEECH_SECONDS - total)
        chosen.append((a, b))
        total += b - a
    return sorted(chosen)


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]

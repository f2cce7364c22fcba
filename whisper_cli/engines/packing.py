"""Short clips of several jobs in one 30 s window: encoded once, decoded once.

Whisper encodes every clip as a full 30 s window, so on a 5 s clip the fixed encoder pass is
most of the work. When a worker runs jobs side by side (whisper_cli/engines/batching.py), jobs whose
audio is much shorter than a window and whose decoding settings are the same are placed one
after another in one window with GAP_SECONDS of silence between them. The windows of a pack
are decoded side by side in batched calls, with timestamps and word timings
(engines/packed.py, which keeps each segment in the clip the model heard it in); each word
goes back to the clip it overlaps most (or the nearest), and each job gets exactly its own
segments and words, with its own times. Whisper sometimes jumps over a clip or stops before
the last one (most often a clip that repeats one it has just heard): speech of a clip that
no segment covers is decoded again, packed, then still unheard stretches each alone.

Only what one window can say for all its clips is packed: the language must be known
(given, or an English-only model), and options that work across windows or on the audio
as a whole (VAD, the hallucination guard, batched decoding) keep a job to itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.output.result import Segment, Word

SAMPLE_RATE = 16000
MAX_CLIP_SECONDS = 12.0  # longer clips fill a window well enough alone
WINDOW_SECONDS = 28.0  # a packed window stays clear of Whisper's 30 s edge
GAP_SECONDS = 1.0  # silence between clips: Whisper ends a segment there
WINDOW_STRIDE_SECONDS = 30.0  # windows decoded together sit this far apart in one strip


def packable(duration: float, options: TranscribeOptions, multilingual: bool) -> bool:
    return (
        duration <= MAX_CLIP_SECONDS
        and options.batch_size <= 1
        and not options.vad
        and options.hallucination_silence_threshold is None
        and (options.language is not None or not multilingual)
    )


def decoding_key(options: TranscribeOptions) -> tuple:
    """Jobs pack together only when these settings are the same."""
    return (
        options.task,
        options.language,
        options.beam_size,
        options.temperatures(),
        options.initial_prompt,
        options.hotwords,
    )


@dataclass(frozen=True)
class Window:
    """Clips placed one after another: clip i spans spans[i] seconds of `audio`."""

    members: tuple[int, ...]  # indices of the clips
    spans: tuple[tuple[float, float], ...]
    audio: np.ndarray


def fingerprint(clip: np.ndarray) -> tuple[int, bytes]:
    """A stable order for clips: by length, then content."""
    return clip.size, hashlib.blake2b(clip.tobytes(), digest_size=8).digest()


def pack(clips: list[np.ndarray], per_window: int = 0) -> list[Window]:
    """The clips in as few windows of WINDOW_SECONDS as first-fit decreasing finds,
    GAP_SECONDS apart, at most `per_window` clips in a window when given. Every encoder pass
    is a whole 30 s window whatever it holds, so a window saved is a pass saved: 31 clips of
    a read chapter take 10 windows this way, 12 filled in arrival order."""
    gap = int(GAP_SECONDS * SAMPLE_RATE)
    limit = int(WINDOW_SECONDS * SAMPLE_RATE)
    bins: list[list[int]] = []
    lengths: list[int] = []
    # Longest first; ties keep the given order, so the same clips always pack the same way.
    for i in sorted(range(len(clips)), key=lambda i: -clips[i].size):
        for b, members in enumerate(bins):
            fits = lengths[b] + gap + clips[i].size <= limit
            if fits and len(members) != per_window:
                members.append(i)
                lengths[b] += gap + clips[i].size
                break
        else:
            bins.append([i])
            lengths.append(clips[i].size)
    return [_window(clips, sorted(members), gap) for members in bins]


def _window(clips: list[np.ndarray], members: list[int], gap: int) -> Window:
    """The clips one after another, in the given order, `gap` samples of silence apart."""
    silence = np.zeros(gap, np.float32)
    parts, spans, at = [], [], 0
    for k, i in enumerate(members):
        if k:
            parts.append(silence)
            at += gap
        spans.append((at / SAMPLE_RATE, (at + clips[i].size) / SAMPLE_RATE))
        parts.append(clips[i].astype(np.float32))
        at += clips[i].size
    return Window(tuple(members), tuple(spans), np.concatenate(parts))


def _owner(start: float, end: float, spans: tuple[tuple[float, float], ...]) -> int:
    """The clip a stretch of the window belongs to: the one it overlaps most (a word's
    start often reaches back into the silence before it), else the nearest."""
    overlaps = [min(end, b) - max(start, a) for a, b in spans]
    best = max(range(len(spans)), key=lambda k: overlaps[k])
    if overlaps[best] > 0:
        return best
    t = (start + end) / 2
    return min(range(len(spans)), key=lambda k: min(abs(t - spans[k][0]), abs(t - spans[k][1])))


def split(segments: list[Segment], window: Window, keep_words: bool) -> list[list[Segment]]:
    """Each clip's own segments, in its own time: a segment whose words fall in two clips is
    cut between them; times are clamped to the clip."""
    out: list[list[Segment]] = [[] for _ in window.members]
    for seg in segments:
        words = seg.words or ()
        if not words:
            k = _owner(seg.start, seg.end, window.spans)
            out[k].append(_shifted(seg, (), window.spans[k], whole=True, keep_words=keep_words))
            continue
        runs: list[tuple[int, list[Word]]] = []
        for w in words:
            k = _owner(w.start, w.end, window.spans)
            if runs and runs[-1][0] == k:
                runs[-1][1].append(w)
            else:
                runs.append((k, [w]))
        for k, run in runs:
            part = _shifted(seg, tuple(run), window.spans[k], len(runs) == 1, keep_words)
            out[k].append(part)
    return [[replace(s, id=i) for i, s in enumerate(segs)] for segs in out]


def _shifted(
    seg: Segment, words: tuple[Word, ...], span: tuple[float, float], whole: bool, keep_words: bool
) -> Segment:
    start, length = span[0], span[1] - span[0]

    def clamp(t: float) -> float:
        return round(min(max(t - start, 0.0), length), 3)

    moved = tuple(replace(w, start=clamp(w.start), end=clamp(w.end)) for w in words)
    return replace(
        seg,
        start=clamp(words[0].start if words and not whole else seg.start),
        end=clamp(words[-1].end if words and not whole else seg.end),
        text=seg.text if whole or not moved else "".join(w.word for w in moved),
        tokens=seg.tokens if whole else (),  # tokens cannot be split by word
        words=moved if keep_words else None,
        seek=0,
    )


def later(seg: Segment, offset: float) -> Segment:
    """A segment of a stretch that starts `offset` seconds into its clip, in the clip's time."""
    words = seg.words and tuple(
        replace(w, start=round(w.start + offset, 3), end=round(w.end + offset, 3))
        for w in seg.words
    )
    return replace(
        seg, start=round(seg.start + offset, 3), end=round(seg.end + offset, 3), words=words
    )

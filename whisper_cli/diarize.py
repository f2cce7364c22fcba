"""Who spoke when: speaker turns from voice embeddings, and a speaker on every word.

Embeddings are taken piece by piece as the recording is transcribed (memory stays flat), over
the speech Silero VAD finds; they are clustered once at the end (scikit-learn's agglomerative
clustering on cosine distance; the number of speakers from a distance threshold when not
given). Words take the speaker whose turns they overlap most; a segment spanning a change of
speaker is split at the change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from whisper_cli.engines import StopFn
from whisper_cli.errors import Canceled
from whisper_cli.result import Segment, Transcript, Word, join_text
from whisper_cli.speaker_encoder import SAMPLE_RATE, SpeakerEncoder

FRAME = 0.05  # seconds: the resolution of speaker turns
DEFAULT_MAX_SPEAKERS = 8
# Groups of windows further apart than this (average cosine distance) are different voices.
# Measured with resemblyzer on the repo's recordings: the last merge within one speaker's
# windows is at 0.27-0.31 (three speakers alone); between two voices 0.45-0.57 (two men of one
# accent, a man and a woman). A silhouette score cannot say "one speaker" and, on a few dozen
# windows, split one voice into 3-7.
SAME_SPEAKER_DISTANCE = 0.4
MIN_TURN = 0.3  # seconds: shorter runs are absorbed by their neighbours
BATCH_REGIONS = 32  # speech regions embedded in one network pass


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: int


class SpeakerTrack:
    """The voice embeddings of a recording, gathered piece by piece."""

    def __init__(self, encoder: SpeakerEncoder, should_stop: StopFn | None = None) -> None:
        self.encoder, self.should_stop = encoder, should_stop
        self.embeddings: list[np.ndarray] = []
        self.spans: list[np.ndarray] = []
        self.speech: list[tuple[float, float]] = []

    def add(self, piece: np.ndarray, start: float) -> None:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        regions = get_speech_timestamps(
            piece, VadOptions(min_silence_duration_ms=300, speech_pad_ms=100)
        )
        # In batches of turns: one network pass each, and a cancel is seen between them.
        for first in range(0, len(regions), BATCH_REGIONS):
            if self.should_stop and self.should_stop():
                raise Canceled("canceled")
            batch = regions[first : first + BATCH_REGIONS]
            found = self.encoder.windows([piece[r["start"] : r["end"]] for r in batch])
            for region, (vectors, spans) in zip(batch, found):
                begin = start + region["start"] / SAMPLE_RATE
                self.speech.append((begin, start + region["end"] / SAMPLE_RATE))
                if len(vectors):
                    self.embeddings.append(vectors)
                    self.spans.append(spans + begin)

    def turns(
        self, num: int | None = None, low: int | None = None, high: int | None = None
    ) -> list[Turn]:
        if not self.embeddings:
            return [Turn(s, e, 0) for s, e in self.speech]
        vectors = np.concatenate(self.embeddings)
        spans = np.concatenate(self.spans)
        labels = cluster(vectors, num, low, high)
        return _smooth(_frame_turns(self.speech, spans, labels))


def cluster(vectors: np.ndarray, num: int | None, low: int | None, high: int | None) -> np.ndarray:
    """A speaker label for each embedding: agglomerative clustering on cosine distance
    (average linkage), cut at SAME_SPEAKER_DISTANCE unless the number is given, then held
    within [low, high]."""
    from sklearn.cluster import AgglomerativeClustering

    n = len(vectors)

    def split(k: int) -> np.ndarray:
        if k <= 1 or n < 2:
            return np.zeros(n, int)
        model = AgglomerativeClustering(n_clusters=min(k, n), metric="cosine", linkage="average")
        return model.fit_predict(vectors)

    if num is not None:
        return split(num)
    if n < 2:
        return np.zeros(n, int)
    model = AgglomerativeClustering(
        n_clusters=None,
        distance_threshold=SAME_SPEAKER_DISTANCE,
        metric="cosine",
        linkage="average",
    ).fit(vectors)
    found = int(model.n_clusters_)
    wanted = min(max(found, low or 1), high or DEFAULT_MAX_SPEAKERS)
    return model.labels_ if wanted == found else split(wanted)


def _frame_turns(
    speech: list[tuple[float, float]], spans: np.ndarray, labels: np.ndarray
) -> list[Turn]:
    """Each FRAME of speech goes to the speaker most windows covering it belong to; a frame
    no window covers goes to the window nearest to it."""
    centres = spans.mean(axis=1)
    count = int(labels.max()) + 1
    turns: list[Turn] = []
    for start, end in speech:
        times = np.arange(start, end, FRAME) + FRAME / 2
        if times.size == 0:
            continue
        covers = (spans[:, 0][None, :] <= times[:, None]) & (times[:, None] < spans[:, 1][None, :])
        votes = np.zeros((times.size, count))
        for label in range(count):
            votes[:, label] = covers[:, labels == label].sum(axis=1)
        chosen = votes.argmax(axis=1)
        nearest = labels[np.abs(centres[None, :] - times[:, None]).argmin(axis=1)]
        chosen = np.where(votes.sum(axis=1) > 0, chosen, nearest)
        run_start = 0
        for i in range(1, times.size + 1):
            if i == times.size or chosen[i] != chosen[run_start]:
                a = start + run_start * FRAME
                b = min(end, start + i * FRAME)
                turns.append(Turn(round(a, 3), round(b, 3), int(chosen[run_start])))
                run_start = i
    return turns


def _smooth(turns: list[Turn]) -> list[Turn]:
    """Absorb runs shorter than MIN_TURN into a neighbour, then join touching turns of one
    speaker (a window straddling a change of voice leaves short slivers)."""
    turns = list(turns)
    changed = True
    while changed and len(turns) > 1:
        changed = False
        for i, t in enumerate(turns):
            if t.end - t.start >= MIN_TURN:
                continue
            prev = turns[i - 1] if i else None
            nxt = turns[i + 1] if i + 1 < len(turns) else None
            near = [
                n
                for n in (prev, nxt)
                if n is not None and min(abs(n.end - t.start), abs(t.end - n.start)) < 0.01
            ]
            if not near:
                continue
            donor = max(near, key=lambda n: n.end - n.start)
            turns[i] = replace(t, speaker=donor.speaker)
            changed = changed or donor.speaker != t.speaker
    joined: list[Turn] = []
    for t in turns:
        if joined and joined[-1].speaker == t.speaker and t.start - joined[-1].end < 0.01:
            joined[-1] = replace(joined[-1], end=t.end)
        else:
            joined.append(t)
    return joined


def speaker_at(start: float, end: float, turns: list[Turn]) -> tuple[int | None, float]:
    """The speaker whose turns overlap [start, end] most, and the share of the span that
    speaker covers; in a pause (no overlap), the nearest turn's speaker and 0."""
    if not turns:
        return None, 0.0
    overlap: dict[int, float] = {}
    for t in turns:
        shared = min(end, t.end) - max(start, t.start)
        if shared > 0:
            overlap[t.speaker] = overlap.get(t.speaker, 0.0) + shared
    if overlap:
        best = max(overlap, key=lambda k: overlap[k])
        return best, overlap[best] / max(end - start, 1e-3)
    middle = (start + end) / 2
    return min(turns, key=lambda t: max(t.start - middle, middle - t.end, 0.0)).speaker, 0.0


SENTENCE_END = (".", "?", "!", "…", "。", "？", "！")


def _word_speakers(words: tuple[Word, ...], turns: list[Turn]) -> list[int | None]:
    """By overlap with the turns. A word mostly in a pause (Whisper's word times are often a
    few hundred ms off at the end of a turn, or zero-length) has no acoustic evidence of its
    own: it stays with the sentence it continues, when the word before it in the segment
    did not end one; otherwise it goes to the nearest turn."""
    labels: list[int | None] = []
    for i, w in enumerate(words):
        label, share = speaker_at(w.start, w.end, turns)
        continues = i > 0 and not words[i - 1].word.strip().endswith(SENTENCE_END)
        if share < 0.5 and continues:
            label = labels[-1]
        labels.append(label)
    return labels


def assign_speakers(t: Transcript, turns: list[Turn], keep_words: bool) -> Transcript:
    """Put a speaker on every word and segment, splitting segments where the speaker
    changes; speakers are named SPEAKER_00, SPEAKER_01, ... in order of first appearance."""
    names: dict[int, str] = {}

    def name(label: int | None) -> str | None:
        if label is None:
            return None
        return names.setdefault(label, f"SPEAKER_{len(names):02d}")

    out: list[Segment] = []
    for seg in t.segments:
        if not seg.words:
            out.append(replace(seg, speaker=name(speaker_at(seg.start, seg.end, turns)[0])))
            continue
        labels = _word_speakers(seg.words, turns)
        words = [replace(w, speaker=name(label)) for w, label in zip(seg.words, labels)]
        runs: list[list[Word]] = []
        for w in words:
            if runs and runs[-1][-1].speaker == w.speaker:
                runs[-1].append(w)
            else:
                runs.append([w])
        for i, run in enumerate(runs):
            whole = len(runs) == 1
            out.append(
                replace(
                    seg,
                    start=seg.start if i == 0 else run[0].start,
                    end=seg.end if i == len(runs) - 1 else run[-1].end,
                    text=seg.text if whole else "".join(w.word for w in run),
                    words=tuple(run),
                    tokens=seg.tokens if whole else (),  # tokens cannot be split by word
                    speaker=run[0].speaker,
                )
            )
    segments = tuple(
        replace(s, id=i, words=s.words if keep_words else None) for i, s in enumerate(out)
    )
    return replace(t, segments=segments, text=join_text(segments), speakers=tuple(names.values()))

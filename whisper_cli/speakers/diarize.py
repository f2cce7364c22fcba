"""Who spoke when: speaker turns (overlap included) and a speaker on every word.

Built the way pyannote's 3.x pipelines are, from models that install from PyPI and run
offline:
1. Local segmentation (speakers/segmentation.py): 10 s windows every STEP (2.5 s); in each
   ~17 ms frame the network says which of up to three local speakers talk, two at once
   included.
2. One embedding per local speaker and window (whisper_cli/speakers/encoder.py, CAM++), from
   the frames where that speaker talks alone (overlap would mix two voices).
3. Clustering across the whole recording (whisper_cli/speakers/clustering.py): agglomerative,
   complete linkage on unit vectors, cut at a distance unless the number of speakers is given.
   Known voices (voiceprints) then name the clusters that match them, and clusters that match
   the same voice become one speaker (whisper_cli/speakers/naming.py). Local speakers of one
   window go to different speakers (Hungarian assignment to the centroids).
4. Reconstruction: each frame gets as many speakers as the windows covering it count, the
   ones their windows' activity most supports; runs of frames become turns, two speakers at
   once where they overlap.
Windows and embeddings are taken piece by piece as the recording is transcribed (a few KB per
window); clustering works on at most MAX_CLUSTERED embeddings (an even sample of a longer
recording, every embedding then assigned to the nearest centroid), so memory is bounded
whatever the length. Words take the speaker whose turns they overlap most.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from whisper_cli.engines.callbacks import StopFn
from whisper_cli.errors import Canceled
from whisper_cli.output.result import (
    KnownSpeaker,
    Segment,
    SpeakerTurn,
    Transcript,
    Word,
    join_text,
)
from whisper_cli.speakers.clustering import DEFAULT_CLUSTERING, Clustering, cluster_centroids
from whisper_cli.speakers.encoder import SpeakerEncoder
from whisper_cli.speakers.naming import Voiceprint, merge_named, outcomes
from whisper_cli.speakers.segmentation import (
    FRAME_SPAN,
    FRAME_STEP,
    SAMPLE_RATE,
    Segmenter,
    load_segmenter,
)

# A window every 2.5 s (each frame seen by four windows, four times the embeddings of windows
# side by side): chosen by leave-one-out with the clustering (bench/diarize.py --tune); side by
# side, a 30 s recording gave 4-6 embeddings and no distance held out of sample.
STEP_SECONDS = 2.5
STEP = int(STEP_SECONDS * SAMPLE_RATE)
# A frame is speech when the segmentation's "nobody" class has a probability under this; None:
# the likeliest class of all (pyannote's rule).
NOBODY_BELOW: float | None = None
# Less speech than this in a window: no embedding for that speaker (its frames still count
# who talks). Embeddings of under a second are mostly noise: with 0.5 s, DER 0.226.
MIN_EMBED_SECONDS = 1.0
MAX_EMBED_SECONDS = 6.0  # the middle of a longer stretch is enough, at a fraction of the cost
# Clip lengths are cut down to one of these (seconds), so that clips go through the encoder
# in full batches of one length (whole half seconds: 19% slower, DER no better).
EMBED_LENGTHS = (1.0, 2.0, 4.0, 6.0)
EMBED_BATCH = 8  # clips per encoder call: activations grow with it (64 six-second clips: GBs)
MIN_TURN = 0.1  # seconds: shorter runs of a speaker are dropped, shorter gaps bridged
FRAME_SECONDS = FRAME_STEP / SAMPLE_RATE


@dataclass(frozen=True)
class Turn:
    start: float
    end: float
    speaker: int


@dataclass(frozen=True)
class Speakers:
    """A recording's speakers: their turns (Turn.speaker indexes `centroids`), the names
    of those that matched a known voice, and how each known voice fared."""

    turns: list[Turn]
    centroids: np.ndarray  # (speakers, dim) unit vectors
    names: dict[int, str]
    known: tuple[KnownSpeaker, ...] = ()


@dataclass
class _Window:
    frame: int  # first frame on the recording's frame grid
    active: np.ndarray  # (F, 3) uint8
    embedded: list[int]  # local speakers with an embedding, in order of the rows taken


class SpeakerTrack:
    """The local segmentation and speaker embeddings of a recording, gathered piece by piece."""

    def __init__(
        self,
        encoder: SpeakerEncoder,
        should_stop: StopFn | None = None,
        segmenter: Segmenter | None = None,
        step: int = STEP,
        nobody_below: float | None = NOBODY_BELOW,
    ) -> None:
        self.encoder, self.should_stop, self.step = encoder, should_stop, step
        self.nobody_below = nobody_below
        self.segmenter = segmenter or load_segmenter()
        self.windows: list[_Window] = []
        self.embeddings: list[np.ndarray] = []

    def add(self, piece: np.ndarray, start: float) -> None:
        found = self.segmenter(piece, self.step, self.nobody_below)
        clips: list[np.ndarray] = []
        windows: list[_Window] = []
        for w_start, active in zip(found.starts, found.active, strict=True):
            alone = active.sum(axis=1) == 1
            embedded = []
            for k in range(active.shape[1]):
                frames = np.flatnonzero(active[:, k] & alone)
                if frames.size * FRAME_SECONDS < MIN_EMBED_SECONDS:
                    frames = np.flatnonzero(active[:, k])
                if frames.size * FRAME_SECONDS < MIN_EMBED_SECONDS:
                    continue
                keep = int(MAX_EMBED_SECONDS / FRAME_SECONDS)
                if frames.size > keep:
                    frames = frames[(frames.size - keep) // 2 :][:keep]
                audio = _frames_audio(piece, int(w_start), frames)
                # Clips of a few fixed lengths go through the encoder in batches.
                size = embed_length(audio.size)
                clips.append(audio[(audio.size - size) // 2 :][:size])
                embedded.append(k)
            frame = round((start * SAMPLE_RATE + int(w_start)) / FRAME_STEP)
            windows.append(_Window(frame, active, embedded))
        # The piece's clips in batches of one length (a batch of mixed lengths would go
        # through the network one clip at a time: 2-3x slower); a cancel is seen between them.
        by_length: dict[int, list[int]] = {}
        for i, clip in enumerate(clips):
            by_length.setdefault(clip.size, []).append(i)
        vectors = np.zeros((len(clips), self.encoder.dim), np.float32)
        for same in by_length.values():
            for first in range(0, len(same), EMBED_BATCH):
                if self.should_stop and self.should_stop():
                    raise Canceled("canceled")
                members = same[first : first + EMBED_BATCH]
                vectors[members] = self.encoder.embed([clips[i] for i in members])
        self.windows += windows
        if clips:
            self.embeddings.append(vectors)

    def speakers(
        self,
        num: int | None = None,
        low: int | None = None,
        high: int | None = None,
        known: tuple[Voiceprint, ...] = (),
        clustering: Clustering = DEFAULT_CLUSTERING,
    ) -> Speakers:
        if not self.embeddings:
            none = np.zeros((0, self.encoder.dim), np.float32)
            return Speakers([], none, {}, outcomes(none, known, {}))
        vectors = np.concatenate(self.embeddings)
        centroids = cluster_centroids(vectors, num, low, high, clustering)
        centroids, names, report = merge_named(centroids, known)
        return Speakers(_reconstruct(self.windows, vectors, centroids), centroids, names, report)

    def turns(
        self, num: int | None = None, low: int | None = None, high: int | None = None
    ) -> list[Turn]:
        return self.speakers(num, low, high).turns


def embed_length(samples: int) -> int:
    """The longest of EMBED_LENGTHS that `samples` fills."""
    return max(int(s * SAMPLE_RATE) for s in EMBED_LENGTHS if s * SAMPLE_RATE <= samples)


def _frames_audio(piece: np.ndarray, start: int, frames: np.ndarray) -> np.ndarray:
    """The samples of the given frames of a window, joined: each frame stands for the
    FRAME_STEP samples around its centre."""
    first = start + FRAME_SPAN // 2 - FRAME_STEP // 2
    index = (first + frames[:, None] * FRAME_STEP + np.arange(FRAME_STEP)[None, :]).ravel()
    return piece[index[(index >= 0) & (index < piece.size)]]


def _reconstruct(windows: list[_Window], vectors: np.ndarray, centroids: np.ndarray) -> list[Turn]:
    """Frame-level speakers from the windows' local activity and their speakers' clusters."""
    from scipy.optimize import linear_sum_assignment

    speakers = len(centroids)
    frames = max(w.frame + len(w.active) for w in windows)
    score = np.zeros((frames, speakers), np.float32)
    count = np.zeros(frames, np.float32)
    covered = np.zeros(frames, np.float32)
    row = 0
    for w in windows:
        span = slice(w.frame, w.frame + len(w.active))
        covered[span] += 1
        count[span] += w.active.sum(axis=1)
        if not w.embedded:
            continue
        similarity = vectors[row : row + len(w.embedded)] @ centroids.T
        row += len(w.embedded)
        assigned = dict(zip(*linear_sum_assignment(-similarity), strict=True))
        for i in range(len(w.embedded)):
            # More local speakers than speakers (the clustering merged two voices): the one
            # left over still speaks, as its nearest speaker, rather than being dropped.
            c = assigned.get(i, int(similarity[i].argmax()))
            score[span, c] += w.active[:, w.embedded[i]]
    covered = np.maximum(covered, 1)
    score /= covered[:, None]
    talking = np.minimum(np.rint(count / covered), speakers).astype(int)
    ranked = np.argsort(-score, axis=1)
    on = np.zeros_like(score, dtype=bool)
    for k in range(1, int(talking.max(initial=0)) + 1):
        rows = np.flatnonzero(talking >= k)
        on[rows, ranked[rows, k - 1]] = True
    on &= score > 0
    turns = [t for s in range(speakers) for t in _runs(on[:, s], s)]
    return sorted(turns, key=lambda t: (t.start, t.speaker))


def _runs(on: np.ndarray, speaker: int) -> list[Turn]:
    """Turns of one speaker from frame flags: gaps under MIN_TURN bridged, runs under MIN_TURN
    dropped."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    spans = [
        [start * FRAME_SECONDS + FRAME_SPAN / 2 / SAMPLE_RATE - FRAME_SECONDS / 2,
         end * FRAME_SECONDS + FRAME_SPAN / 2 / SAMPLE_RATE - FRAME_SECONDS / 2]
        for start, end in zip(edges[::2], edges[1::2], strict=True)
    ]  # fmt: skip
    joined: list[list[float]] = []
    for span in spans:
        if joined and span[0] - joined[-1][1] < MIN_TURN:
            joined[-1][1] = span[1]
        else:
            joined.append(span)
    return [Turn(round(a, 3), round(b, 3), speaker) for a, b in joined if b - a >= MIN_TURN]


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


def assign_speakers(
    t: Transcript,
    turns: list[Turn],
    keep_words: bool,
    known: dict[int, str] | None = None,
    voices: tuple[KnownSpeaker, ...] = (),
) -> Transcript:
    """Put a speaker on every word and segment, splitting segments where the speaker
    changes. A speaker that matched a known voice carries its name (`known`); the others are
    SPEAKER_00, SPEAKER_01, ... in order of first appearance. `voices`: how each known voice
    fared, kept in the transcript."""
    known = known or {}
    names: dict[int, str] = {}
    unnamed = 0

    def name(label: int | None) -> str | None:
        nonlocal unnamed
        if label is None:
            return None
        if label not in names:
            if label in known:
                names[label] = known[label]
            else:
                names[label] = f"SPEAKER_{unnamed:02d}"
                unnamed += 1
        return names[label]

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
    timeline = tuple(SpeakerTurn(x.start, x.end, name(x.speaker) or "") for x in turns)
    return replace(
        t,
        segments=segments,
        text=join_text(segments),
        speakers=tuple(names.values()),
        speaker_turns=timeline,
        known_speakers=voices,
    )

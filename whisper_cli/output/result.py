"""The result record every engine returns and every writer reads.

The json output format is exactly `Transcript.to_dict()`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float
    speaker: str | None = None  # with diarization only


@dataclass(frozen=True)
class Segment:
    id: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float | None = None
    words: tuple[Word, ...] | None = None
    # As in openai-whisper's json (and the OpenAI API's verbose_json): the 10 ms mel frame
    # where the segment's 30 s window began, and the text's token ids.
    seek: int = 0
    tokens: tuple[int, ...] = ()
    speaker: str | None = None  # with diarization only


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch of time one speaker talks; turns of two speakers overlap where both do."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class KnownSpeaker:
    """How a known voice (`--speaker`) fared in a recording: whether a speaker took its name,
    and the similarity that decided it (to that speaker, or else to the closest one; None
    when nobody was heard), against the threshold a name needs."""

    name: str
    named: bool
    similarity: float | None
    threshold: float


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    language_probability: float
    duration: float
    segments: tuple[Segment, ...]
    engine: str = ""
    model: str = ""
    device: str = ""
    compute_type: str = ""
    task: str = "transcribe"
    extra: dict[str, Any] = field(default_factory=dict)
    speakers: tuple[str, ...] = ()  # with diarization: every speaker, in order of appearance
    # With diarization: who spoke when, overlap included, independent of the words.
    speaker_turns: tuple[SpeakerTurn, ...] = ()
    # With known speakers: each one asked for, named or not (a name that is absent is
    # explained here rather than guessed at).
    known_speakers: tuple[KnownSpeaker, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Without diarization, exactly the fields wt always wrote (the spool's result.json
        is an interface): speaker fields appear only when there are speakers."""
        data = asdict(self)
        if not self.speakers:
            del data["speakers"]
        if not self.speaker_turns:
            del data["speaker_turns"]
        if not self.known_speakers:
            del data["known_speakers"]
        for seg in data["segments"]:
            if seg["words"] is None:
                del seg["words"]
            if seg["speaker"] is None:
                del seg["speaker"]
            for word in seg.get("words") or ():
                if word["speaker"] is None:
                    del word["speaker"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        segments = tuple(
            Segment(
                **{k: v for k, v in s.items() if k not in ("words", "tokens")},
                words=tuple(Word(**w) for w in s["words"]) if s.get("words") is not None else None,
                tokens=tuple(s.get("tokens", ())),
            )
            for s in data["segments"]
        )
        turns = tuple(SpeakerTurn(**t) for t in data.get("speaker_turns", ()))
        known = tuple(KnownSpeaker(**k) for k in data.get("known_speakers", ()))
        return cls(
            **{
                **data,
                "segments": segments,
                "speakers": tuple(data.get("speakers", ())),
                "speaker_turns": turns,
                "known_speakers": known,
            }
        )


def join_text(segments: tuple[Segment, ...] | list[Segment]) -> str:
    return "".join(s.text for s in segments).strip()


def clamp_to_duration(t: Transcript) -> Transcript:
    """Keep every timestamp inside [0, duration].

    Both engines can place the last timestamp token past the end of the audio (the model
    predicts in 20 ms steps within a padded 30 s window); players and aligners expect
    subtitles that end by the end of the file.
    """

    def c(x: float) -> float:
        return min(max(0.0, x), t.duration)

    segments = tuple(
        replace(
            s,
            start=c(s.start),
            end=c(s.end),
            words=tuple(replace(w, start=c(w.start), end=c(w.end)) for w in s.words)
            if s.words is not None
            else None,
        )
        for s in t.segments
    )
    return replace(t, segments=segments)


def without_words(t: Transcript) -> Transcript:
    return replace(t, segments=tuple(replace(s, words=None) for s in t.segments))


def in_time_order(segments: list[Segment]) -> list[Segment]:
    """Segments sorted by time and renumbered, none overlapping the one before it: a segment
    decoded again inside another one is dropped, one that runs into it starts where it ends
    (batched decoding decodes missed speech after the windows around it)."""
    out: list[Segment] = []
    for seg in sorted(segments, key=lambda x: (x.start, x.end)):
        if out and seg.end <= out[-1].end:
            continue
        if out:
            seg = starting_after(out[-1].end, seg)
        out.append(replace(seg, id=len(out)))
    return out


def starting_after(previous_end: float, segment: Segment) -> Segment:
    """Batched decoding cuts the audio at VAD chunk joins, and the last timestamp of one
    chunk can run past the first of the next (seen: 29.86 s vs 29.65 s): the later
    segment then starts where the earlier one ends, so subtitles never overlap. The
    earlier one has already gone out as live text, so it is the one kept as is."""
    if segment.start >= previous_end or segment.end <= previous_end:
        return segment
    words = segment.words
    if words is not None:
        words = tuple(
            replace(w, start=max(w.start, previous_end), end=max(w.end, previous_end))
            for w in words
        )
    return replace(segment, start=previous_end, words=words)

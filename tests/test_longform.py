"""Long recordings: batched decoding keeps every window's words (issue 23), segments stay fine,
and the automatic batch size picks batched decoding only where it was measured better."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SR, speech_files

from whisper_cli.audio.decode import decode
from whisper_cli.audio.vad import speech_clips
from whisper_cli.engines import load_engine
from whisper_cli.engines.batched import MAX_SEGMENT_SECONDS, PAUSE_SECONDS, phrase_groups
from whisper_cli.options.transcribe_options import AUTO_BATCH_SIZE, TranscribeOptions
from whisper_cli.wer import error_counts, normalize

CALL = ROOT / "tests" / "data" / "conversations" / "phone_pyannote_sample"
CALL_FROM = 6.3  # the call's first 6.3 s are silence


@dataclass(frozen=True)
class Spoken:
    start: float
    end: float
    text: str


def continuous_speech() -> tuple[np.ndarray, list[Spoken]]:
    """Real speech with no pause added anywhere: the English recordings cut to their speech
    and played back to back, then the telephone call. Every window batched decoding cuts
    ends in the middle of someone talking, where a dropped tail would show."""
    parts: list[np.ndarray] = []
    spoken: list[Spoken] = []
    at = 0.0
    for path, text in speech_files("en"):
        audio = decode(path)
        clips = speech_clips(audio)
        audio = audio[int(clips[0] * SR) : int(clips[-1] * SR)]
        parts.append(audio)
        spoken.append(Spoken(at, at + len(audio) / SR, text))
        at += len(audio) / SR
    call = decode(Path(f"{CALL}.wav"))[int(CALL_FROM * SR) :]
    parts.append(call)
    for line in Path(f"{CALL}.txt").read_text().splitlines():
        start, end, _speaker, words = line.split("\t")
        spoken.append(Spoken(at + float(start) - CALL_FROM, at + float(end) - CALL_FROM, words))
    return np.concatenate(parts), spoken


@pytest.fixture(scope="module")
def batched_run():
    audio, spoken = continuous_speech()
    assert len(audio) / SR > 40, "the recording must span more than one window"
    options = TranscribeOptions(
        model="base",
        language="en",
        batch_size=AUTO_BATCH_SIZE,
        temperature_increment_on_fallback=0.0,  # decoded the same way on every run
        word_timestamps=True,
    )
    return load_engine(options).transcribe(audio, options), audio, spoken


def test_batched_decoding_keeps_the_words_of_every_part_of_continuous_speech(batched_run):
    """Each sentence of the reference is found where it was said: a window whose last
    sentence were dropped would leave a sentence with (almost) none of its words."""
    transcript, _, spoken = batched_run
    words = [w for s in transcript.segments for w in s.words]
    for said in spoken:
        expected = len(normalize(said.text))
        heard = [w for w in words if said.start - 0.5 <= (w.start + w.end) / 2 <= said.end + 0.5]
        found = len(normalize(" ".join(w.word for w in heard)))
        assert found >= expected / 2, (said, [w.word for w in heard])
    reference = " ".join(s.text for s in spoken)
    errors = error_counts(reference, transcript.text)
    n = len(normalize(reference))
    # Measured: 10 deletions in 148 words (the call is hard telephone speech).
    assert errors.deletions <= 0.12 * n, errors


def test_batched_segments_are_fine_enough_for_subtitles(batched_run):
    """Windows decode without timestamps; segments cut from word timings are still short,
    in order, inside the audio, and hold exactly their words."""
    transcript, audio, spoken = batched_run
    segments = transcript.segments
    assert len(segments) >= len(spoken) / 3, [s.text for s in segments]
    previous_end = 0.0
    for s in segments:
        assert s.end - s.start <= MAX_SEGMENT_SECONDS + 0.01, s
        assert previous_end - 0.01 <= s.start <= s.end <= len(audio) / SR + 0.01, s
        assert s.words and s.text == "".join(w.word for w in s.words), s
        previous_end = s.end


def _words(*spec: tuple[str, float, float]) -> list[dict]:
    return [{"word": w, "start": a, "end": b} for w, a, b in spec]


def test_phrase_groups_cut_at_sentence_ends_pauses_and_length_and_lose_nothing():
    words = _words(
        (" Hello", 0.0, 0.4),
        (" there.", 0.4, 0.8),
        (" After", 0.9, 1.2),
        (" a", 1.2, 1.3),
        (" pause", 1.3 + PAUSE_SECONDS + 0.1, 2.5 + PAUSE_SECONDS),
        (' "quoted?"', 3.0 + PAUSE_SECONDS, 3.5 + PAUSE_SECONDS),
    )
    groups = phrase_groups(words)
    assert [[w["word"] for w in g] for g in groups] == [
        [" Hello", " there."],
        [" After", " a"],
        [" pause", ' "quoted?"'],
    ]
    run_on = _words(*((f" w{i}", i * 0.5, i * 0.5 + 0.4) for i in range(60)))
    groups = phrase_groups(run_on)
    assert [w for g in groups for w in g] == run_on
    assert all(g[-1]["end"] - g[0]["start"] <= MAX_SEGMENT_SECONDS for g in groups)
    clauses = _words(
        *((" word," if i % 4 == 3 else " word", i * 0.5, i * 0.5 + 0.4) for i in range(24))
    )
    assert all(g[-1]["word"].endswith(",") for g in phrase_groups(clauses)[:-1])


@pytest.mark.parametrize(
    ("options", "duration", "batch"),
    [
        ({}, 29.0, 1),  # one window: Whisper's own algorithm, as the bare library
        ({}, 31.0, AUTO_BATCH_SIZE),
        ({}, None, AUTO_BATCH_SIZE),
        ({"batch_size": 1}, 3600.0, 1),
        ({"batch_size": 4}, 10.0, 4),
        ({"engine": "openai"}, 3600.0, 1),
        ({"hallucination_silence_threshold": 2.0}, 3600.0, 1),
    ],
)
def test_the_automatic_batch_size(options, duration, batch):
    assert TranscribeOptions(**options).decoding_batch(duration) == batch

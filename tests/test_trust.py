"""A transcript says what was said, once: wt hears what the bare library hears, never
transcribes audio twice, and does not invent text over silence or noise at the end."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE, SR, encode, read_wav, run_wt, speech_files

from whisper_cli import transcribe
from whisper_cli.engines import load_engine
from whisper_cli.models import weights as models
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.transcribe import transcribe_file
from whisper_cli.wer import error_counts, normalize, wer


def all_recordings() -> list[tuple[Path, str]]:
    return speech_files("en") + speech_files("ru") + [SAMPLE]


def sox(*args: str | Path) -> None:
    if not shutil.which("sox"):
        pytest.fail("sox is not installed (apt-get install sox; make test installs it as root)")
    # -R: sox's noise and dither use one seed, so a test hears the same noise on every run.
    subprocess.run(["sox", "-R", *map(str, args)], check=True, capture_output=True)


def test_decoding_matches_faster_whisper_loader_sample_for_sample(tmp_path):
    """The samples are bit-identical to faster-whisper's decode_audio for every recording
    and for containers that need resampling and downmixing (44.1/48 kHz, stereo, 8 kHz)."""
    from faster_whisper.audio import decode_audio

    wav, _ = speech_files("en")[1]
    audio = read_wav(wav)
    inputs = [f for f, _ in all_recordings()]
    inputs += [encode(audio, tmp_path / f"x{ext}") for ext in (".mp3", ".m4a", ".opus", ".flac")]
    sox(wav, "-r", "44100", "-c", "2", tmp_path / "stereo44k.wav")
    sox(wav, "-r", "8000", tmp_path / "phone8k.wav")
    inputs += [tmp_path / "stereo44k.wav", tmp_path / "phone8k.wav"]
    for path in inputs:
        ours, theirs = read_wav(path), decode_audio(str(path))
        assert ours.dtype == theirs.dtype == np.float32
        assert np.array_equal(ours, theirs), path.name


def bare_faster_segments(path: Path, model: str) -> list[tuple[float, float, str]]:
    """faster-whisper on its own: its loader, its defaults (beam 5, fallback, conditioning)."""
    from faster_whisper import WhisperModel

    bare = _bare_models.get(model)
    if bare is None:
        bare = _bare_models[model] = WhisperModel(
            models.resolve_ct2(model), device="cpu", compute_type="int8"
        )
    segments, info = bare.transcribe(str(path), beam_size=5)
    return [
        (round(min(s.start, info.duration), 3), round(min(s.end, info.duration), 3), s.text)
        for s in segments
    ]


_bare_models: dict = {}


@pytest.mark.parametrize("model", ["base", "tiny.en"])
def test_cli_transcripts_equal_bare_faster_whisper_on_every_recording(tmp_path, model):
    """`wt transcribe` at its defaults gives the same segments, text and times, as bare
    faster-whisper on the same file, model folder and settings, for every recording."""
    recordings = all_recordings() if model == "base" else speech_files("en") + [SAMPLE]
    proc = run_wt(
        "transcribe",
        *[f for f, _ in recordings],
        "-o",
        tmp_path,
        "-f",
        "json",
        "-q",
        env={"WT_MODEL": model},
    )
    assert proc.returncode == 0, proc.stderr
    for path, _ in recordings:
        ours = json.loads((tmp_path / f"{path.stem}.json").read_text())["segments"]
        mine = [(s["start"], s["end"], s["text"]) for s in ours]
        assert mine == bare_faster_segments(path, model), path.name


def test_openai_engine_equals_bare_openai_whisper_on_the_same_samples():
    """The openai engine's transcript is openai-whisper's own on the same samples and model."""
    import whisper

    options = TranscribeOptions(model="tiny.en", engine="openai")
    engine = load_engine(options)
    for path, _ in speech_files("en"):
        audio = read_wav(path)
        ours = transcribe_file(path, options)[0].segments
        theirs = whisper.transcribe(
            engine.model, audio, beam_size=5, best_of=5, temperature=options.temperatures()
        )["segments"]
        assert [s.text for s in ours] == [s["text"] for s in theirs], path.name
        assert [s.start for s in ours] == [round(s["start"], 3) for s in theirs], path.name


def joined(recordings: list[tuple[Path, str]], pause: float = 0.6) -> tuple[np.ndarray, str]:
    """Distinct real recordings one after another with short pauses, and their text."""
    gap = np.zeros(int(pause * SR), np.float32)
    parts = [np.concatenate([read_wav(f), gap]) for f, _ in recordings]
    return np.concatenate(parts), " ".join(ref for _, ref in recordings)


def assert_said_once(text: str, reference: str, speech_end: float, segments, bound: float):
    """Nothing said twice or invented: at most two added words in the alignment with the
    reference (a misheard name can split in two: "whittemore" -> "to it more"; a repeated
    sentence adds five or more), few errors overall, and no segment past the speech."""
    errors = error_counts(reference, text)
    assert errors.insertions <= 2, f"{errors}: words added\n{text}"
    assert wer(reference, text) <= bound, text
    assert segments and segments[-1].end <= speech_end + 1.0, segments[-1]
    assert all(s.start < speech_end for s in segments), text


# Each case is real speech and then what the recording ends with: silence or quiet noise.
TAILS = ["silence 5", "silence 10", "silence 20", "noise 10"]


@pytest.mark.parametrize("tail", TAILS)
@pytest.mark.parametrize("model", ["base", "tiny.en"])
def test_no_text_is_invented_or_repeated_after_the_speech(tmp_path, tail, model):
    recordings = speech_files("en")[:4]
    speech, reference = joined(recordings)
    kind, seconds = tail.split()
    path = tmp_path / "speech.wav"
    encode(speech, path)
    if kind == "silence":
        sox(path, tmp_path / "out.wav", "pad", "0", seconds)
    else:
        sox("-n", "-r", str(SR), "-c", "1", tmp_path / "noise.wav", "synth", seconds,
            "whitenoise", "vol", "0.02")  # fmt: skip
        sox(path, tmp_path / "noise.wav", tmp_path / "out.wav")
    # Temperature fallback samples at random (CTranslate2's seed does not make it repeat):
    # judged on decoding that is the same on every run.
    options = TranscribeOptions(model=model, temperature_increment_on_fallback=0)
    t = transcribe_file(tmp_path / "out.wav", options)[0]
    assert_said_once(t.text, reference, len(speech) / SR, t.segments, bound=0.2)


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of about 12 s instead of 3 minutes: seams every few recordings, so the
    stitching of pieces (and any re-decoding at a seam) is tested on distinct real speech."""
    monkeypatch.setattr(transcribe, "CHUNK_SECONDS", 12.0)
    monkeypatch.setattr(transcribe, "CHUNK_SEARCH_SECONDS", 2.0)
    monkeypatch.setattr(transcribe, "BATCH_WINDOW_SECONDS", 3.0)  # batched pieces of 12 s too


# Files over one window decode in batches by default; --batch-size 1 (and the openai engine)
# keep Whisper's sequential loop, whose seams between pieces differ: both are tested.
@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("model", ["base", "tiny.en"])
def test_a_multi_piece_file_says_each_recording_once(tmp_path, small_pieces, model, batch):
    speech, reference = joined(speech_files("en"))
    path = encode(speech, tmp_path / "all.wav")
    pieces = list(transcribe.chunks([speech], 12.0, 2.0))
    assert len(pieces) >= 3
    t = transcribe_file(path, TranscribeOptions(model=model, batch_size=batch))[0]
    assert_said_once(t.text, reference, len(speech) / SR, t.segments, bound=0.15)
    starts = [s.start for s in t.segments]
    assert starts == sorted(starts)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("model", ["base", "tiny.en"])
def test_speech_that_ends_just_past_a_piece_boundary_is_said_once(
    tmp_path, small_pieces, model, batch
):
    """The last recording starts right after the only quiet point where a piece can end,
    so the final piece holds a few seconds of speech and then the file ends."""
    first, reference_a = joined(speech_files("en")[:3], pause=0.6)
    last, reference_b = joined(speech_files("en")[5:6], pause=0.0)
    rng = np.random.default_rng(0)
    # A faint noise floor everywhere except one 1.2 s gap of true silence: that gap is the
    # quietest point the piece cutter can find, so the cut falls there.
    floor = rng.normal(0, 0.002, first.size).astype(np.float32)
    audio = np.concatenate([first + floor, np.zeros(int(1.2 * SR), np.float32), last])
    path = encode(audio, tmp_path / "edge.wav")
    offsets = [off for off, _ in transcribe.chunks([audio], 12.0, 2.0)]
    assert len(offsets) == 2 and 0 < audio.size - offsets[1] < 5.5 * SR, offsets
    t = transcribe_file(path, TranscribeOptions(model=model, batch_size=batch))[0]
    reference = reference_a + " " + reference_b
    assert_said_once(t.text, reference, len(audio) / SR, t.segments, bound=0.2)
    assert wer(reference_b, " ".join(normalize(t.text)[-len(normalize(reference_b)) :])) < 0.5


@pytest.mark.parametrize("engine", ["faster", "openai"])
def test_hallucination_silence_threshold_guards_without_changing_outputs(tmp_path, engine):
    """The guard needs word timings: they are computed, but not written unless asked."""
    speech, reference = joined(speech_files("en")[:3])
    path = encode(np.concatenate([speech, np.zeros(15 * SR, np.float32)]), tmp_path / "s.wav")
    options = TranscribeOptions(model="tiny.en", engine=engine, hallucination_silence_threshold=2.0)
    t = transcribe_file(path, options)[0]
    assert all(s.words is None for s in t.segments)
    assert_said_once(t.text, reference, len(speech) / SR, t.segments, bound=0.2)


def test_without_the_silence_guard_base_repeats_itself_into_silence(tmp_path):
    """What the guard is for, on these recordings: with 20 s of silence after the speech,
    base (as bare faster-whisper) repeats its last sentence at 30 s; the guard drops it.
    Whisper's sequential loop, where this happens (batched decoding, the default over 30 s,
    skips silence with VAD: the trust tests above hold it to the same bounds)."""
    speech, reference = joined(speech_files("en")[:4])
    path = encode(np.concatenate([speech, np.zeros(20 * SR, np.float32)]), tmp_path / "s.wav")
    plain = TranscribeOptions(model="base", silence_guard=False, batch_size=1)
    unguarded = transcribe_file(path, plain)[0]
    assert error_counts(reference, unguarded.text).insertions >= 4
    assert unguarded.segments[-1].start > len(speech) / SR
    guarded = transcribe_file(path, replace(plain, silence_guard=True))[0]
    assert guarded.segments == unguarded.segments[:-1]


def test_silence_guard_checks_only_segments_after_a_gap():
    from whisper_cli.audio.guards import SilenceGuard
    from whisper_cli.output.result import Segment

    speech, _ = joined(speech_files("en")[:1], pause=0.0)
    audio = np.concatenate([speech, np.zeros(10 * SR, np.float32)])
    end = len(speech) / SR

    def seg(start: float, stop: float, text: str) -> Segment:
        return Segment(0, start, stop, text, -0.2, 0.1, 1.2, 0.0)

    real, invented, after = (
        seg(0.0, end, "real"),
        seg(end + 3, end + 5, "x"),
        seg(end + 5, end + 6, "y"),
    )

    def kept(segments: list[Segment]) -> list[Segment]:
        guard = SilenceGuard(audio)
        return [s for s in segments if guard.keep(s)]

    assert kept([real, invented, after]) == [real]
    # No gap before it: not checked, kept as the engine gave it.
    close = seg(end + 0.2, end + 1.0, "z")
    assert kept([real, close]) == [real, close]

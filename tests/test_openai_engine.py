"""The openai-whisper engine on weights converted from the bundled CTranslate2 models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import SR, long_speech, read_wav, run_wt, speech_files
from test_cli_transcribe import WER_BOUND, corpus_wer

from whisper_cli.engines import load_engine
from whisper_cli.errors import Canceled
from whisper_cli.models import weights as models
from whisper_cli.models.convert import CorruptModel, convert, read_ct2, to_openai_state
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.wer import normalize

pytest.importorskip("whisper", reason="openai-whisper is missing (scripts/install.sh installs it)")


def test_both_engines_agree_on_real_recordings(tmp_path):
    files = speech_files("en")
    texts = {}
    # Both in float32: the same weights, the same arithmetic precision, the same beam.
    # (faster's default int8 differs on 3 of 8 files: quantization, not a bug.)
    for engine in ("faster", "openai"):
        out = tmp_path / engine
        proc = run_wt(
            "transcribe",
            *[f for f, _ in files],
            "-o",
            out,
            "-e",
            engine,
            "-m",
            "tiny.en",
            "--beam-size",
            "5",
            "--compute-type",
            "float32",
            "-f",
            "txt",
        )
        assert proc.returncode == 0, proc.stderr
        texts[engine] = [(out / f"{f.stem}.txt").read_text() for f, _ in files]
        assert corpus_wer([(ref, hyp) for (_, ref), hyp in zip(files, texts[engine])]) < WER_BOUND
    assert [normalize(t) for t in texts["faster"]] == [normalize(t) for t in texts["openai"]]


def test_openai_word_timestamps_are_monotonic_and_inside_segments(tmp_path):
    (a, _), (b, _) = speech_files("en")[3:5]
    from conftest import encode

    wav = encode(
        np.concatenate([read_wav(a), np.zeros(SR // 2, np.float32), read_wav(b)]),
        tmp_path / "two.wav",
    )
    proc = run_wt(
        "transcribe", wav, "-o", tmp_path, "-e", "openai", "-f", "json", "--word-timestamps"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "two.json").read_text())
    assert data["engine"] == "openai" and data["compute_type"] == "float32"
    last = 0.0
    words = [w for s in data["segments"] for w in s["words"]]
    assert len(words) >= 8
    for seg in data["segments"]:
        for w in seg["words"]:
            assert seg["start"] - 0.01 <= w["start"] <= w["end"] <= seg["end"] + 0.01
            assert w["start"] >= last - 0.01
            last = w["end"]
    assert last <= data["duration"] + 0.01


def test_conversion_maps_every_parameter_and_loads_with_whisper(tmp_path):
    import torch
    import whisper
    from whisper.model import ModelDimensions, Whisper

    for name in ("tiny.en", "base"):
        src = models.materialize(models.BUNDLED[name])
        state, dims = to_openai_state(read_ct2(src / "model.bin"))
        expected = Whisper(ModelDimensions(**dims)).state_dict()
        assert set(state) == set(expected)
        for key, value in state.items():
            assert tuple(value.shape) == tuple(expected[key].shape), key
        out = convert(src, tmp_path / f"{name}.pt", name)
        ckpt = torch.load(out, weights_only=True)
        assert all(type(v) is int for v in ckpt["dims"].values())
        assert ckpt["alignment_heads"]
        model = whisper.load_model(str(out), device="cpu")
        assert model.dims == ModelDimensions(**dims)
        assert model.is_multilingual == (name == "base")


def test_corrupt_or_truncated_model_gives_clear_error(tmp_path):
    src = models.materialize(models.BUNDLED["tiny.en"])
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(src / f, broken / f)
    data = (src / "model.bin").read_bytes()
    (broken / "model.bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptModel, match="truncated"):
        read_ct2(broken / "model.bin")
    (broken / "model.bin").write_bytes(b"\x07\x00\x00\x00" + data[4:1000])
    with pytest.raises(CorruptModel, match="format version 7"):
        read_ct2(broken / "model.bin")
    (broken / "model.bin").write_bytes(data[: len(data) // 2])
    wav, _ = speech_files("en")[0]
    env = {"WT_CACHE_DIR": str(tmp_path / "cache")}
    proc = run_wt("transcribe", wav, "-e", "openai", "-m", broken, "-o", tmp_path, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "truncated CTranslate2 model" in proc.stderr
    proc = run_wt("models", "convert", broken, tmp_path / "x.pt")
    assert proc.returncode == 2 and "truncated" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("engine", ["openai", "faster"])
def test_progress_rises_to_one_and_cancel_stops_early(engine):
    audio = long_speech(95)
    eng = load_engine(TranscribeOptions(model="tiny.en", engine=engine, beam_size=1))
    opts = TranscribeOptions(model="tiny.en", engine=engine, beam_size=1)
    seen: list[float] = []
    t = eng.transcribe(audio, opts, on_progress=lambda done, total: seen.append(done / total))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3
    assert t.duration == pytest.approx(95, abs=0.01)

    calls: list[float] = []

    def stop_after_first_window() -> bool:
        return len(calls) >= 1

    with pytest.raises(Canceled):
        eng.transcribe(
            audio,
            opts,
            on_progress=lambda d, total: calls.append(d),
            should_stop=stop_after_first_window,
        )
    assert max(calls) < 60  # stopped within the first windows, not at the end


@pytest.mark.parametrize("engine", ["faster", "openai"])
def test_decoding_options_reach_the_library(engine, monkeypatch):
    """The fallback schedule and conditioning reach each library's own call unchanged."""
    import whisper

    options = TranscribeOptions(
        model="tiny.en",
        engine=engine,
        temperature=0.2,
        temperature_increment_on_fallback=0.4,
        condition_on_previous_text=False,
        beam_size=2,
        vad=True,
        hallucination_silence_threshold=2.0,
    )
    eng = load_engine(options)
    seen: dict = {}
    if engine == "faster":
        real = eng.model.transcribe

        def spy(*args, **kwargs):
            seen.update(kwargs)
            return real(*args, **kwargs)

        monkeypatch.setattr(eng.model, "transcribe", spy)
    else:
        real = whisper.transcribe

        def spy(*args, **kwargs):
            seen.update(kwargs)
            return real(*args, **kwargs)

        monkeypatch.setattr(whisper, "transcribe", spy)
    (wav, ref) = speech_files("en")[0]
    t = eng.transcribe(read_wav(wav), options)
    assert list(seen["temperature"]) == [0.2, 0.6, 1.0]
    assert seen["condition_on_previous_text"] is False
    assert seen["beam_size"] == 2 and seen["best_of"] == 2
    # Both engines: speech regions from Silero, decoded in place as clip_timestamps.
    clips = seen["clip_timestamps"]
    assert isinstance(clips, list) and len(clips) >= 2 and clips == sorted(clips)
    assert not seen.get("vad_filter")
    # The silence guard reaches the library with the word timings it needs; words are
    # computed for it but not written out, since they were not asked for.
    assert seen["hallucination_silence_threshold"] == 2.0 and seen["word_timestamps"] is True
    assert all(s.words is None for s in t.segments)
    assert normalize(t.text), "no text"
    assert all(s.temperature in (0.2, 0.6, 1.0) for s in t.segments)


def test_fallback_off_decodes_deterministically(tmp_path):
    """Without fallback nothing is sampled: the same file gives the same segments twice."""
    from conftest import encode

    wav = encode(long_speech(40), tmp_path / "long.wav")
    runs = []
    for i in range(2):
        proc = run_wt(
            "transcribe",
            wav,
            "-o",
            tmp_path / str(i),
            "-f",
            "json",
            "--temperature-increment-on-fallback",
            "0",
            "--no-condition-on-previous-text",
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads((tmp_path / str(i) / "long.json").read_text())["segments"])
    assert runs[0] == runs[1]
    assert all(s["temperature"] == 0.0 for s in runs[0])


@pytest.mark.parametrize("engine", ["faster", "openai"])
def test_vad_transcribes_around_a_long_silence(engine, tmp_path):
    from conftest import encode

    (a, ref_a), (b, ref_b) = speech_files("en")[2:4]
    first = read_wav(a)
    gap = np.random.default_rng(0).normal(0, 0.002, 25 * SR).astype(np.float32)
    wav = encode(np.concatenate([first, gap, read_wav(b)]), tmp_path / "gap.wav")
    proc = run_wt("transcribe", wav, "-o", tmp_path, "-f", "json", "-e", engine, "--vad")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "gap.json").read_text())
    assert corpus_wer([(f"{ref_a} {ref_b}", data["text"])]) < WER_BOUND, data["text"]
    silence = (len(first) / SR + 1.0, len(first) / SR + 24.0)
    for s in data["segments"]:
        assert s["end"] <= silence[0] or s["start"] >= silence[1], s


def test_speech_clips_end_inside_the_audio():
    """A clip end past the last mel frame made openai-whisper decode empty windows forever."""
    from whisper_cli.audio.vad import speech_clips

    for wav, _ in speech_files("en"):
        audio = read_wav(wav)
        clips = speech_clips(audio)
        assert clips and len(clips) % 2 == 0 and clips == sorted(clips)
        assert round(clips[-1] * 100) <= len(audio) // 160

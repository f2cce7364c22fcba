"""Language detection and decoding share the first window's encoder pass (issue 15)."""

from __future__ import annotations

from dataclasses import replace

from conftest import speech_files

from whisper_cli.audio.decode import decode
from whisper_cli.engines import load_engine
from whisper_cli.options.transcribe_options import TranscribeOptions


def _segments(t):
    return [(s.start, s.end, s.text) for s in t.segments]


def test_one_encoder_pass_per_window_and_the_same_words_as_with_the_language_given():
    """Without --language, each short recording costs one encoder pass (it was two: one to
    detect, one to decode), the language is right, and the words are those of a run told
    the language."""
    options = TranscribeOptions(model="base")
    engine = load_engine(options)
    files = speech_files("en")[:4] + speech_files("ru")
    for path, _ in files:
        audio = decode(path)
        before = engine.model.encoder_passes
        detected = engine.transcribe(audio, options)
        passes = engine.model.encoder_passes - before
        assert passes == 1, (path.name, passes)
        told = engine.transcribe(audio, replace(options, language=detected.language))
        assert detected.language == ("ru" if "ru" in path.name else "en"), path.name
        assert _segments(detected) == _segments(told), path.name


def test_vad_clips_and_long_audio_share_the_first_window_too():
    """The first window starts at the first speech clip with --vad (here off the 10 ms frame
    grid), and is a full 30 s one on audio longer than a window: detection adds no pass to
    those of a run told the language."""
    import numpy as np

    options = TranscribeOptions(model="base", vad=True)
    engine = load_engine(options)
    path, _ = speech_files("en")[0]
    speech = decode(path)
    pad = np.zeros(16000 * 3 + 37, np.float32)
    audio = np.concatenate([pad, *[speech, pad] * 8])
    assert len(audio) > 16000 * 45

    def passes(opts):
        before = engine.model.encoder_passes
        result = engine.transcribe(audio, opts)
        return engine.model.encoder_passes - before, result

    detected_passes, detected = passes(options)
    told_passes, told = passes(replace(options, language="en"))
    assert detected.language == "en"
    assert detected_passes == told_passes >= 2
    assert _segments(detected) == _segments(told)

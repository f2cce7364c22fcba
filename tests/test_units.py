"""Fast unit tests: options validation, output naming, writers, WER."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisper_cli.commands.inputs import assign_stems
from whisper_cli.errors import InvalidOptions
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.output.result import Segment, Transcript, Word
from whisper_cli.output.writers import render_srt, render_tsv, render_vtt, timestamp, write_outputs
from whisper_cli.wer import wer


def test_timestamps():
    assert timestamp(0, ",") == "00:00:00,000"
    assert timestamp(3661.2345, ".") == "01:01:01.234"
    assert timestamp(59.9996, ",") == "00:01:00,000"


def _transcript() -> Transcript:
    segs = (
        Segment(
            0,
            0.0,
            1.5,
            " Hello --> there.",
            -0.1,
            0.01,
            1.1,
            words=(Word(0.0, 0.5, " Hello", 0.9),),
        ),
        Segment(1, 1.5, 1.6, "  ", -0.1, 0.9, 1.0),
        Segment(2, 2.0, 3725.5, " Tab\there.", -0.2, 0.02, 1.2),
    )
    return Transcript("Hello --> there. Tab\there.", "en", 0.99, 3726.0, segs)


def test_subtitle_writers_skip_blank_segments_and_escape_arrows():
    t = _transcript()
    assert render_srt(t) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello -> there.\n\n"
        "2\n00:00:02,000 --> 01:02:05,500\nTab\there.\n"
    )
    assert render_vtt(t).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello -> there.\n")
    assert render_tsv(t).splitlines()[2] == "2000\t3725500\tTab here."


def test_write_outputs_is_atomic_and_json_round_trips(tmp_path):
    t = _transcript()
    paths = write_outputs(t, tmp_path / "o", "x", ("json", "txt"))
    assert [p.name for p in paths] == ["x.json", "x.txt"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["x.json", "x.txt"]
    # Readable by other users sharing a spool (mkstemp alone would leave 0600).
    assert paths[0].stat().st_mode & 0o044 == 0o044
    import json

    assert Transcript.from_dict(json.loads(paths[0].read_text())) == t


def test_stems_are_unique_and_stable():
    files = [
        Path("/a/d1/talk.wav"),
        Path("/a/d2/talk.wav"),
        Path("/a/d1/talk.mp3"),
        Path("/a/x/other.wav"),
    ]
    stems = [f.stem for f in assign_stems(files)]
    assert len(set(stems)) == 4
    assert stems[3] == "other"
    assert stems == [f.stem for f in assign_stems(list(files))]
    assert [f.stem for f in assign_stems([Path("/q/a.wav"), Path("/q/a.mp3")])] == [
        "a.wav",
        "a.mp3",
    ]


def test_options_from_sidecar_mapping_rejects_bad_types_and_keys():
    o = TranscribeOptions.from_mapping(
        {"language": "de", "output_formats": ["srt", "json"], "beam_size": 2}
    )
    assert (o.language, o.output_formats, o.beam_size) == ("de", ("srt", "json"), 2)
    assert TranscribeOptions.from_mapping({"output_formats": "all"}).output_formats == (
        "txt",
        "json",
        "srt",
        "vtt",
        "tsv",
    )
    for bad, words in [
        ({"beam_size": True}, "beam_size must be int"),
        ({"beam_size": "5"}, "beam_size must be int"),
        ({"model": ["x"]}, "model must be str"),
        ({"output_formats": ["../x"]}, "unknown output format"),
        ({"rm": "-rf"}, "unknown option(s): rm"),
        ({"engine": "magic"}, "unknown engine"),
        ({"temperature": 3}, "temperature"),
        ({"batch_size": -1}, "batch size must be between 1 and 64"),
        ({"batch_size": 4, "engine": "openai"}, "needs the faster engine"),
    ]:
        with pytest.raises(InvalidOptions, match=None) as info:
            TranscribeOptions.from_mapping(bad)
        assert words in str(info.value), (bad, str(info.value))


def test_temperature_schedule_matches_openai_whisper_cli():
    assert TranscribeOptions().temperatures() == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert TranscribeOptions(temperature=0.5).temperatures() == (0.5, 0.7, 0.9)
    assert TranscribeOptions(temperature_increment_on_fallback=0).temperatures() == (0.0,)
    assert TranscribeOptions(
        temperature=0.3, temperature_increment_on_fallback=0.25
    ).temperatures() == (0.3, 0.55, 0.8)
    o = TranscribeOptions.from_mapping(
        {"temperature_increment_on_fallback": 0, "condition_on_previous_text": False}
    )
    assert (o.temperature_increment_on_fallback, o.condition_on_previous_text) == (0.0, False)
    for bad in ({"temperature_increment_on_fallback": -0.1}, {"condition_on_previous_text": 1}):
        with pytest.raises(InvalidOptions):
            TranscribeOptions.from_mapping(bad)


def test_wer_normalisation():
    assert wer("For the twentieth time, Tom!", "for the 20th time tom") == 0.0
    assert wer("a b c d", "a x c") == 0.5

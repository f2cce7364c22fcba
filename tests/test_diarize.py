"""Who said what: diarization on conversations built from real recordings of different
people, with known turns, through the real engines."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SPEECH, encode, run_wt

from whisper_cli.audio import decode

GAP = 0.4  # seconds of silence between turns, as in a lively conversation
TWO_MEN = [  # two men of one accent: the hard case of two voices of the same sex
    "arctic_aew_a0001", "arctic_axb_a0004", "arctic_aew_a0002",
    "arctic_axb_a0006", "arctic_aew_a0003", "arctic_axb_a0005",
]  # fmt: skip
MAN_WOMAN_MAN = ["arctic_aew_a0001", "ds_ldc93s1", "arctic_axb_a0004", "arctic_aew_a0002"]
ONE_MAN = ["arctic_aew_a0001", "arctic_aew_a0002", "arctic_aew_a0003"]


def conversation(names: list[str], path: Path) -> tuple[Path, list[tuple[float, float, str]]]:
    """The recordings one after another; returns the file and its true turns."""
    pieces, turns, t = [], [], 0.0
    gap = np.zeros(int(GAP * 16000), np.float32)
    for name in names:
        audio = decode(SPEECH / f"{name}.wav")
        who = name.split("_")[1]  # aew, axb, ldc93s1 ...
        turns.append((t, t + audio.size / 16000, who))
        pieces += [audio, gap]
        t += (audio.size + gap.size) / 16000
    return encode(np.concatenate(pieces), path), turns


def speaker_accuracy(doc: dict, truth: list[tuple[float, float, str]]) -> float:
    """Share of the words' time given to the right speaker, under the best mapping of
    labels to people (each word's person: the true turn it overlaps most, or the nearest)."""
    words = [w for s in doc["segments"] for w in s["words"]]
    people = sorted({p for *_, p in truth})

    def person(w: dict) -> str:
        def score(turn):
            a, b, _ = turn
            return min(w["end"], b) - max(w["start"], a), -abs((a + b) / 2 - w["start"])

        return max(truth, key=score)[2]

    spans = [(max(w["end"] - w["start"], 0.02), w["speaker"], person(w)) for w in words]
    total = sum(d for d, *_ in spans)
    labels = sorted({s for _, s, _ in spans})
    best = 0.0
    for mapping in itertools.permutations(people + [None] * len(labels), len(labels)):
        hit = sum(d for d, s, p in spans if dict(zip(labels, mapping))[s] == p)
        best = max(best, hit / total)
    return best


def diarized(audio: Path, out: Path, *args: str) -> dict:
    proc = run_wt(
        "transcribe", audio, "-o", out, "-f", "json,txt,tsv,vtt", "--diarize",
        "--word-timestamps", "-q", *args,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / f"{audio.stem}.json").read_text())


def test_two_men_are_told_apart_word_by_word_with_the_default_model(tmp_path):
    audio, truth = conversation(TWO_MEN, tmp_path / "two_men.wav")
    doc = diarized(audio, tmp_path, "-m", "base")
    assert doc["speakers"] == ["SPEAKER_00", "SPEAKER_01"]  # counted, not told
    accuracy = speaker_accuracy(doc, truth)
    assert accuracy >= 0.95, accuracy  # measured 1.00 (README: speakers)
    for segment in doc["segments"]:  # a segment never spans two speakers
        assert {w["speaker"] for w in segment["words"]} == {segment["speaker"]}
    txt = (tmp_path / "two_men.txt").read_text().splitlines()
    tagged = [line for line in txt if line.startswith("[SPEAKER_")]
    assert len(tagged) == len(TWO_MEN), txt  # a tag at each of the six changes of speaker
    assert (tmp_path / "two_men.tsv").read_text().startswith("start\tend\tspeaker\ttext\n")
    assert "<v SPEAKER_01>" in (tmp_path / "two_men.vtt").read_text()


def test_a_woman_between_two_men_makes_three_speakers(tmp_path):
    audio, truth = conversation(MAN_WOMAN_MAN, tmp_path / "three.wav")
    doc = diarized(audio, tmp_path, "-m", "base")  # tiny.en skips her words and his (as bare)
    assert len(doc["speakers"]) == 3, doc["speakers"]
    assert speaker_accuracy(doc, truth) >= 0.9


def test_one_voice_is_one_speaker(tmp_path):
    audio, _ = conversation(ONE_MAN, tmp_path / "one.wav")
    assert diarized(audio, tmp_path)["speakers"] == ["SPEAKER_00"]


def test_speaker_bounds_are_obeyed(tmp_path):
    audio, _ = conversation(TWO_MEN, tmp_path / "two_men.wav")
    assert diarized(audio, tmp_path, "--max-speakers", "1")["speakers"] == ["SPEAKER_00"]
    three = diarized(audio, tmp_path, "--num-speakers", "3")["speakers"]
    assert three == ["SPEAKER_00", "SPEAKER_01", "SPEAKER_02"]


def test_the_openai_engine_path_diarizes_too(tmp_path):
    pytest.importorskip("whisper", reason="openai-whisper is not installed")
    audio, truth = conversation(TWO_MEN, tmp_path / "two_men.wav")
    doc = diarized(audio, tmp_path, "--engine", "openai", "--beam-size", "1")
    assert doc["engine"] == "openai" and len(doc["speakers"]) == 2
    assert speaker_accuracy(doc, truth) >= 0.9


def test_without_diarize_every_output_is_as_before(tmp_path):
    audio, _ = conversation(TWO_MEN[:2], tmp_path / "plain.wav")
    proc = run_wt("transcribe", audio, "-o", tmp_path, "--word-timestamps", "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "plain.json").read_text())
    assert "speakers" not in doc
    assert all("speaker" not in s for s in doc["segments"])
    assert all("speaker" not in w for s in doc["segments"] for w in s["words"])
    assert (tmp_path / "plain.tsv").read_text().startswith("start\tend\ttext\n")
    assert "[SPEAKER" not in (tmp_path / "plain.txt").read_text()
    assert "<v " not in (tmp_path / "plain.vtt").read_text()


def test_speaker_counts_without_diarize_are_refused_in_one_line(tmp_path):
    audio, _ = conversation(ONE_MAN[:1], tmp_path / "x.wav")
    proc = run_wt("transcribe", audio, "-o", tmp_path, "--num-speakers", "2")
    assert proc.returncode == 2 and "--diarize" in proc.stderr and "Traceback" not in proc.stderr


def test_a_spool_job_asks_for_speakers_in_its_sidecar(tmp_path, daemon_factory):
    audio, truth = conversation(TWO_MEN, tmp_path / "session.wav")
    daemon = daemon_factory()
    daemon.drop(audio, "session.wav", {"options": {"diarize": True, "num_speakers": 2}})
    job = daemon.wait_state("session.wav")
    assert job["state"] == "completed", job
    result = json.loads((daemon.spool / "jobs" / job["job_id"] / "result.json").read_text())
    assert result["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert [s["speaker"] for s in result["segments"]][:2] == ["SPEAKER_00", "SPEAKER_01"]


def test_a_cancel_stops_the_diarization_step():
    from whisper_cli.diarize import SpeakerTrack
    from whisper_cli.errors import Canceled
    from whisper_cli.speaker_encoder import load_encoder

    audio = decode(SPEECH / "arctic_aew_a0001.wav")
    track = SpeakerTrack(load_encoder(), should_stop=lambda: True)
    with pytest.raises(Canceled):
        track.add(audio, 0.0)
    assert track.embeddings == []  # stopped before any window was embedded

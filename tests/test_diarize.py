"""Who said what: diarization on conversations built from real recordings of different
people, with known turns, through the real engines."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SPEECH, encode, run_wt

from whisper_cli.audio.decode import decode

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
    assert accuracy >= 0.95, accuracy  # measured 1.00 (docs/speakers.md)
    for segment in doc["segments"]:  # a segment never spans two speakers
        assert {w["speaker"] for w in segment["words"]} == {segment["speaker"]}
    txt = (tmp_path / "two_men.txt").read_text().splitlines()
    tagged = [line for line in txt if line.startswith("[SPEAKER_")]
    assert len(tagged) == len(TWO_MEN), txt  # a tag at each of the six changes of speaker
    assert (tmp_path / "two_men.tsv").read_text().startswith("start\tend\tspeaker\ttext\n")
    assert "<v SPEAKER_01>" in (tmp_path / "two_men.vtt").read_text()


def test_a_conversation_longer_than_a_window_is_decoded_in_batches_and_diarized(tmp_path):
    """Over 30 s, the default decodes in batches (segments cut from word timings): speakers
    still land on the right words."""
    audio, truth = conversation(TWO_MEN * 2, tmp_path / "long.wav")
    assert truth[-1][1] > 31
    doc = diarized(audio, tmp_path, "-m", "base")
    assert doc["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert speaker_accuracy(doc, truth) >= 0.95, speaker_accuracy(doc, truth)


def test_a_woman_between_two_men_makes_three_speakers(tmp_path):
    # Her 3 s of speech is one complete-linkage merge of 1.03 from the men's: under the distance
    # chosen by leave-one-out on real conversations (1.125), so the count comes from a bound
    # here. With the earlier settings (average linkage 0.9, chosen on the test files) she was
    # found unaided; on held-out real recordings they did worse (README: Speakers).
    audio, truth = conversation(MAN_WOMAN_MAN, tmp_path / "three.wav")
    # tiny.en skips her words and his (as bare)
    doc = diarized(audio, tmp_path, "-m", "base", "--min-speakers", "3")
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


def test_a_spool_job_asks_for_speakers_in_its_sidecar(tmp_path, daemon_factory, server_factory):
    import httpx

    audio, truth = conversation(TWO_MEN, tmp_path / "session.wav")
    daemon = daemon_factory()
    daemon.drop(audio, "session.wav", {"options": {"diarize": True, "num_speakers": 2}})
    job = daemon.wait_state("session.wav")
    assert job["state"] == "completed", job
    result = json.loads((daemon.spool / "jobs" / job["job_id"] / "result.json").read_text())
    assert result["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    assert [s["speaker"] for s in result["segments"]][:2] == ["SPEAKER_00", "SPEAKER_01"]
    # Every format by default, so the speaker timeline too (GET /jobs/ID/result?format=rttm).
    rttm = read_rttm(daemon.spool / "jobs" / job["job_id"] / "result.rttm")
    assert {who for *_, who in rttm} == {"SPEAKER_00", "SPEAKER_01"}
    server = server_factory(spool=daemon.spool)
    url = f"{server.url}/jobs/{job['job_id']}/result"
    served = httpx.get(url, params={"format": "rttm"})
    assert served.status_code == 200, served.text
    assert served.text == (daemon.spool / "jobs" / job["job_id"] / "result.rttm").read_text()
    assert httpx.get(url, params={"format": "doc"}).status_code == 400


def test_a_cancel_stops_the_diarization_step():
    from whisper_cli.errors import Canceled
    from whisper_cli.speakers.diarize import SpeakerTrack
    from whisper_cli.speakers.encoder import load_encoder

    audio = decode(SPEECH / "arctic_aew_a0001.wav")
    track = SpeakerTrack(load_encoder(), should_stop=lambda: True)
    with pytest.raises(Canceled):
        track.add(audio, 0.0)
    assert track.embeddings == []  # stopped before any window was embedded


CALL = Path(__file__).parent / "data" / "conversations" / "phone_pyannote_sample"


def read_rttm(path: Path) -> list[tuple[float, float, str]]:
    turns = []
    for line in path.read_text().splitlines():
        kind, file_id, channel, start, duration, _, _, speaker, _, _ = line.split(" ")
        assert (kind, channel) == ("SPEAKER", "1") and " " not in file_id, line
        turns.append((float(start), float(start) + float(duration), speaker))
    return turns


def diarization_error_rate(reference: Path, turns: list[tuple[float, float, str]]) -> float:
    """pyannote.metrics' DER, overlapped speech scored, collar 0.25 s each side."""
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = Annotation(), Annotation()
    for i, (start, end, who) in enumerate(read_rttm(reference)):
        ref[Segment(start, end), i] = who
    for i, (start, end, who) in enumerate(turns):
        hyp[Segment(start, end), i] = who
    return DiarizationErrorRate(collar=0.5, skip_overlap=False)(
        ref, hyp, uem=ref.get_timeline().extent()
    )


def test_a_real_telephone_call_is_two_people_found_unaided(tmp_path):
    """Two women on a real telephone line, talking over each other at times: the speaker
    count is estimated (not told), and the timeline is scored against the hand-made
    reference as the field scores it."""
    wav = Path(f"{CALL}.wav")
    proc = run_wt("transcribe", wav, "-o", tmp_path, "-f", "json,rttm", "--diarize", "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / f"{wav.stem}.json").read_text())
    assert doc["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    turns = read_rttm(tmp_path / f"{wav.stem}.rttm")
    assert {who for *_, who in turns} == {"SPEAKER_00", "SPEAKER_01"}
    # Measured 0.02 (0.10 without a collar); wt 0.4 found one speaker here (DER 0.46).
    assert diarization_error_rate(Path(f"{CALL}.rttm"), turns) <= 0.15
    overlapping = [
        (a, b) for a, b in itertools.combinations(turns, 2) if a[2] != b[2] and a[1] > b[0] + 0.2
        and b[1] > a[0] + 0.2
    ]  # fmt: skip
    assert overlapping, turns  # the reference has 8% overlapped speech; some is found
    timeline = [(t["start"], t["end"], t["speaker"]) for t in doc["speaker_turns"]]
    assert [who for *_, who in timeline] == [who for *_, who in turns]
    assert all(
        abs(a[0] - b[0]) < 0.002 and abs(a[1] - b[1]) < 0.002 for a, b in zip(timeline, turns)
    )
    for segment in doc["segments"]:
        assert segment["speaker"] in doc["speakers"]


def test_rttm_needs_diarize_and_says_so_in_one_line(tmp_path):
    wav = Path(f"{CALL}.wav")
    proc = run_wt("transcribe", wav, "-o", tmp_path, "-f", "rttm")
    assert proc.returncode == 2, proc.stderr
    assert "--diarize" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir())


def test_one_window_of_turns_reconstructs_overlap_and_drops_slivers():
    """Frames where a window's two local speakers both talk give both speakers a turn there;
    runs shorter than MIN_TURN are dropped."""
    from whisper_cli.speakers.diarize import FRAME_SECONDS, MIN_TURN, _reconstruct, _Window

    frames = 589
    active = np.zeros((frames, 3), np.uint8)
    active[0:300, 0] = 1
    active[250:589, 1] = 1  # 50 frames (0.84 s) of overlap
    active[400:403, 2] = 1  # a sliver under MIN_TURN, of a third local speaker
    window = _Window(frame=0, active=active, embedded=[0, 1])
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    turns = _reconstruct([window], vectors, centroids=vectors)
    assert {t.speaker for t in turns} == {0, 1}
    first, second = sorted(turns, key=lambda t: t.speaker)
    assert first.end - second.start == pytest.approx(50 * FRAME_SECONDS, abs=0.02)
    assert all(t.end - t.start >= MIN_TURN for t in turns)


def test_clustering_memory_is_bounded_and_counts_are_obeyed():
    from whisper_cli.speakers.clustering import MAX_CLUSTERED, cluster_centroids

    rng = np.random.default_rng(0)
    voices = rng.normal(size=(2, 64))
    vectors = np.concatenate(
        [v + 0.3 * rng.normal(size=(3 * MAX_CLUSTERED // 2, 64)) for v in voices]
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert len(cluster_centroids(vectors, None, None, None)) == 2  # 3x the bound, two voices
    assert len(cluster_centroids(vectors, 3, None, None)) == 3
    assert len(cluster_centroids(vectors, None, None, 1)) == 1
    assert len(cluster_centroids(vectors[:1], None, None, None)) == 1


def test_fbank_matches_kaldi_layout():
    """80 mean-normalised log mel bands every 10 ms of 25 ms frames (Kaldi's snip_edges), on
    Kaldi's mel scale: a 1 kHz tone lights the band centred nearest to 1 kHz."""
    from whisper_cli.speakers.fbank import fbank

    rng = np.random.default_rng(1)
    noise = 0.01 * rng.normal(size=32000).astype(np.float32)
    noise[:16000] += np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000).astype(np.float32)
    features = fbank(noise)
    assert features.shape == (1 + (32000 - 400) // 160, 80)
    assert np.allclose(features.mean(axis=0), 0.0, atol=1e-3)
    lit = features[:80].mean(axis=0) - features[-80:].mean(axis=0)
    mel = 1127 * np.log(1 + np.array([20.0, 8000.0, 1000.0]) / 700)
    centres = np.linspace(mel[0], mel[1], 82)[1:-1]
    assert lit.argmax() == np.abs(centres - mel[2]).argmin()
    assert fbank(np.zeros(100, np.float32)).shape == (0, 80)


def test_the_onnx_speaker_encoder_matches_the_torch_network(tmp_path, monkeypatch):
    """CPU runs CAM++ from an ONNX export (baked into the environment by install.sh, else
    made on first use and cached); a GPU runs the torch network. Both give the same voice
    vectors, a second load reuses the export, and a baked export is preferred."""
    import whisper_cli.speakers.encoder as se

    monkeypatch.setenv("WT_CACHE_DIR", str(tmp_path / "cache"))
    baked = tmp_path / "prefix" / "share" / "wt" / se._baked().name
    monkeypatch.setattr(se, "_baked", lambda: baked)
    audio = decode(CALL.with_suffix(".wav"))
    clips = [audio[s * 16000 : s * 16000 + n * 8000] for s, n in ((2, 3), (5, 7), (9, 7), (14, 12))]
    exported = se.CamPlusPlusEncoder("cpu")
    assert exported.session is not None, "the ONNX export needs the onnx package"
    (path,) = (tmp_path / "cache" / "speaker-encoder").glob("campplus-*.onnx")
    made = path.stat().st_mtime_ns
    on_torch = se.CamPlusPlusEncoder.__new__(se.CamPlusPlusEncoder)
    on_torch.device, on_torch.session, on_torch.model = "cpu", None, se._torch_network("cpu")
    a, b = exported.embed(clips), on_torch.embed(clips)
    assert a.shape == (4, 192)
    assert np.all((a * b).sum(axis=1) > 0.999)
    se.CamPlusPlusEncoder("cpu")
    assert path.stat().st_mtime_ns == made
    assert not list(tmp_path.glob("cache/speaker-encoder/*.partial"))
    assert se.bake() == baked and se.onnx_export() == baked

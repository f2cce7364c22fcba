"""The HTTP door gives a service every per-job option: POST /jobs (options as form fields or
one JSON field), the replaced service's POST /transcribe with the same fields, OpenAI's
diarized_json with known speakers (through the official openai client), and retention
(DELETE /jobs/ID?purge=true). Real daemons and servers on 127.0.0.1, real models."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
from conftest import ROOT, encode
from test_speakers import CONVERSATIONS, alone, solo_clip, timeline

CALL = CONVERSATIONS / "phone_pyannote_sample.wav"
SPEECH = ROOT / "tests" / "data" / "speech" / "arctic_aew_a0001.wav"


def post_job(server, path=SPEECH, data=None, files_extra=None, url="/jobs", **kw):
    with open(path, "rb") as fh:
        files = [("file", (path.name, fh, "audio/wav")), *(files_extra or [])]
        return httpx.post(server.url + url, files=files, data=data or {}, timeout=60, **kw)


def wait_done(server, job_id: str) -> dict:
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        r = httpx.get(f"{server.url}/jobs/{job_id}")
        if r.status_code == 200 and r.json()["state"] in ("completed", "failed", "canceled"):
            return r.json()
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


def test_post_jobs_takes_every_option_as_form_fields_or_json(daemon_factory, server_factory):
    daemon = daemon_factory()
    server = server_factory(spool=daemon.spool)
    fields = {"diarize": "true", "num_speakers": "2", "output_formats": "json,rttm",
              "word_timestamps": "true", "beam_size": "2", "language": "en"}  # fmt: skip
    r = post_job(server, CALL, data=fields)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    status = wait_done(server, job_id)
    assert status["state"] == "completed", status
    assert status["options"]["num_speakers"] == 2 and status["options"]["beam_size"] == 2
    assert sorted(status["outputs"]) == ["result.json", "result.rttm"]
    doc = httpx.get(f"{server.url}/jobs/{job_id}/result", params={"format": "json"}).json()
    assert sorted(doc["speakers"]) == ["SPEAKER_00", "SPEAKER_01"]
    assert "words" in doc["segments"][0]
    # The same as one JSON field.
    options = {"output_formats": ["txt"], "initial_prompt": "Arctic.", "beam_size": 1}
    r = post_job(server, data={"options": json.dumps(options)})
    assert r.status_code == 202, r.text
    status = wait_done(server, r.json()["id"])
    assert status["options"]["initial_prompt"] == "Arctic."
    assert "result.txt" in status["outputs"] and "result.srt" not in status["outputs"]


def test_a_refused_option_is_a_400_naming_the_field_and_leaves_nothing(tmp_path, server_factory):
    server = server_factory()
    for data, words in (
        ({"num_speakers": "two"}, "num_speakers: 'two' is not a whole number"),
        ({"beam_size": "99"}, "beam size must be between 1 and 20"),
        ({"colour": "blue"}, "colour: is not a job option"),
        ({"threads": "4"}, "threads: is set for a whole daemon"),
        ({"speakers": "Ann=rel.wav", "diarize": "true"}, "is relative"),
        ({"notify": "ftp://example.com/x"}, "notify:"),
        ({"options": "{not json"}, "options: is not valid JSON"),
    ):
        r = post_job(server, data=data)
        assert r.status_code == 400, (data, r.text)
        assert words in r.json()["detail"], (data, r.json())
    assert not list((server.spool / "inbox").iterdir())  # no upload left behind


def test_the_replaced_service_route_takes_the_same_fields(daemon_factory, server_factory):
    daemon = daemon_factory()
    server = server_factory(spool=daemon.spool)
    r = post_job(server, CALL, url="/transcribe", data={"diarize": "true", "num_speakers": "2"})
    assert r.status_code == 202 and r.json()["message"] == "Transcription job created", r.text
    status = wait_done(server, r.json()["job_id"])
    legacy = httpx.get(f"{server.url}/status/{status['job_id']}").json()
    assert legacy["status"] == "completed"
    assert {s["speaker"] for s in legacy["result"]["segments"]} == {"SPEAKER_00", "SPEAKER_01"}
    r = post_job(server, url="/transcribe", data={"beam_size": "0"})  # still validated
    assert r.status_code == 400


def data_url(path) -> str:
    return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()


def test_openai_diarized_json_names_known_speakers_through_the_official_client(
    tmp_path, daemon_factory, server_factory
):
    from openai import OpenAI

    daemon = daemon_factory()
    server = server_factory(spool=daemon.spool)
    her = solo_clip("phone_pyannote_sample", "speaker90", tmp_path / "her.wav", until=15.0)
    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    with open(CALL, "rb") as fh:
        result = client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize",
            file=fh,
            response_format="diarized_json",
            chunking_strategy="auto",
            extra_body={
                "known_speaker_names": ["Therapist"],
                "known_speaker_references": [data_url(her)],
            },
        )
    body = result.model_dump() if hasattr(result, "model_dump") else json.loads(result)
    # The next job from the same daemon: plain text, no speakers.
    with open(SPEECH, "rb") as fh:
        plain = client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert "danger trail" in plain.text.lower(), plain.text
    assert not hasattr(plain, "segments") or not getattr(plain, "segments", None)
    assert body["task"] == "transcribe" and body["usage"]["type"] == "duration"
    assert abs(body["duration"] - 30.0) < 0.5
    segments = body["segments"]
    assert {s["type"] for s in segments} == {"transcript.text.segment"}
    assert {s["speaker"] for s in segments} == {"Therapist", "SPEAKER_00"}
    # Her turns carry her name: each segment of 1 s or more against the reference (the
    # call's first word, a 0.5 s "hello", goes to the wrong woman: a diarization error).
    ref = timeline(CONVERSATIONS / "phone_pyannote_sample.rttm")
    hers, other = alone(ref, "speaker90"), alone(ref, "speaker91")
    long = [s for s in segments if s["end"] - s["start"] >= 1.0]
    assert len(long) >= 4, segments
    for s in long:
        span = slice(int(s["start"] / 0.01), int(s["end"] / 0.01))
        if hers[span].mean() > 0.8:
            assert s["speaker"] == "Therapist", s
        if other[span].mean() > 0.8:
            assert s["speaker"] == "SPEAKER_00", s


def test_openai_diarized_json_streams_segments_then_done(daemon_factory, server_factory):
    daemon = daemon_factory()
    server = server_factory(spool=daemon.spool)
    with open(CALL, "rb") as fh, httpx.stream(
        "POST", server.url + "/v1/audio/transcriptions", timeout=180,
        files={"file": ("call.wav", fh, "audio/wav")},
        data={"model": "gpt-4o-transcribe-diarize", "response_format": "diarized_json",
              "stream": "true"},
    ) as r:  # fmt: skip
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.segment"}
    assert {e["speaker"] for e in events[:-1]} == {"SPEAKER_00", "SPEAKER_01"}
    assert events[-1]["text"].strip()


def test_a_bad_reference_clip_fails_the_job_with_its_reason(
    tmp_path, daemon_factory, server_factory
):
    daemon = daemon_factory()
    server = server_factory(spool=daemon.spool)
    silent = encode(np.zeros(5 * 16000, np.float32), tmp_path / "silent.wav")
    r = post_job(server, CALL, data={"known_speaker_names[]": "Therapist",
                                     "known_speaker_references[]": data_url(silent)})  # fmt: skip
    assert r.status_code == 202, r.text
    status = wait_done(server, r.json()["id"])
    assert status["state"] == "failed"
    assert "holds no speech" in status["error"]["message"]
    r = post_job(server, data={"known_speaker_names[]": "Therapist",
                               "known_speaker_references[]": "not a data url"})  # fmt: skip
    assert r.status_code == 400 and "data URL" in r.json()["detail"]


def test_purge_removes_a_finished_job_and_refuses_a_running_one(daemon_factory, server_factory):
    daemon = daemon_factory()
    server = server_factory(spool=daemon.spool)
    job_id = post_job(server).json()["id"]
    assert wait_done(server, job_id)["state"] == "completed"
    assert (daemon.spool / "jobs" / job_id).is_dir()
    r = httpx.delete(f"{server.url}/jobs/{job_id}", params={"purge": "true"})
    assert r.status_code == 200 and r.json() == {"job_id": job_id, "purged": True}
    assert not (daemon.spool / "jobs" / job_id).exists()
    assert httpx.get(f"{server.url}/jobs/{job_id}").status_code == 404
    assert httpx.delete(f"{server.url}/jobs/{job_id}", params={"purge": "true"}).status_code == 404


def test_serve_with_several_worker_processes_answers_on_one_port(daemon_factory, server_factory):
    daemon = daemon_factory()
    server = server_factory("--workers", "2", spool=daemon.spool)
    ids = [post_job(server, data={"beam_size": "1"}).json()["id"] for _ in range(4)]
    for job_id in ids:  # any process answers for any job: the door keeps no state
        assert wait_done(server, job_id)["state"] == "completed"


def test_the_replaced_service_gets_names_for_one_job_and_plain_text_for_the_next(
    tmp_path, daemon_factory, server_factory
):
    daemon = daemon_factory()
    server = server_factory(spool=daemon.spool)
    her = solo_clip("phone_pyannote_sample", "speaker90", tmp_path / "her.wav", until=15.0)
    named = post_job(
        server,
        CALL,
        url="/transcribe",
        data={"known_speaker_names[]": "Therapist", "known_speaker_references[]": data_url(her)},
    )
    plain = post_job(server, url="/transcribe")  # an existing client: no fields at all
    assert named.status_code == plain.status_code == 202
    first, second = named.json()["job_id"], plain.json()["job_id"]
    for job_id in (first, second):
        assert wait_done(server, job_id)["state"] == "completed"
    segments = httpx.get(f"{server.url}/status/{first}").json()["result"]["segments"]
    assert {s["speaker"] for s in segments} == {"Therapist", "SPEAKER_00"}
    result = httpx.get(f"{server.url}/status/{second}").json()["result"]
    assert "danger trail" in result["text"].lower(), result["text"]
    assert all("speaker" not in s for s in result["segments"])
    # Purged, the named job leaves nothing: its folder and its reference clip are gone.
    assert (daemon.spool / "references" / first).is_dir()
    r = httpx.delete(f"{server.url}/jobs/{first}", params={"purge": "true"})
    assert r.status_code == 200
    assert not (daemon.spool / "jobs" / first).exists()
    assert not (daemon.spool / "references" / first).exists()
    assert not any(first in str(p) for p in daemon.spool.rglob("*"))

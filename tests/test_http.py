"""`wt serve` for real: a server on 127.0.0.1, real daemons, the real model, and the clients
that will talk to it: the replaced service's request shapes (httpx) and the official
`openai` package."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import httpx
import pytest
from conftest import SAMPLE, run_wt, speech_files

from whisper_cli.wer import normalize, wer


def poll_status(url: str, job_id: str, until=("completed", "failed", "canceled"), timeout=180):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/status/{job_id}")
        assert r.status_code == 200, r.text
        doc = r.json()
        seen.append(doc)
        if doc["status"] in until:
            return doc, seen
        time.sleep(0.05)
    raise AssertionError(f"timed out: {seen[-1]}")


# ---- the replaced service's clients ----------------------------------------------------


def test_replaced_service_clients_work_unchanged(daemon_factory, server_factory, long_wav):
    daemon_factory()
    server = server_factory()
    url = server.url
    assert httpx.get(url + "/").status_code == 200
    assert httpx.get(url + "/health").json() == {"status": "healthy", "daemons": 1}

    wav, ref = speech_files("en")[2]
    r = httpx.post(url + "/transcribe", files={"file": (wav.name, wav.read_bytes(), "audio/wav")})
    assert r.status_code == 202 and set(r.json()) == {"job_id", "message"}
    doc, _ = poll_status(url, r.json()["job_id"])
    assert doc["status"] == "completed" and doc["progress"] == 100.0 and doc["error"] is None
    assert set(doc) == {"job_id", "status", "progress", "result", "error", "start_time",
                        "end_time"}  # fmt: skip
    assert wer(ref, doc["result"]["text"]) < 0.3 and doc["result"]["language"] == "en"
    assert doc["result"]["segments"] and doc["start_time"] <= doc["end_time"]
    assert isinstance(doc["start_time"], float)

    # Percent progress while a long job runs; cancel it; canceling again changes nothing.
    r = httpx.post(url + "/transcribe", files={"file": ("long.wav", long_wav.read_bytes())})
    long_id = r.json()["job_id"]
    doc, seen = poll_status(url, long_id, until=("processing",))
    deadline = time.monotonic() + 60
    while doc["progress"] <= 0 and time.monotonic() < deadline:
        doc = httpx.get(f"{url}/status/{long_id}").json()
    assert 0 < doc["progress"] < 100, doc  # a percentage, not a fraction
    r = httpx.post(f"{url}/cancel/{long_id}")
    assert r.status_code == 200 and r.json()["job_id"] == long_id
    doc, _ = poll_status(url, long_id)
    assert doc["status"] == "canceled" and doc["result"] is None
    r = httpx.post(f"{url}/cancel/{long_id}")
    assert r.status_code == 200 and httpx.get(f"{url}/status/{long_id}").json()["status"] == (
        "canceled"
    )

    assert httpx.get(url + "/status/nope").json() == {"detail": "Job ID not found"}
    assert httpx.get(url + "/status/nope").status_code == 404
    assert httpx.post(url + "/cancel/nope").status_code == 404


def test_health_tells_the_truth_without_a_daemon(daemon_factory, server_factory):
    server = server_factory()
    r = httpx.get(server.url + "/health")
    assert r.status_code == 503 and r.json()["status"] == "unhealthy"
    d = daemon_factory()
    assert httpx.get(server.url + "/health").status_code == 200
    d.stop()
    assert httpx.get(server.url + "/health").status_code == 503


def test_a_job_submitted_over_http_survives_a_daemon_kill_9(
    daemon_factory, server_factory, long_wav
):
    d = daemon_factory()
    server = server_factory()
    r = httpx.post(server.url + "/transcribe", files={"file": ("long.wav", long_wav.read_bytes())})
    job_id = r.json()["job_id"]
    poll_status(server.url, job_id, until=("processing",))
    d.stop(signal.SIGKILL)
    daemon_factory()  # a new daemon takes the dead one's claim back
    doc, _ = poll_status(server.url, job_id, until=("completed", "failed"), timeout=300)
    assert doc["status"] == "completed" and "forever" in doc["result"]["text"].lower()


# ---- the OpenAI API through the official client ------------------------------------------


@pytest.fixture
def openai_client(daemon_factory, server_factory):
    import openai

    daemon_factory()
    server = server_factory()
    return openai.OpenAI(api_key="unused", base_url=server.url + "/v1", max_retries=0)


def test_openai_client_gets_every_response_format(openai_client):
    wav, ref = speech_files("en")[5]
    audio = (wav.name, wav.read_bytes())
    c = openai_client
    assert wer(ref, c.audio.transcriptions.create(model="whisper-1", file=audio).text) < 0.3
    text = c.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert isinstance(text, str) and wer(ref, text) < 0.3
    srt = c.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> ")
    vtt = c.audio.transcriptions.create(model="whisper-1", file=audio, response_format="vtt")
    assert vtt.startswith("WEBVTT")
    verbose = c.audio.transcriptions.create(
        model="tiny.en",
        file=audio,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
    )
    assert verbose.language == "en" and abs(verbose.duration - 3.54) < 0.1
    segment = verbose.segments[0]
    assert segment.tokens and segment.seek == 0 and segment.end > segment.start
    assert segment.avg_logprob < 0 and 0 <= segment.no_speech_prob <= 1
    assert [w.word for w in verbose.words][-1].lower().startswith("forever")
    translated = c.audio.translations.create(model="whisper-1", file=audio)
    assert wer(ref, translated.text) < 0.3
    models = [m.id for m in c.models.list()]
    assert "whisper-1" in models and "tiny.en" in models


def test_openai_errors_have_openai_shape_and_status(openai_client, tmp_path):
    import openai

    c = openai_client
    with pytest.raises(openai.BadRequestError) as bad:
        c.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"not audio"))
    assert bad.value.body["type"] == "not_audio" and "x.wav" in bad.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        c.audio.transcriptions.create(model="no-such-model", file=SAMPLE[0].open("rb"))
    with pytest.raises(openai.BadRequestError):
        c.audio.transcriptions.create(
            model="whisper-1", file=SAMPLE[0].open("rb"), response_format="docx"
        )


def test_openai_stream_sends_server_sent_events(openai_client):
    wav, ref = speech_files("en")[3]
    events = list(
        openai_client.audio.transcriptions.create(
            model="whisper-1", file=(wav.name, wav.read_bytes()), stream=True
        )
    )
    assert events[-1].type == "transcript.text.done" and wer(ref, events[-1].text) < 0.3
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas.strip() == events[-1].text


def test_a_client_that_disconnects_cancels_its_job(daemon_factory, server_factory, long_wav):
    d = daemon_factory()
    server = server_factory()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            server.url + "/v1/audio/transcriptions",
            files={"file": ("long.wav", long_wav.read_bytes())},
            data={"model": "whisper-1"},
            timeout=httpx.Timeout(30, read=3),
        )
    job = d.wait_state("long.wav", ("canceled", "completed"), timeout=60)
    assert job["state"] == "canceled", job


# ---- limits and auth ---------------------------------------------------------------------


def test_upload_limit_queue_bound_and_api_key(server_factory, tmp_path):
    wav = SAMPLE[0]
    small = server_factory("--max-upload-size", "10k")
    r = httpx.post(small.url + "/transcribe", files={"file": ("a.wav", wav.read_bytes())})
    assert r.status_code == 413
    r = httpx.post(
        small.url + "/v1/audio/transcriptions", files={"file": ("a.wav", wav.read_bytes())}
    )
    assert r.status_code == 413 and r.json()["error"]["type"] == "invalid_request_error"

    bounded = server_factory("--max-queued", "1", spool=tmp_path / "bounded")  # no daemon
    first = httpx.post(bounded.url + "/transcribe", files={"file": ("a.wav", wav.read_bytes())})
    assert first.status_code == 202
    time.sleep(1.1)  # the queue count is cached for a second
    second = httpx.post(bounded.url + "/transcribe", files={"file": ("b.wav", wav.read_bytes())})
    assert second.status_code == 429 and second.headers["retry-after"]

    locked = server_factory("--api-key", "s3cret", spool=tmp_path / "locked")
    assert httpx.get(locked.url + "/jobs").status_code == 401
    assert httpx.get(locked.url + "/v1/models").json()["error"]["type"] == "authentication_error"
    ok = httpx.get(locked.url + "/jobs", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json() == []
    assert httpx.get(locked.url + "/health").status_code == 503  # open, and truthful


# ---- wt's own endpoints, and scale-out ---------------------------------------------------


def test_two_servers_and_two_daemons_run_each_job_exactly_once(daemon_factory, server_factory):
    daemons = [daemon_factory(), daemon_factory()]
    servers = [server_factory(), server_factory()]
    recordings = speech_files("en")
    ids = []
    for i, (wav, _) in enumerate(recordings):
        r = httpx.post(
            servers[i % 2].url + "/transcribe", files={"file": (wav.name, wav.read_bytes())}
        )
        ids.append(r.json()["job_id"])
    for i, job_id in enumerate(ids):
        doc, _ = poll_status(servers[(i + 1) % 2].url, job_id)  # read from the other one
        assert doc["status"] == "completed"
    jobs = httpx.get(servers[0].url + "/jobs").json()
    assert sorted(j["job_id"] for j in jobs) == sorted(ids)
    assert all(j["attempts"] == 1 for j in jobs)
    native = httpx.get(f"{servers[1].url}/jobs/{ids[0]}").json()
    assert native["protocol"] == 1 and native["state"] == "completed"
    srt = httpx.get(f"{servers[1].url}/jobs/{ids[0]}/result", params={"format": "srt"})
    assert srt.status_code == 200 and srt.text.startswith("1\n")
    # A speaker timeline exists only for diarized jobs (tests/test_diarize.py serves one).
    rttm = httpx.get(f"{servers[1].url}/jobs/{ids[0]}/result", params={"format": "rttm"})
    assert rttm.status_code == 404
    assert httpx.get(f"{servers[1].url}/jobs/nope").status_code == 404
    assert httpx.delete(f"{servers[0].url}/jobs/{ids[0]}").json()["state"] == "completed"
    for d in daemons:
        assert d.proc.poll() is None


def test_live_text_arrives_while_the_job_runs(daemon_factory, server_factory, long_wav):
    """The daemon appends each segment to partial.jsonl as it is decoded: the SSE stream,
    and `wt status`, show text before the job ends."""
    d = daemon_factory()
    server = server_factory()
    states_at_first_delta, deltas = [], []
    text = ""
    with httpx.stream(
        "POST",
        server.url + "/v1/audio/transcriptions",
        files={"file": ("long.wav", long_wav.read_bytes())},
        data={"model": "whisper-1", "stream": "true"},
        timeout=300,
    ) as response:
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "transcript.text.delta":
                deltas.append(event["delta"])
            if event["type"] == "transcript.text.delta" and not states_at_first_delta:
                job = d.job_by_input("long.wav")
                states_at_first_delta.append(job["state"])
                shown = run_wt("status", job["job_id"], "--spool", d.spool)
                assert "so far:" in shown.stderr, shown.stderr
            if event["type"] == "transcript.text.done":
                text = event["text"]
    assert states_at_first_delta == ["processing"]
    # Every word of the final text came as live text first. Speech a batched window ended
    # before is decoded after the windows around it, so its delta may come later than its
    # place in the final text, which is in time order.
    assert "forever" in text.lower()
    assert Counter(normalize(" ".join(deltas))) >= Counter(normalize(text))
    job_dir = d.spool / "jobs" / d.job_by_input("long.wav")["job_id"]
    assert not (job_dir / "partial.jsonl").exists()  # result.json replaces it

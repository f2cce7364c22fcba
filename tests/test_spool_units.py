"""Fast unit tests of spool logic (no model; a fake engine where a transcription is needed)."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from conftest import SR, encode

from spool.claims import Claim, read_claim, take_back_if_dead, try_claim
from spool.heartbeat import Heartbeat, new_daemon_id, write_heartbeat
from spool.inbox import Readiness, intake, read_sidecar, recover_staging
from spool.layout import Layout, new_job_id, valid_job_id
from spool.status import (
    CANCELED,
    COMPLETED,
    PROCESSING,
    QUEUED,
    IllegalTransition,
    InputInfo,
    JobStatus,
    read_status,
    write_status,
)
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.output.result import Segment, Transcript


@pytest.fixture
def layout(tmp_path) -> Layout:
    return Layout(tmp_path / "spool").ensure()


def test_readiness_in_place_writes_wait_for_settle_renames_do_not(tmp_path):
    r = Readiness(settle=1.0)
    f = tmp_path / "a.wav"
    f.write_bytes(b"x" * 10)
    now = time.time()
    assert r.check(f, now)[0] is False  # just written in place
    assert r.check(f, now + 1.5)[0] is True  # unchanged for the settle time
    with open(f, "ab") as fh:
        fh.write(b"more")
    assert r.check(f, time.time() + 5)[0] is False  # it grew since the last look
    g = tmp_path / ".b.tmp"
    g.write_bytes(b"y" * 10)
    time.sleep(0.01)
    os.rename(g, tmp_path / "b.wav")  # rename: ctime moves past mtime
    assert r.check(tmp_path / "b.wav", time.time())[0] is True


def test_sidecar_validation(tmp_path):
    def sc(data) -> str | None:
        p = tmp_path / "x.json"
        p.write_text(data if isinstance(data, str) else json.dumps(data))
        return read_sidecar(p).error

    assert sc({"id": "job-1", "options": {"language": "de"}, "metadata": {"a": 1}}) is None
    assert "not valid JSON" in sc("{nope")
    assert "must be a JSON object" in sc([1])
    assert "sidecar id" in sc({"id": "../x"})
    assert "sidecar id" in sc({"id": "a/b"})
    assert "sidecar id" in sc({"id": "x" * 200})
    assert "unknown sidecar key" in sc({"opts": {}})
    assert "JSON objects" in sc({"options": "fast"})
    assert "larger than" in sc({"metadata": {"x": "y" * 70000}})


def test_job_ids_sort_by_time_and_validate():
    ids = [new_job_id() for _ in range(50)]
    assert len(set(ids)) == 50 and all(valid_job_id(i) for i in ids)
    a = new_job_id()
    time.sleep(0.002)
    assert new_job_id() > a
    for bad in ("", "..", "a/b", "-x", ".hidden", "a" * 129, None, 5):
        assert not valid_job_id(bad)


def test_state_machine_refuses_illegal_transitions():
    s = JobStatus("j", QUEUED, InputInfo("a.wav", "input.wav", 1), {})
    s.advance(PROCESSING).advance(COMPLETED)
    assert s.finished_at is not None
    with pytest.raises(IllegalTransition):
        s.advance(PROCESSING)
    with pytest.raises(IllegalTransition):
        JobStatus("k", QUEUED, InputInfo("a", "input", 1), {}).advance(COMPLETED)


def test_claims_are_exclusive_and_dead_claims_are_taken_back_once(layout):
    job = layout.jobs / "j1"
    job.mkdir()
    live = new_daemon_id()
    write_heartbeat(layout, Heartbeat(live, "h", os.getpid(), "t", "now"))
    assert try_claim(job, Claim.mine(live))
    assert not try_claim(job, Claim.mine("other"))
    assert take_back_if_dead(layout, job, 30) is None  # its daemon is alive
    (layout.daemons / f"{live}.json").unlink()  # the daemon is gone
    taken = take_back_if_dead(layout, job, 30)
    assert taken is not None and taken.daemon == live
    assert read_claim(job) is None
    assert take_back_if_dead(layout, job, 30) is None


def test_intake_then_crash_recovery_of_a_half_done_intake(layout, tmp_path):
    wav = encode(np.zeros(SR, np.float32), layout.inbox / "a.wav")
    job_id = intake(layout, wav, TranscribeOptions(), 10**9, settle=0.5)
    status = read_status(layout.jobs / job_id)
    assert status.state == QUEUED and status.input.name == "a.wav"
    assert not wav.exists()

    # A daemon killed after moving the input into tmp/ but before publishing the job.
    staging = layout.staging / "crashed-1"
    staging.mkdir()
    (staging / "request.json").write_text(
        json.dumps(
            {
                "protocol": 1,
                "job_id": "crashed-1",
                "input": {"name": "b.wav", "file": "input.wav"},
                "options": TranscribeOptions().to_dict(),
                "metadata": {},
                "submitted_at": "2026-01-01T00:00:00.000Z",
                "error": None,
            }
        )
    )
    encode(np.zeros(SR, np.float32), staging / "input.wav")
    assert recover_staging(layout, 10**9, older_than=0) == 1
    assert read_status(layout.jobs / "crashed-1").state == QUEUED
    assert not staging.exists()


class FakeEngine:
    """Yields one segment per second of audio; lets tests drive progress and cancel."""

    name, model_name, device, compute_type = "fake", "fake", "cpu", "none"

    def transcribe(self, audio, options, on_progress=None, should_stop=None, on_segment=None):
        duration = len(audio) / SR
        segs = []
        for i in range(int(duration)):
            segs.append(Segment(i, i, i + 1.0, f" word{i}", -0.1, 0.0, 1.0))
            if on_segment:
                on_segment(segs[-1])
            if on_progress:
                on_progress(i + 1.0, duration)
            if should_stop and should_stop():
                from whisper_cli.errors import Canceled

                raise Canceled("canceled")
        return Transcript(" ".join(s.text for s in segs), "en", 1.0, duration, tuple(segs))


def test_run_job_with_a_fake_engine_completes_and_cancels(layout, monkeypatch):
    import spool.worker as worker
    import whisper_cli.transcribe as path

    monkeypatch.setattr(path, "load_engine", lambda options: FakeEngine())
    for name, cancel, expected in (("ok.wav", False, COMPLETED), ("stop.wav", True, CANCELED)):
        wav = encode(np.zeros(5 * SR, np.float32), layout.inbox / name)
        job_id = intake(layout, wav, TranscribeOptions(output_formats=("txt",)), 10**9, 0.5)
        job_dir = layout.jobs / job_id
        assert try_claim(job_dir, Claim.mine("d"))
        write_status(job_dir, read_status(job_dir).advance(PROCESSING))
        if cancel:
            (job_dir / "cancel").touch()
        assert worker.run_job(job_dir) == expected
        status = read_status(job_dir)
        assert status.state == expected and read_claim(job_dir) is None
        if expected == COMPLETED:
            assert status.outputs == ["result.json", "result.txt"]
            assert (job_dir / "result.txt").read_text().splitlines()[0] == "word0"
        else:
            assert not (job_dir / "result.json").exists()

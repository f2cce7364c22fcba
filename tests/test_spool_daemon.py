"""The spool daemon as a real process, with the real model (tiny.en, greedy for speed)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
from conftest import SR, busy_daemon_on, encode, fill, run_wt, speech_files

from spool.heartbeat import pid_alive
from whisper_cli.wer import wer


def test_dropped_file_goes_queued_processing_completed_with_rising_progress(
    daemon_factory, long_wav
):
    # Whisper's sequential loop reports progress window by window. (Batched decoding, the
    # default for long files, reports it batch by batch: 4 windows, two minutes of audio, at a
    # time, so this 150 s recording shows only 0 and then about 0.9 while processing.)
    d = daemon_factory("--batch-size", "1")
    wav, ref = speech_files("en")[1]
    d.drop(
        long_wav,
        "talk one.wav",
        sidecar={"metadata": {"ticket": 42}, "options": {"output_formats": ["srt", "txt"]}},
    )
    seen: list[tuple[str, float]] = []

    def finished():
        j = d.job_by_input("talk one.wav")
        if j:
            seen.append((j["state"], j["progress"]["fraction"]))
        return j and j["state"] in ("completed", "failed") and j

    job = d.wait_for(finished, timeout=180, interval=0.02)
    assert job["state"] == "completed", job
    states = [s for s, _ in seen]
    assert "processing" in states and states[-1] == "completed"
    order = ["queued", "processing", "completed"]
    assert [order.index(s) for s in states] == sorted(order.index(s) for s in states)
    fractions = [f for s, f in seen if s == "processing"]
    assert fractions == sorted(fractions) and len(set(fractions)) >= 3, fractions
    # Progress was seen between the ends (how often 1.0 is read while the outputs are written
    # depends on the machine's load).
    assert any(0.0 < f < 1.0 for f in fractions), fractions

    job_dir = d.spool / "jobs" / job["job_id"]
    assert sorted(p.name for p in job_dir.iterdir()) == [
        "input.wav",
        "request.json",
        "result.json",
        "result.srt",
        "result.txt",
        "sidecar.json",
        "status.json",
    ]
    assert job["protocol"] == 1 and job["metadata"] == {"ticket": 42}
    assert job["input"] == {
        "name": "talk one.wav",
        "file": "input.wav",
        "size": long_wav.stat().st_size,
    }
    assert job["language"] == "en" and job["attempts"] == 1 and job["error"] is None
    assert job["worker"]["pid"] != d.proc.pid and job["worker"]["host"]
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert job["outputs"] == ["result.json", "result.srt", "result.txt"]
    assert abs(job["progress"]["duration"] - 150) < 0.1
    text = (job_dir / "result.txt").read_text()
    assert "forever" in text.lower() and "danger trail" in text.lower()
    result = json.loads((job_dir / "result.json").read_text())
    assert result["segments"][-1]["end"] <= 150.01


def test_cancel_processing_queued_and_finished_jobs(daemon_factory, long_wav):
    # One job at a time, so the second waits queued behind the long one (with batching it
    # would join it at once: tests/test_batching.py cancels inside a batch).
    d = daemon_factory("--max-batch", "1")
    short, _ = speech_files("en")[0]
    done_id = run_wt("submit", short, "--spool", d.spool, "--wait").stdout.strip()
    assert d.job_by_input(short.name)["state"] == "completed"

    d.drop(long_wav, "long.wav")
    processing = d.wait_state("long.wav", ("processing",), timeout=60)
    queued_id = run_wt("submit", short, "--spool", d.spool, "--id", "second").stdout.strip()
    assert queued_id == "second"
    d.wait_for(lambda: (d.spool / "jobs" / "second" / "status.json").exists())

    proc = run_wt("cancel", "second", "--spool", d.spool)
    assert proc.returncode == 0 and "canceled" in proc.stderr
    assert (
        json.loads(run_wt("status", "second", "--spool", d.spool, "--json").stdout)["state"]
        == "canceled"
    )

    d.wait_for(lambda: d.job_by_input("long.wav")["progress"]["fraction"] > 0, timeout=60)
    assert run_wt("cancel", processing["job_id"], "--spool", d.spool).returncode == 0
    job = d.wait_state("long.wav", timeout=60)
    assert job["state"] == "canceled" and job["attempts"] == 1
    assert job["progress"]["fraction"] < 1.0
    job_dir = d.spool / "jobs" / job["job_id"]
    assert (job_dir / "input.wav").stat().st_size == long_wav.stat().st_size
    assert not (job_dir / "result.txt").exists()

    proc = run_wt("cancel", done_id, "--spool", d.spool)
    assert proc.returncode == 0 and "completed" in proc.stderr
    assert (
        json.loads(run_wt("status", done_id, "--spool", d.spool, "--json").stdout)["state"]
        == "completed"
    )
    proc = run_wt("wait", processing["job_id"], "--spool", d.spool)
    assert proc.returncode == 3  # canceled


def test_bad_inputs_fail_clearly_and_the_daemon_keeps_serving(daemon_factory, tmp_path):
    d = daemon_factory()
    good, ref = speech_files("en")[2]
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(good.read_bytes()[:44] + os.urandom(3000))
    noise = tmp_path / "noise.mp3"
    noise.write_bytes(os.urandom(5000))
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    empty = tmp_path / "empty.wav"
    empty.touch()
    expected = {
        "noise.mp3": "not an audio or video file",
        "notes.txt": "not an audio",
        "empty.wav": "empty",
    }
    for p in (corrupt, noise, text, empty, good):
        d.drop(p, p.name)
    for name, words in expected.items():
        job = d.wait_state(name)
        assert job["state"] == "failed", job
        assert words in job["error"]["message"] and name in job["error"]["message"], job
        assert job["error"]["type"] in ("not_audio", "empty_audio")
        job_dir = d.spool / "jobs" / job["job_id"]
        assert (job_dir / job["input"]["file"]).read_bytes() == (tmp_path / name).read_bytes()
    # A header followed by noise decodes as noise: it may complete or fail, but it ends.
    assert d.wait_state("corrupt.wav")["state"] in ("completed", "failed")
    job = d.wait_state(good.name)
    assert job["state"] == "completed"
    text_out = (d.spool / "jobs" / job["job_id"] / "result.txt").read_text()
    assert wer(ref, text_out) < 0.35
    assert d.proc.poll() is None


def test_slow_writers_are_taken_only_when_complete(daemon_factory, tmp_path):
    # Pauses of 0.4 s against a settle time of 4 s: a busy machine cannot stretch one past it.
    d = daemon_factory("--settle", "4")
    wav, _ = speech_files("en")[0]
    data = wav.read_bytes()
    inbox = d.spool / "inbox"

    # Written in place, in pieces, with pauses shorter than the settle time.
    with open(inbox / "inplace.wav", "wb") as fh:
        for i in range(0, len(data), len(data) // 8):
            fh.write(data[i : i + len(data) // 8])
            fh.flush()
            time.sleep(0.4)
            assert d.job_by_input("inplace.wav") is None
    # Written as .part, then renamed: taken at once after the rename.
    with open(inbox / "renamed.wav.part", "wb") as fh:
        for i in range(0, len(data), len(data) // 4):
            fh.write(data[i : i + len(data) // 4])
            fh.flush()
            time.sleep(0.5)
            assert d.job_by_input("renamed.wav.part") is None
    os.rename(inbox / "renamed.wav.part", inbox / "renamed.wav")
    t0 = time.monotonic()
    d.wait_for(lambda: d.job_by_input("renamed.wav"), timeout=10, interval=0.01)
    assert time.monotonic() - t0 < 3.0  # at once, not after the settle time
    for name in ("inplace.wav", "renamed.wav"):
        job = d.wait_state(name)
        assert job["state"] == "completed" and job["input"]["size"] == len(data), job


def test_kill_9_mid_job_then_restart_completes_exactly_once(daemon_factory, long_wav):
    d = daemon_factory()
    d.drop(long_wav, "long.wav")
    job = d.wait_for(
        lambda: (j := d.job_by_input("long.wav")) and j["progress"]["fraction"] > 0 and j,
        timeout=60,
    )
    worker_pid = job["worker"]["pid"]
    d.proc.kill()
    d.proc.wait()
    d.wait_for(lambda: not pid_alive(worker_pid), timeout=10, alive=False)  # died with it
    assert d.job_by_input("long.wav")["state"] == "processing"

    d2 = daemon_factory()
    job = d2.wait_state("long.wav", timeout=240)
    assert job["state"] == "completed" and job["attempts"] == 2, job
    assert len(list((d.spool / "jobs").iterdir())) == 1
    assert "recovered" in d2.log.read_text()
    assert not (d.spool / "jobs" / job["job_id"] / "claim").exists()


def test_two_daemons_process_twenty_files_exactly_once(daemon_factory, tmp_path):
    d1 = daemon_factory()
    daemon_factory()  # a second daemon on the same spool
    files = speech_files("en")
    names = []
    for i in range(20):
        src = files[i % len(files)][0]
        names.append(f"clip{i:02d}.wav")
        d1.drop(src, names[-1])
    d1.wait_for(lambda: sum(j["state"] == "completed" for j in d1.jobs()) == 20, timeout=300)
    jobs = d1.jobs()
    assert sorted(j["input"]["name"] for j in jobs) == names
    assert all(j["attempts"] == 1 for j in jobs)
    daemons = {j["worker"]["daemon"] for j in jobs}
    assert len(daemons) == 2, daemons  # both served
    assert list((d1.spool / "inbox").iterdir()) == []


def test_hostile_names_and_sidecars_are_harmless(daemon_factory, tmp_path):
    d = daemon_factory()
    wav, _ = speech_files("en")[0]
    names = [
        "with space.wav",
        "ünïcødé 日本.wav",
        "-rf --help.wav",
        "x" * 200 + ".wav",
        "$(touch pwned).wav",
    ]
    for n in names:
        d.drop(wav, n)
    bad_sidecars = {
        "escape.wav": {"id": "../../escaped"},
        "types.wav": {"options": {"beam_size": "five", "word_timestamps": "yes"}},
        "outname.wav": {"options": {"output_formats": ["../../x"]}},
        "extra.wav": {"options": {"model": "tiny.en"}, "exec": "rm -rf /"},
        "notobj.wav": ["a", "b"],
    }
    for n, sc in bad_sidecars.items():
        d.drop(wav, n, sidecar=sc)
    (d.spool / "inbox" / ".huge.json.tmp").write_text(
        json.dumps({"metadata": {"x": "y" * 100_000}})
    )
    os.rename(d.spool / "inbox" / ".huge.json.tmp", d.spool / "inbox" / "huge.json")
    d.drop(wav, "huge.wav")
    for n in names:
        assert d.wait_state(n)["state"] == "completed"
    for n in [*bad_sidecars, "huge.wav"]:
        job = d.wait_state(n)
        assert job["state"] == "failed" and job["error"]["type"] == "invalid_options", job
        assert job["error"]["message"]
    assert "escaped" not in {p.name for p in d.spool.rglob("*")}
    assert not (d.spool.parent / "escaped").exists() and not (Path.cwd() / "pwned").exists()
    job = d.job_by_input("escape.wav")
    assert "sidecar id must be" in job["error"]["message"]
    assert "beam_size must be int" in d.job_by_input("types.wav")["error"]["message"]
    assert "larger than" in d.job_by_input("huge.wav")["error"]["message"]


def test_symlinks_fifos_and_oversized_inputs_are_refused(daemon_factory, tmp_path):
    d = daemon_factory("--max-input-size", "50K")
    secret = tmp_path / "secret.wav"
    wav, _ = speech_files("en")[0]
    secret.write_bytes(wav.read_bytes())
    inbox = d.spool / "inbox"
    os.symlink(secret, inbox / "link.wav")
    os.mkfifo(inbox / "pipe.wav")
    d.drop(wav, "big.wav")  # 124 KB > 50K
    small = encode(np.zeros(SR, np.float32), tmp_path / "small.wav")
    d.drop(small, "small.wav")
    for name, words in (
        ("link.wav", "symbolic link"),
        ("pipe.wav", "FIFO"),
        ("big.wav", "over the limit"),
    ):
        job = d.wait_state(name, timeout=30)
        assert job["state"] == "failed" and job["error"]["type"] == "input_refused", job
        assert words in job["error"]["message"]
        assert not (d.spool / "jobs" / job["job_id"] / "result.txt").exists()
    link_job = d.spool / "jobs" / d.job_by_input("link.wav")["job_id"]
    assert (link_job / "input.wav").is_symlink()  # the link itself was kept, never followed
    assert secret.read_bytes() == wav.read_bytes()
    assert d.wait_state("small.wav")["state"] == "completed"


def test_sigterm_requeues_running_job_and_exits_zero(daemon_factory, long_wav):
    d = daemon_factory("--shutdown-timeout", "1")
    d.drop(long_wav, "long.wav")
    d.wait_state("long.wav", ("processing",), timeout=60)
    assert d.stop(signal.SIGTERM) == 0
    job = d.job_by_input("long.wav")
    assert job["state"] == "queued" and job["worker"] is None, job
    assert not list((d.spool / "daemons").iterdir())  # heartbeat removed on a clean exit
    d2 = daemon_factory()
    assert d2.wait_state("long.wav", timeout=240)["state"] == "completed"


def test_worker_crash_fails_only_that_job(daemon_factory, long_wav):
    d = daemon_factory()
    d.drop(long_wav, "long.wav")
    job = d.wait_state("long.wav", ("processing",), timeout=60)
    os.kill(job["worker"]["pid"], signal.SIGKILL)
    job = d.wait_state("long.wav", timeout=30)
    assert job["state"] == "failed" and job["error"]["type"] == "worker_crashed", job
    assert "signal 9" in job["error"]["message"] and "out-of-memory" in job["error"]["message"]
    wav, _ = speech_files("en")[0]
    d.drop(wav, "next.wav")
    assert d.wait_state("next.wav")["state"] == "completed"


def test_worker_recycling_and_model_ttl(daemon_factory):
    d = daemon_factory("--max-jobs-per-worker", "1", "--model-ttl", "1")
    wav, _ = speech_files("en")[0]
    d.drop(wav, "one.wav")
    first = d.wait_state("one.wav")
    d.drop(wav, "two.wav")
    second = d.wait_state("two.wav")
    assert first["state"] == second["state"] == "completed"
    assert first["worker"]["pid"] != second["worker"]["pid"]  # recycled after one job

    d2 = daemon_factory("--model-ttl", "1", spool=d.spool.parent / "spool2")
    d2.drop(wav, "a.wav")
    assert d2.wait_state("a.wav")["state"] == "completed"
    d2.wait_for(lambda: "unloaded" in d2.log.read_text(), timeout=20)
    d2.drop(wav, "b.wav")
    assert d2.wait_state("b.wav")["state"] == "completed"


def test_health_sees_live_and_dead_daemons(daemon_factory, spool_dir):
    d = daemon_factory()
    proc = run_wt("health", "--spool", spool_dir, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["healthy"] and report["daemons"][0]["pid"] == d.proc.pid
    assert report["daemons"][0]["alive"] and report["daemons"][0]["version"]
    d.proc.kill()
    d.proc.wait()
    proc = run_wt("health", "--spool", spool_dir)
    assert proc.returncode == 1 and "dead" in proc.stderr and "no live daemon" in proc.stderr


def test_full_disk_fails_the_job_and_keeps_the_input(daemon_factory, small_disk, long_wav):
    d = busy_daemon_on(small_disk, daemon_factory, long_wav)
    spool = d.spool
    # Fill the disk, then leave three pages: enough for status.json, not for the results.
    fill(small_disk / "filler", leave=3 * 4096)
    job = d.wait_state("long.wav", timeout=120)
    assert job["state"] == "failed" and job["error"]["type"] == "output_error", job
    assert "No space left" in job["error"]["message"]
    assert "disk space" in job["error"]["message"]
    job_dir = spool / "jobs" / job["job_id"]
    assert (job_dir / "input.wav").stat().st_size == long_wav.stat().st_size
    assert not list(job_dir.glob("result.*"))  # no partial result set
    assert d.proc.poll() is None
    d.stop()


def test_companions_submit_wait_result_status_clean(daemon_factory, spool_dir):
    daemon_factory()
    wav, ref = speech_files("en")[3]
    proc = run_wt(
        "submit", wav, "--spool", spool_dir, "--metadata", '{"user": "ann"}', "-f", "srt", "--wait"
    )
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    srt = run_wt("result", job_id, "--spool", spool_dir, "--format", "srt").stdout
    assert srt.startswith("1\n00:00:00,000 --> ")
    assert (
        wer(
            ref,
            run_wt("result", job_id, "-s", spool_dir, "-f", "json")
            .stdout.split('"text": "')[1]
            .split('"')[0],
        )
        < 0.5
    )
    missing = run_wt("result", job_id, "--spool", spool_dir, "--format", "vtt")
    assert missing.returncode == 6 and "no vtt result" in missing.stderr  # EXIT_NO_RESULT
    st = json.loads(run_wt("status", job_id, "--spool", spool_dir, "--json").stdout)
    assert st["metadata"] == {"user": "ann"} and st["input"]["name"] == wav.name
    table = run_wt("status", "--spool", spool_dir).stdout
    assert "completed" in table
    assert run_wt("wait", job_id, "--spool", spool_dir, "--timeout", "5").returncode == 0
    assert run_wt("status", "nope", "--spool", spool_dir).returncode == 4  # EXIT_NO_JOB
    proc = run_wt("clean", "--older-than", "1h", "--spool", spool_dir)
    assert proc.returncode == 0 and "removed 0" in proc.stderr
    time.sleep(1.1)
    proc = run_wt("clean", "--older-than", "1s", "--spool", spool_dir)
    assert proc.stdout.split() == [job_id]
    assert not (spool_dir / "jobs" / job_id).exists()
    bad = run_wt("submit", wav, "--spool", spool_dir, "--language", "klingon")
    assert bad.returncode != 0 and "unknown language" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert sys.executable  # the companions ran with the same interpreter


# "At once" is told from "after the settle time" with a margin no busy machine crosses: the
# settle time is SETTLE, a file taken at once is taken within SETTLE - 2 s.
SETTLE = 10.0


def test_renamed_linked_and_moved_in_files_are_taken_at_once(daemon_factory, tmp_path):
    d = daemon_factory("--settle", str(SETTLE))
    wav, _ = speech_files("en")[0]
    inbox = d.spool / "inbox"

    def taken_within(name: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if d.job_by_input(name):
                return True
            time.sleep(0.01)
        return False

    # Written and renamed within one clock tick: the timestamps cannot tell, the event can.
    (inbox / ".quick.tmp").write_bytes(wav.read_bytes())
    os.rename(inbox / ".quick.tmp", inbox / "quick.wav")
    assert taken_within("quick.wav", SETTLE - 2)
    # sftp style: hard link into the inbox, then unlink the upload's temp name.
    (tmp_path / "upload.tmp").write_bytes(wav.read_bytes())
    os.link(tmp_path / "upload.tmp", inbox / "linked.wav")
    os.unlink(tmp_path / "upload.tmp")
    assert taken_within("linked.wav", SETTLE - 2)
    # mv from another folder on the same filesystem.
    (tmp_path / "other.wav").write_bytes(wav.read_bytes())
    os.rename(tmp_path / "other.wav", inbox / "moved.wav")
    assert taken_within("moved.wav", SETTLE - 2)
    # Written in place and closed: only after the settle time.
    t0 = time.monotonic()
    (inbox / "inplace.wav").write_bytes(wav.read_bytes())
    assert not taken_within("inplace.wav", SETTLE - 2)
    d.wait_for(lambda: d.job_by_input("inplace.wav"), timeout=60)
    assert time.monotonic() - t0 >= SETTLE - 0.1
    for name in ("quick.wav", "linked.wav", "moved.wav", "inplace.wav"):
        assert d.wait_state(name)["state"] == "completed"


def test_polling_takes_submitted_files_at_once_and_checks_declared_size(daemon_factory, tmp_path):
    d = daemon_factory("--poll", "--poll-interval", "0.2", "--settle", str(SETTLE))
    wav, _ = speech_files("en")[0]
    job_id = run_wt("submit", wav, "--spool", d.spool).stdout.strip()
    t0 = time.monotonic()
    d.wait_for(lambda: (d.spool / "jobs" / job_id).exists(), timeout=30, interval=0.01)
    assert time.monotonic() - t0 < SETTLE - 2  # the declared size: not after the settle time
    assert "watch=poll" in d.log.read_text()

    # A sidecar that declares more bytes than arrive: taken after the settle time, and failed.
    inbox = d.spool / "inbox"
    (inbox / "cut.wav.json").write_text(json.dumps({"size": wav.stat().st_size + 1000}))
    (inbox / "cut.wav").write_bytes(wav.read_bytes())
    job = d.wait_state("cut.wav", timeout=120)
    assert job["state"] == "failed" and job["error"]["type"] == "incomplete_input", job
    assert "declares" in job["error"]["message"]
    assert d.wait_state(wav.name)["state"] == "completed"

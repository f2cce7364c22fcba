"""The six spool defects an outside client found, one test each, and the protocol rules
settled with them (duplicate ids, early cancels, sidecar forms, exit codes, log lines)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import busy_daemon_on, fill, run_wt, speech_files

from spool.client import JobNotFound, Spool
from spool.inbox import intake
from spool.layout import Layout
from whisper_cli.options.transcribe_options import TranscribeOptions


@pytest.fixture(scope="module")
def short_wav() -> Path:
    return speech_files("en")[4][0]  # 1.6 s of real speech


def log_lines(d) -> list[str]:
    return d.log.read_text(errors="replace").splitlines()


# ---- 1. a file name that is not UTF-8 ----------------------------------------------------


def test_a_name_that_is_not_utf8_becomes_a_job_and_the_daemon_keeps_serving(
    daemon_factory, spool_dir, short_wav
):
    d = daemon_factory()
    inbox = os.fsencode(spool_dir / "inbox")
    raw = b"latin1-\xe9.wav"
    shutil.copyfile(short_wav, os.path.join(inbox, b".tmp-upload"))
    os.rename(os.path.join(inbox, b".tmp-upload"), os.path.join(inbox, raw))
    job = d.wait_state("latin1-\\xe9.wav")
    assert job["state"] == "completed", job
    assert job["input"]["name_hex"] == raw.hex()
    assert bytes.fromhex(job["input"]["name_hex"]) == raw  # the exact name, losslessly
    # A name with a newline still logs one line per state change.
    d.drop(short_wav, "two\nlines.wav")
    assert d.wait_state("two\nlines.wav")["state"] == "completed"
    # status.json says completed a moment before the daemon logs it.
    d.wait_for(lambda: any("two\\nlines.wav" in line for line in log_lines(d)))
    lines = [line for line in log_lines(d) if "lines.wav" in line]
    assert all("two\\nlines.wav" in line for line in lines), lines
    assert d.proc.poll() is None and not list((spool_dir / "tmp").iterdir())


def test_a_sidecar_name_with_lone_surrogates_is_recorded_not_fatal(daemon_factory, short_wav):
    d = daemon_factory()
    inbox = d.spool / "inbox"
    (inbox / "s.wav.json").write_text('{"id": "sur-1", "name": "bad-\\udce9-\\ud800.wav"}')
    d.drop(short_wav, "s.wav")
    job = d.wait_for(lambda: (d.spool / "jobs" / "sur-1" / "status.json").exists())
    assert job and d.wait_state("bad-\\xed\\xb3\\xa9-\\xed\\xa0\\x80.wav")["state"] == "completed"
    assert d.proc.poll() is None


# ---- 2. a full disk ----------------------------------------------------------------------


def test_a_full_disk_does_not_stop_the_daemon_and_the_job_runs_once_space_returns(
    daemon_factory, small_disk, long_wav, short_wav
):
    d = busy_daemon_on(small_disk, daemon_factory, long_wav)
    spool = d.spool
    filler = small_disk / "filler"
    fill(filler)  # every write now fails: heartbeat, status, results
    time.sleep(8)  # several heartbeats, the job's end, a requeue attempt
    assert d.proc.poll() is None, d.log.read_text()
    assert "io-error" in d.log.read_text()
    filler.unlink()  # space returns
    job = d.wait_state("long.wav", ("completed",), timeout=180)
    assert job["attempts"] >= 1 and (spool / "jobs" / job["job_id"] / "result.txt").exists()
    d.drop(short_wav, "after.wav")  # and it keeps serving
    assert d.wait_state("after.wav")["state"] == "completed"
    proc = run_wt("health", "--spool", spool)
    assert proc.returncode == 0, proc.stderr
    assert d.stop() == 0


def test_a_full_disk_at_shutdown_leaves_the_job_to_recovery(
    daemon_factory, small_disk, long_wav, short_wav
):
    d = busy_daemon_on(small_disk, daemon_factory, long_wav)
    spool = d.spool
    fill(small_disk / "filler")
    assert d.stop() == 0  # the requeue cannot be written: still a clean exit
    (small_disk / "filler").unlink()
    again = daemon_factory(spool=spool)  # a new daemon takes the dead claim back
    assert again.wait_state("long.wav", ("completed",), timeout=240)["state"] == "completed"


# ---- 3. two daemons and sidecar ids ------------------------------------------------------


def test_two_daemons_give_every_sidecar_pair_its_clients_id(daemon_factory, spool_dir, short_wav):
    daemons = [daemon_factory(), daemon_factory()]
    inbox = spool_dir / "inbox"
    for n in range(40):
        tmp = inbox / f".pair-{n}.json.tmp"
        tmp.write_text(json.dumps({"id": f"pair-{n}"}))
        os.rename(tmp, inbox / f"pair-{n}.wav.json")
        shutil.copyfile(short_wav, inbox / f".pair-{n}.wav.tmp")
        os.rename(inbox / f".pair-{n}.wav.tmp", inbox / f"pair-{n}.wav")
    jobs = spool_dir / "jobs"

    def all_done():
        states = []
        for n in range(40):
            try:
                states.append(json.loads((jobs / f"pair-{n}" / "status.json").read_text()))
            except (FileNotFoundError, ValueError):
                return None
        return all(s["state"] in ("completed", "failed") for s in states) and states

    states = daemons[0].wait_for(all_done, timeout=300, interval=0.2)
    assert [s["state"] for s in states] == ["completed"] * 40
    assert sorted(p.name for p in jobs.iterdir()) == sorted(f"pair-{n}" for n in range(40))


# ---- 4. submit and wait race the intake --------------------------------------------------


def test_a_submitted_id_is_findable_at_every_moment_of_its_intake(tmp_path, short_wav):
    """An intake runs in a thread while the client asks for its job without pause: at no
    moment (inbox, tmp/, jobs/) may the client be told the job does not exist."""
    sp = Spool(tmp_path)
    layout = Layout(tmp_path).ensure()
    defaults = TranscribeOptions(model="tiny.en")
    misses = 0
    for n in range(150):
        job_id = sp.submit(short_wav, job_id=f"race-{n}")
        inbox_file = next(layout.inbox.glob(f"race-{n}.wav"))
        done = threading.Event()

        def take(path: Path = inbox_file, done: threading.Event = done) -> None:
            intake(layout, path, defaults, 1 << 30, 0.0)
            done.set()

        thread = threading.Thread(target=take)
        thread.start()
        while not done.is_set():
            try:
                sp.wait(job_id, timeout=0)
            except TimeoutError:
                pass
            except JobNotFound:
                misses += 1
        thread.join()
    assert misses == 0


def test_companions_never_print_a_traceback_and_exit_codes_say_what_happened(spool_dir, short_wav):
    Layout(spool_dir).ensure()
    unknown = run_wt("wait", "nope", "--spool", spool_dir, "--timeout", "1")
    assert unknown.returncode == 4 and "Traceback" not in unknown.stderr, unknown.stderr
    assert run_wt("cancel", "nope", "--spool", spool_dir).returncode == 4
    assert run_wt("result", "nope", "--spool", spool_dir).returncode == 4
    assert run_wt("status", "nope", "--spool", spool_dir).returncode == 4
    job_id = run_wt("submit", short_wav, "--spool", spool_dir).stdout.strip()
    # In the inbox (no daemon): it exists, but has not completed.
    assert run_wt("result", job_id, "--spool", spool_dir).returncode == 5
    assert run_wt("status", job_id, "--spool", spool_dir).returncode == 5
    timed_out = run_wt("wait", job_id, "--spool", spool_dir, "--timeout", "0.5")
    assert timed_out.returncode == 124, timed_out.stderr


# ---- 5. permissions ----------------------------------------------------------------------


NOBODY = 65534


def as_nobody(*args: str | Path) -> tuple[list[str], dict[str, str]]:
    """The command line and environment to run `wt ARGS` as the unprivileged user nobody
    (the tests run as root, which no permission stops)."""
    import sys

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("running the daemon as another user needs root and setpriv")
    cache = tempfile.mkdtemp(prefix="wt-nobody-cache-")
    os.chmod(cache, 0o777)
    env = {**os.environ, "WT_MODEL": "tiny.en", "WT_CACHE_DIR": cache, "HOME": cache}
    user = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return ["setpriv", *user, sys.executable, "-m", "whisper_cli", *map(str, args)], env


def test_a_spool_owned_by_another_user_is_one_clear_line(open_dir):
    spool = open_dir / "spool"
    Layout(spool).ensure()  # root's folders, mode 0755
    command, env = as_nobody("daemon", "--spool", spool)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(spool) in lines[0] and "may not write" in lines[0], lines


def test_an_inbox_the_daemon_cannot_change_leaves_no_staging_and_fails_health(open_dir, short_wav):
    spool = open_dir / "spool"
    layout = Layout(spool).ensure()
    for folder in (spool, layout.jobs, layout.staging, layout.daemons):
        os.chown(folder, NOBODY, NOBODY)
    os.chmod(layout.inbox, 0o555)  # root's, read-only to the daemon
    shutil.copyfile(short_wav, layout.inbox / "stuck.wav")
    command, env = as_nobody("daemon", "--spool", spool, "--settle", "0.3")
    daemon = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(8)  # several retries
        assert daemon.poll() is None
        assert list(layout.staging.iterdir()) == []  # no staging folder per retry
        health = run_wt("health", "--spool", spool)
        assert health.returncode == 1 and "cannot work" in health.stderr, health.stderr
        assert (layout.inbox / "stuck.wav").exists()  # nothing lost
    finally:
        daemon.terminate()
        _, log = daemon.communicate(timeout=60)
    assert log.count("io-error") == 1, log  # said once, not every retry


# ---- 6. a declared size that does not match ----------------------------------------------


def test_a_wrong_declared_size_fails_under_the_clients_id_and_says_which_way(
    daemon_factory, short_wav
):
    d = daemon_factory()
    size = short_wav.stat().st_size
    inbox = d.spool / "inbox"
    for job_id, declared in (("short-1", size + 100), ("long-1", size - 100)):
        (inbox / f"{job_id}.wav.json").write_text(json.dumps({"id": job_id, "size": declared}))
        shutil.copyfile(short_wav, inbox / f"{job_id}.wav")  # written in place: settle rule
    for job_id, words in (("short-1", "cut short"), ("long-1", "more than")):
        path = d.spool / "jobs" / job_id / "status.json"
        job = d.wait_for(lambda p=path: p.exists() and json.loads(p.read_text()))
        assert job["state"] == "failed" and job["error"]["type"] == "incomplete_input", job
        assert words in job["error"]["message"], job


# ---- settled rules -----------------------------------------------------------------------


def test_a_reused_id_fails_beside_the_job_that_holds_it(daemon_factory, short_wav):
    d = daemon_factory()
    first = run_wt("submit", short_wav, "--spool", d.spool, "--id", "same", "--wait")
    assert first.returncode == 0, first.stderr
    before = (d.spool / "jobs" / "same" / "status.json").read_text()
    d.drop(short_wav, "again.wav", sidecar={"id": "same"})  # a raw client reusing the id
    dup = d.wait_state("again.wav")
    assert dup["state"] == "failed" and dup["job_id"].startswith("same.dup-"), dup
    assert "already in use" in dup["error"]["message"]
    assert (d.spool / "jobs" / "same" / "status.json").read_text() == before


def test_a_cancel_before_the_job_exists_cancels_it_on_arrival(spool_dir, short_wav):
    sp = Spool(spool_dir)
    layout = Layout(spool_dir).ensure()
    job_id = sp.submit(short_wav, job_id="early")
    assert run_wt("cancel", job_id, "--spool", spool_dir).returncode == 0  # in the inbox
    intake(layout, layout.inbox / "early.wav", TranscribeOptions(model="tiny.en"), 1 << 30, 0.0)
    status = sp.status("early")
    assert status.state == "canceled" and status.input.name == short_wav.name


def test_submit_copies_unless_asked_to_link(spool_dir, short_wav, tmp_path):
    Layout(spool_dir).ensure()
    mine = shutil.copyfile(short_wav, tmp_path / "mine.wav")
    copied = run_wt("submit", mine, "--spool", spool_dir).stdout.strip()
    linked = run_wt("submit", mine, "--spool", spool_dir, "--link").stdout.strip()
    inode = mine.stat().st_ino
    assert (spool_dir / "inbox" / f"{copied}.wav").stat().st_ino != inode
    assert (spool_dir / "inbox" / f"{linked}.wav").stat().st_ino == inode


def test_sidecar_forms_each_have_one_owner_and_none_is_left_behind(daemon_factory, short_wav):
    d = daemon_factory("--orphan-sidecar-after", "3")
    inbox = d.spool / "inbox"
    # Both forms for one file: NAME.EXT.json is used, NAME.json is kept with the job.
    (inbox / "x.json").write_text(json.dumps({"id": "x-stem"}))
    (inbox / "x.wav.json").write_text(json.dumps({"id": "x-full"}))
    d.drop(short_wav, "x.wav")
    # One stem sidecar, two files with that stem: it belongs to neither.
    # (Written in place, so both are there when the settle time lets either be taken; a stem
    # sidecar goes to a file that is alone with its stem when it is taken.)
    (inbox / "y.json").write_text(json.dumps({"id": "y-ambiguous"}))
    shutil.copyfile(short_wav, inbox / "y.wav")
    shutil.copyfile(short_wav, inbox / "y.mp3")
    # A sidecar whose audio never comes: a failed job under its id after the wait.
    (inbox / "lonely.wav.json").write_text(json.dumps({"id": "lonely"}))
    x = d.wait_state("x.wav")
    assert x["job_id"] == "x-full"
    assert (d.spool / "jobs" / "x-full" / "sidecar.unused.json").exists()
    assert d.wait_state("y.wav")["job_id"] != "y-ambiguous"
    assert d.wait_state("y.mp3")["job_id"] != "y-ambiguous"
    for job_id, kind in (("lonely", "orphan_sidecar"), ("y-ambiguous", "orphan_sidecar")):
        path = d.spool / "jobs" / job_id / "status.json"
        job = d.wait_for(lambda p=path: p.exists() and json.loads(p.read_text()), timeout=30)
        assert job["state"] == "failed" and job["error"]["type"] == kind, job
    assert sorted(os.listdir(inbox)) == []


def test_status_is_rewritten_at_least_every_second_while_processing(daemon_factory, long_wav):
    from spool.layout import parse_time

    d = daemon_factory("--engine", "openai")  # progress only once per 30 s window
    d.drop(long_wav, "long.wav")
    d.wait_state("long.wav", ("processing",), timeout=120)
    stamps = []
    while True:
        job = d.job_by_input("long.wav")
        if job["state"] != "processing":
            break
        if not stamps or stamps[-1] != job["updated_at"]:
            stamps.append(job["updated_at"])
        time.sleep(0.05)
    times = [parse_time(s).timestamp() for s in stamps]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) >= 5 and max(gaps) < 1.6, gaps  # 1 s, plus the ticker's 0.25 s step

"""Batching across jobs (issue 15): a worker runs several jobs side by side and their windows
decode in shared batches, each job ending exactly as if it had run alone."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from conftest import run_wt, speech_files

from whisper_cli.engines.batching import BatchingWhisper, Gatherer

# Temperature fallback samples at random, alone or not: comparisons decode deterministically.
NO_FALLBACK = ("--temperature-increment-on-fallback", "0")


# ---- the gatherer, on a stand-in model (fast, exact counts) ----------------------------------
class CountingModel:
    """Answers each prompt row with its own first token; records every call's batch size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def generate(self, features, prompts, **kwargs):
        if kwargs.get("fail_on") in [p[-1] for p in prompts]:
            raise RuntimeError("bad row")
        self.calls.append(len(prompts))
        return [("row", p[-1]) for p in prompts]


def _on_threads(target, args: list) -> None:
    """target(arg) for every arg, each on its own thread, all started before any is joined."""
    threads = [threading.Thread(target=target, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def _features():
    import numpy as np

    return np.zeros((1, 4, 3), np.float32)


def test_members_share_one_call_and_each_gets_its_own_rows():
    model = CountingModel()
    proxy = BatchingWhisper(model, sot_token=1)
    gatherer = Gatherer(max_wait=5.0)
    answers: dict[int, list] = {}
    ready = threading.Barrier(4)

    def job(i: int) -> None:
        with gatherer.member():
            ready.wait()
            answers[i] = proxy.generate(_features(), [[1, 2, 100 + i]], beam_size=5)

    _on_threads(job, list(range(4)))
    assert model.calls == [4]
    assert answers == {i: [("row", 100 + i)] for i in range(4)}


def test_calls_that_cannot_share_a_batch_run_apart_and_outsiders_go_straight_through():
    model = CountingModel()
    proxy = BatchingWhisper(model, sot_token=1)
    gatherer = Gatherer(max_wait=5.0)
    ready = threading.Barrier(3)
    prompts = {0: ([1, 2, 7], 5), 1: ([1, 2, 8], 1), 2: ([9, 1, 2, 8], 5)}  # beam / prompt shape

    def job(i: int) -> None:
        prompt, beam = prompts[i]
        with gatherer.member():
            ready.wait()
            proxy.generate(_features(), [prompt], beam_size=beam)

    _on_threads(job, list(range(3)))
    assert sorted(model.calls) == [1, 1, 1]
    # A thread outside the gatherer does not wait for its members (max_wait here: a minute).
    hold = threading.Event()
    member = threading.Thread(target=lambda: _hold_membership(gatherer, hold))
    member.start()
    answer: list = []
    outsider = threading.Thread(
        target=lambda: answer.append(proxy.generate(_features(), [[1, 2, 3]]))
    )
    outsider.start()
    outsider.join(30)
    assert answer == [[("row", 3)]]
    hold.set()
    member.join(30)


def _hold_membership(gatherer: Gatherer, release: threading.Event) -> None:
    with gatherer.member():
        release.wait(60)


def test_a_failing_call_fails_alone_and_a_busy_member_does_not_hold_the_others_forever():
    model = CountingModel()
    proxy = BatchingWhisper(model, sot_token=1)
    gatherer = Gatherer(max_wait=0.3)
    results: dict[int, object] = {}
    ready = threading.Barrier(3)

    def job(i: int) -> None:
        with gatherer.member():
            ready.wait()
            try:
                results[i] = proxy.generate(_features(), [[1, 2, i]], fail_on=1)
            except RuntimeError as exc:
                results[i] = exc

    release = threading.Event()

    def busy() -> None:  # a member that never decodes (audio, writing, ...)
        with gatherer.member():
            ready.wait()
            release.wait(60)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    threads.append(threading.Thread(target=busy))
    for t in threads:
        t.start()
    for t in threads[:2]:
        t.join(30)
    # Both answered while the busy member still held on: they waited max_wait, not for it.
    assert not release.is_set() and not any(t.is_alive() for t in threads[:2])
    assert results[0] == [("row", 0)] and isinstance(results[1], RuntimeError)
    release.set()
    threads[2].join(30)


class BlockingModel(CountingModel):
    """Holds every call until `go` is set, as a long batch on a busy machine would."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.go = threading.Event(), threading.Event()

    def generate(self, features, prompts, **kwargs):
        self.started.set()
        assert self.go.wait(60)
        return super().generate(features, prompts, **kwargs)


def _until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_member_that_joins_while_the_others_wait_shares_their_call():
    """Jobs arrive in bursts, one claim at a time: a call does not run the moment every
    member so far waits, but once no member has joined for `settle` seconds, so a job that
    joins just after the first one's call is pending decodes with it (without the settle
    rule, the first call runs alone before the second job joins)."""
    model = CountingModel()
    proxy = BatchingWhisper(model, sot_token=1)
    gatherer = Gatherer(max_wait=60.0, settle=5.0)

    def first() -> None:
        with gatherer.member():
            proxy.generate(_features(), [[1, 2, 100]], beam_size=5)

    def second() -> None:
        while not gatherer._pending and not model.calls:  # the first call is waiting
            time.sleep(0.001)
        with gatherer.member():
            proxy.generate(_features(), [[1, 2, 101]], beam_size=5)

    _on_threads(lambda f: f(), [first, second])
    assert model.calls == [2]


def test_a_canceled_member_stops_waiting_at_once_and_its_batch_mates_go_on():
    """Cancel never waits for a batch: a canceled job's call that has not run is dropped, and a
    canceled job whose call is running stops waiting for it; the others get their rows."""
    from whisper_cli.errors import Canceled

    model = BlockingModel()
    proxy = BatchingWhisper(model, sot_token=1)
    gatherer = Gatherer(max_wait=0.05)
    stop = {name: threading.Event() for name in ("running", "pending", "mate")}
    outcome: dict[str, object] = {}

    def job(name: str, token: int) -> None:
        with gatherer.member(stop[name].is_set):
            try:
                outcome[name] = proxy.generate(_features(), [[1, 2, token]])
            except Canceled as exc:
                outcome[name] = exc

    first = threading.Thread(target=job, args=("running", 10))
    first.start()
    assert model.started.wait(30)  # its call runs (alone) and blocks in the model
    later = [threading.Thread(target=job, args=a) for a in (("pending", 11), ("mate", 12))]
    for t in later:
        t.start()
    _until(lambda: len(gatherer._pending) == 2)
    stop["pending"].set()
    stop["running"].set()
    for t in (first, later[0]):
        t.join(30)
    # Both canceled jobs are back while the model still holds the running batch.
    assert not model.go.is_set()
    assert isinstance(outcome["running"], Canceled) and isinstance(outcome["pending"], Canceled)
    assert gatherer.dropped == 1
    model.go.set()
    later[1].join(30)
    assert outcome["mate"] == [("row", 12)]
    assert model.calls == [1, 1]  # the dropped call never reached the model


# ---- the real engine ---------------------------------------------------------------------
def test_jobs_decoded_together_say_the_same_words_as_alone():
    """Eight real recordings on eight threads of one gatherer: merged calls happen, and every
    transcript (text and times) equals the one decoded alone."""
    from whisper_cli.engines import load_engine
    from whisper_cli.options.transcribe_options import TranscribeOptions
    from whisper_cli.transcribe import transcribe_file

    options = TranscribeOptions(model="tiny.en", temperature_increment_on_fallback=0.0)
    load_engine(options)
    files = [f for f, _ in speech_files("en")]
    alone = {f: transcribe_file(f, options)[0] for f in files}
    gatherer = Gatherer()
    together: dict[Path, object] = {}

    def job(f: Path) -> None:
        with gatherer.member():
            together[f] = transcribe_file(f, options)[0]

    _on_threads(job, files)
    assert gatherer.merged_calls >= 1 and gatherer.largest >= 4, gatherer.largest
    for f in files:
        a, b = alone[f], together[f]
        assert [(s.start, s.end, s.text) for s in a.segments] == [
            (s.start, s.end, s.text) for s in b.segments
        ], f.name


# ---- the daemon --------------------------------------------------------------------------
def _overlapping(jobs: list[dict]) -> int:
    """The most jobs one daemon had processing at the same moment."""
    spans = sorted((j["started_at"], j["finished_at"]) for j in jobs)
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_two_batching_daemons_complete_every_job_once_with_the_words_of_a_lone_run(
    daemon_factory, tmp_path
):
    files = [f for f, _ in speech_files("en")]
    a = daemon_factory("--max-batch", "4", *NO_FALLBACK)
    b = daemon_factory("--max-batch", "4", *NO_FALLBACK)
    names = [f"c{i:02d}-{f.name}" for i in range(3) for f in files]
    for i, name in enumerate(names):
        a.drop(files[i % len(files)], name)
    a.wait_for(lambda: sum(j["state"] == "completed" for j in a.jobs()) == len(names), 300)
    jobs = a.jobs()
    assert len(jobs) == len(names) and all(j["attempts"] == 1 for j in jobs)
    by_daemon: dict[str, list[dict]] = {}
    for j in jobs:
        by_daemon.setdefault(j["worker"]["daemon"], []).append(j)
    assert max(_overlapping(js) for js in by_daemon.values()) >= 2  # jobs ran side by side
    time.sleep(1.5)  # status.json says completed a moment before the daemon logs it
    lines = (a.log.read_text() + b.log.read_text()).splitlines()
    for j in jobs:  # exactly once across the two daemons
        assert sum(f"completed  {j['job_id']}" in line for line in lines) == 1, j["job_id"]
    # Alone: the CLI, same options.
    out = tmp_path / "alone"
    proc = run_wt("transcribe", *files, "-o", out, "-f", "json", "--beam-size", "1", *NO_FALLBACK)
    assert proc.returncode == 0, proc.stderr
    for j in jobs:
        source = files[names.index(j["input"]["name"]) % len(files)]
        mine = json.loads((a.spool / "jobs" / j["job_id"] / "result.json").read_text())
        lone = json.loads((out / f"{source.stem}.json").read_text())
        assert [(s["start"], s["end"], s["text"]) for s in mine["segments"]] == [
            (s["start"], s["end"], s["text"]) for s in lone["segments"]
        ], j["input"]["name"]


# Recordings longer than one window decode in batches within the file and run alone by
# default; with --batch-size 1 (Whisper's sequential loop) they batch across jobs.
SEQUENTIAL = ("--batch-size", "1")


def test_a_canceled_job_leaves_its_batch_and_the_others_complete(daemon_factory, long_wav):
    d = daemon_factory("--max-batch", "4", *SEQUENTIAL)
    d.drop(long_wav, "long-a.wav")
    d.drop(long_wav, "long-b.wav")
    d.wait_for(
        lambda: all(
            (j := d.job_by_input(n)) and j["progress"]["fraction"] > 0
            for n in ("long-a.wav", "long-b.wav")
        ),
        timeout=120,
    )
    victim = d.job_by_input("long-a.wav")["job_id"]
    assert run_wt("cancel", victim, "--spool", d.spool).returncode == 0
    canceled = d.wait_state("long-a.wav", timeout=30)
    assert canceled["state"] == "canceled" and canceled["attempts"] == 1
    other = d.wait_state("long-b.wav", timeout=300)
    assert other["state"] == "completed" and other["attempts"] == 1
    assert "danger trail" in (d.spool / "jobs" / other["job_id"] / "result.txt").read_text().lower()


def _worker_pids(daemon_pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == daemon_pid:
                out.append(int(entry))
    return out


def test_a_worker_killed_mid_batch_loses_no_job_and_each_runs_again_alone(daemon_factory, long_wav):
    d = daemon_factory("--max-batch", "4", *SEQUENTIAL)
    names = ["k1.wav", "k2.wav", "k3.wav"]
    for n in names:
        d.drop(long_wav, n)
    d.wait_for(lambda: all((j := d.job_by_input(n)) and j["state"] == "processing" for n in names))
    d.wait_for(lambda: d.job_by_input("k1.wav")["progress"]["fraction"] > 0, timeout=120)
    pids = {j["worker"]["pid"] for j in (d.job_by_input(n) for n in names)}
    assert len(pids) == 1  # one worker ran all three
    os.kill(pids.pop(), signal.SIGKILL)  # as the out-of-memory killer would
    jobs = [d.wait_state(n, timeout=600) for n in names]
    assert [j["state"] for j in jobs] == ["completed"] * 3, jobs
    assert all(j["attempts"] == 2 for j in jobs)
    assert _overlapping(jobs) == 1  # the second attempts ran one at a time
    assert d.log.read_text().count("runs alone next") == 3


def test_recordings_longer_than_a_window_batch_their_own_windows_and_run_alone(
    daemon_factory, long_wav
):
    """By default a recording over 30 s decodes its windows in batches (whisper_cli/engines/
    batched.py), so the worker gives it the batch to itself rather than mixing it with
    other jobs' windows."""
    d = daemon_factory("--max-batch", "4")
    names = ["w1.wav", "w2.wav"]
    for n in names:
        d.drop(long_wav, n)
    jobs = [d.wait_state(n, timeout=600) for n in names]
    assert [j["state"] for j in jobs] == ["completed"] * 2, jobs
    assert all(j["attempts"] == 1 for j in jobs)
    assert _overlapping(jobs) == 1
    for j in jobs:
        assert "danger trail" in (d.spool / "jobs" / j["job_id"] / "result.txt").read_text().lower()


def test_a_lone_job_does_not_wait_for_a_batch(daemon_factory):
    d = daemon_factory("--max-batch", "8")
    short, _ = speech_files("en")[0]
    d.drop(short, "alone.wav")
    job = d.wait_state("alone.wav", timeout=60)
    assert job["state"] == "completed"
    from datetime import datetime

    def t(s: str) -> float:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

    assert t(job["started_at"]) - t(job["created_at"]) < 1.5


def test_jobs_the_batch_cannot_take_run_alone(daemon_factory):
    """openai-engine jobs (no batched decoding) run one at a time even with --max-batch."""
    d = daemon_factory("--max-batch", "4", "--engine", "openai")
    short, _ = speech_files("en")[0]
    for i in range(3):
        d.drop(short, f"o{i}.wav")
    jobs = [d.wait_state(f"o{i}.wav", timeout=300) for i in range(3)]
    assert all(j["state"] == "completed" for j in jobs)
    assert _overlapping(jobs) == 1

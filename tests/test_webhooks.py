"""Webhooks: the daemon calls a job's `notify` URL when the job ends, signed, retried with
backoff, every attempt recorded in status.json; a daemon killed mid-delivery delivers after
its restart; URLs outside --webhook-allow (or internal ones without it) are refused. A real
receiver on 127.0.0.1; real daemons with tiny.en. Retention: --delete-input, wt clean ID."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import ROOT, free_port, run_wt

from spool.webhooks import signature, verify

SECRET = "s3cret-for-tests"
SPEECH = ROOT / "tests" / "data" / "speech" / "arctic_aew_a0001.wav"


class Receiver:
    """Answers each call with the next status of `answers` (then 200); with `hold`, the
    first call is held unanswered until released."""

    def __init__(self, answers: list[int] | None = None, hold: bool = False, port: int = 0) -> None:
        self.calls: list[tuple[dict, bytes]] = []
        self.answers = list(answers or [])
        self.hold = threading.Event() if hold else None
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.arrived:
                    receiver.calls.append((dict(self.headers), body))
                    receiver.arrived.notify_all()
                if receiver.hold is not None and len(receiver.calls) == 1:
                    receiver.hold.wait(60)
                    return  # no answer: the caller is gone by now
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_calls(self, n: int, timeout: float = 120) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.calls) >= n, timeout), self.calls

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()


def notify_state(daemon, name: str, states=("delivered", "failed", "refused")) -> dict:
    return daemon.wait_for(
        lambda: (
            (j := daemon.job_by_input(name))
            and (j.get("notify") or {}).get("state") in states
            and j
        )
    )


def test_a_job_calls_its_webhook_signed_and_retried_with_attempts_recorded(daemon_factory):
    receiver = Receiver(answers=[500, 503])
    try:
        daemon = daemon_factory("--webhook-secret", SECRET, "--webhook-allow", "127.0.0.1")
        daemon.drop(SPEECH, "a.wav", {"notify": receiver.url, "metadata": {"session": 7}})
        job = notify_state(daemon, "a.wav")
        assert job["state"] == "completed"
        notify = job["notify"]
        assert notify["state"] == "delivered" and notify["url"] == receiver.url
        assert [a.get("status") for a in notify["attempts"]] == [500, 503, 200]
        assert len(receiver.calls) == 3
        headers, body = receiver.calls[-1]
        assert verify(SECRET, headers["Wt-Signature"], body)
        assert not verify("another secret", headers["Wt-Signature"], body)
        assert not verify(SECRET, headers["Wt-Signature"], body + b" ")  # tampered
        old = signature(SECRET, 1_000_000_000, body)  # a replay of a 2001 call
        assert not verify(SECRET, old, body)
        data = json.loads(body)
        assert data == {
            "id": job["job_id"], "state": "completed", "error": None,
            "finished_at": job["finished_at"],
            "links": {"status": f"/jobs/{job['job_id']}",
                      "result": f"/jobs/{job['job_id']}/result?format=json"},
        }  # fmt: skip
        assert headers["Wt-Webhook-Id"] == job["job_id"]
        log = daemon.log.read_text()
        assert "webhook-retry" in log and "webhook " in log
    finally:
        receiver.close()


def test_a_failed_job_calls_too_and_a_bad_url_is_refused_at_the_drop(daemon_factory, tmp_path):
    receiver = Receiver()
    try:
        daemon = daemon_factory("--webhook-allow", "127.0.0.1")
        notes = tmp_path / "notes.wav"
        notes.write_text("not audio")
        daemon.drop(notes, "notes.wav", {"notify": receiver.url})
        job = notify_state(daemon, "notes.wav")
        assert job["state"] == "failed" and job["notify"]["state"] == "delivered"
        sent = json.loads(receiver.calls[0][1])
        assert sent["state"] == "failed" and sent["error"]["type"] == "not_audio"
        assert "Wt-Signature" not in receiver.calls[0][0]  # no secret, no signature
        daemon.drop(SPEECH, "b.wav", {"notify": "file:///etc/passwd"})
        job = daemon.wait_state("b.wav")
        assert job["state"] == "failed" and "sidecar notify" in job["error"]["message"]
    finally:
        receiver.close()


def test_internal_addresses_are_refused_unless_allowed(daemon_factory):
    receiver = Receiver()
    try:
        daemon = daemon_factory()  # no --webhook-allow: public addresses only
        daemon.drop(SPEECH, "a.wav", {"notify": receiver.url})
        job = notify_state(daemon, "a.wav")
        assert job["notify"]["state"] == "refused"
        assert "internal address" in job["notify"]["reason"]
        assert receiver.calls == []
        assert daemon.stop() == 0
        other = daemon_factory("--webhook-allow", "hooks.example.org", spool=daemon.spool)
        other.drop(SPEECH, "b.wav", {"notify": receiver.url})
        job = notify_state(other, "b.wav")
        assert (
            job["notify"]["state"] == "refused"
            and "not in --webhook-allow" in job["notify"]["reason"]
        )
    finally:
        receiver.close()


def test_a_daemon_killed_mid_delivery_delivers_after_its_restart(daemon_factory):
    receiver = Receiver(hold=True)
    try:
        daemon = daemon_factory("--webhook-allow", "127.0.0.1")
        daemon.drop(SPEECH, "a.wav", {"notify": receiver.url})
        receiver.wait_calls(1)  # the call is in flight, unanswered
        daemon.proc.kill()
        daemon.proc.wait(10)
        job = daemon.job_by_input("a.wav")
        assert job["state"] == "completed" and job["notify"]["state"] == "waiting"
        receiver.hold.set()
        again = daemon_factory("--webhook-allow", "127.0.0.1", spool=daemon.spool)
        job = notify_state(again, "a.wav")
        assert job["notify"]["state"] == "delivered"
        assert len(receiver.calls) == 2  # at least once: the receiver dedupes on the id
        assert {c[0]["Wt-Webhook-Id"] for c in receiver.calls} == {job["job_id"]}
    finally:
        receiver.close()


def test_delete_input_and_wt_clean_id_remove_what_they_say(daemon_factory):
    daemon = daemon_factory("--delete-input", "--log-format", "json")
    daemon.drop(SPEECH, "a.wav", {})
    job = daemon.wait_state("a.wav")
    assert job["state"] == "completed"
    job_dir = daemon.spool / "jobs" / job["job_id"]
    daemon.wait_for(lambda: not (job_dir / job["input"]["file"]).exists())
    assert (job_dir / "result.txt").exists()  # results stay
    events = [
        json.loads(line) for line in daemon.log.read_text().splitlines() if line.startswith("{")
    ]
    assert any(e["event"] == "removed" and e.get("why") == "delete-input" for e in events)
    proc = run_wt("clean", job["job_id"], "--spool", daemon.spool)
    assert proc.returncode == 0, proc.stderr
    assert not job_dir.exists()
    proc = run_wt("clean", job["job_id"], "--spool", daemon.spool)
    assert proc.returncode == 4 and "no job" in proc.stderr  # EXIT_NO_JOB, as wt status


def test_keep_finished_removes_old_jobs_and_says_so(daemon_factory):
    daemon = daemon_factory("--keep-finished", "0s", "--log-format", "json")
    daemon.drop(SPEECH, "a.wav", {})
    daemon.wait_for(
        lambda: any(
            '"why": "keep-finished"' in line for line in daemon.log.read_text().splitlines()
        ),
        timeout=150,
    )
    assert not list((daemon.spool / "jobs").iterdir())


def test_a_receiver_down_for_the_first_tries_gets_exactly_one_accepted_delivery(daemon_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    daemon = daemon_factory("--webhook-secret", SECRET, "--webhook-allow", "127.0.0.1")
    daemon.drop(SPEECH, "a.wav", {"notify": url})
    # Nobody listens yet: the first tries are refused connections, recorded as such.
    daemon.wait_for(
        lambda: (
            len(((daemon.job_by_input("a.wav") or {}).get("notify") or {}).get("attempts", [])) >= 2
        )
    )
    receiver = Receiver(port=port)
    try:
        job = notify_state(daemon, "a.wav")
        attempts = job["notify"]["attempts"]
        assert job["notify"]["state"] == "delivered"
        assert all("error" in a for a in attempts[:-1]) and attempts[-1]["status"] == 200
        assert len(receiver.calls) == 1  # the one accepted delivery
        headers, body = receiver.calls[0]
        assert verify(SECRET, headers["Wt-Signature"], body)
    finally:
        receiver.close()

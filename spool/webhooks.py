"""Webhooks: the daemon calls the URL a job named (sidecar "notify") when the job ends.

What is sent: POST, JSON body {"id", "state", "error", "finished_at", "links": {"status",
"result"}} (links are paths on `wt serve`), with the headers
  Wt-Webhook-Id: JOB_ID                    (dedupe on it: a call may come more than once)
  Wt-Signature: t=UNIX_TIME,v1=HEX         (HMAC-SHA256 of "UNIX_TIME." + body under the
                                            daemon's --webhook-secret; absent without one)
A 2xx answer delivers it; anything else (or no answer within TIMEOUT) is tried again after
1, 2, 4, ... s (at most MAX_DELAY apart) up to MAX_ATTEMPTS times. Every attempt is recorded in
the job's status.json under "notify", so a receiver's operator can see what happened, and a
daemon killed mid-delivery delivers after its restart (it finds the job still "waiting" or
"retrying"): delivery is at least once.

Where calls may go: with --webhook-allow, only to those hosts (names, addresses or CIDR
ranges); without it, only to public addresses: a URL from an uploader must not reach the
internal network (loopback, private, link-local, reserved) unasked. A refused URL is recorded
as "refused" with the reason.

Delivery runs on a few threads of the daemon: it never holds a worker.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from spool.layout import Layout, utcnow
from spool.status import JobStatus, read_status, write_status

WAITING, RETRYING, DELIVERED, FAILED, REFUSED = (
    "waiting",
    "retrying",
    "delivered",
    "failed",
    "refused",
)
OPEN = (WAITING, RETRYING)
TIMEOUT = 10.0
MAX_ATTEMPTS = 10
FIRST_DELAY = 1.0
MAX_DELAY = 300.0
SENDERS = 4  # deliveries at once


def new_notify(url: str | None) -> dict[str, Any] | None:
    return {"url": url, "state": WAITING, "attempts": []} if url else None


@dataclass(frozen=True)
class WebhookConfig:
    secret: str | None = None
    allow: tuple[str, ...] = ()  # hosts, addresses or CIDR ranges; empty: public addresses
    timeout: float = TIMEOUT
    max_attempts: int = MAX_ATTEMPTS
    first_delay: float = FIRST_DELAY


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The Wt-Signature header's value (a receiver computes the same and compares)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, tolerance: float = 300.0) -> bool:
    """A receiver's check: the signature matches and is recent (refuses replays)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def payload(status: JobStatus) -> bytes:
    error = {"type": status.error.type, "message": status.error.message} if status.error else None
    return json.dumps(
        {
            "id": status.job_id,
            "state": status.state,
            "error": error,
            "finished_at": status.finished_at,
            "links": {
                "status": f"/jobs/{status.job_id}",
                "result": f"/jobs/{status.job_id}/result?format=json",
            },
        }
    ).encode()


def refusal(url: str, allow: tuple[str, ...]) -> str | None:
    """Why the daemon will not call this URL, or None."""
    host = (urlsplit(url).hostname or "").lower()
    if allow:
        if host in allow or any(_in_range(host, a) for a in allow):
            return None
        return f"host {host} is not in --webhook-allow"
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError as exc:
        return f"host {host} cannot be resolved ({exc})"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            return (
                f"host {host} is an internal address ({ip}); the operator may allow it with "
                "--webhook-allow"
            )
    return None


def _in_range(host: str, allowed: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(allowed, strict=False)
    except ValueError:
        return False


class Notifier:
    """Delivers the webhooks of ended jobs, on its own threads."""

    def __init__(self, layout: Layout, config: WebhookConfig, log) -> None:
        self.layout, self.cfg, self.log = layout, config, log
        self.due: dict[str, float] = {}  # job id -> when to try it next (monotonic)
        self.busy: set[str] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="webhook")
        self.thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def consider(self, job_id: str, status: JobStatus | None) -> None:
        """A job that ended: schedule its webhook if it has one still to deliver."""
        if status is None or not status.terminal or not status.notify:
            return
        if status.notify.get("state") not in OPEN:
            return
        attempts = status.notify.get("attempts") or []
        wait = _delay(len(attempts), self.cfg.first_delay) if attempts else 0.0
        with self.lock:
            if job_id not in self.due and job_id not in self.busy:
                self.due[job_id] = time.monotonic() + wait
        self.wake.set()

    def _run(self) -> None:
        while not self.stopped.is_set():
            now = time.monotonic()
            with self.lock:
                ready = [j for j, at in self.due.items() if at <= now]
                for job_id in ready:
                    del self.due[job_id]
                    self.busy.add(job_id)
                following = min(self.due.values(), default=now + 1.0)
            for job_id in ready:
                try:
                    self.pool.submit(self._attempt, job_id)
                except RuntimeError:  # shutting down
                    return
            self.wake.wait(max(0.01, min(following - now, 1.0)))
            self.wake.clear()

    def _attempt(self, job_id: str) -> None:
        job_dir = self.layout.jobs / job_id
        try:
            status = read_status(job_dir)
            if status is None or not status.notify or status.notify.get("state") not in OPEN:
                return
            notify = status.notify
            url = notify["url"]
            refused = refusal(url, self.cfg.allow)
            if refused:
                notify.update(state=REFUSED, reason=refused)
                self._record(job_dir, status, "webhook-refused", url=url, reason=refused)
                return
            outcome = self._post(url, payload(status), job_id)
            notify["attempts"].append({"at": utcnow(), **outcome})
            ok = 200 <= outcome.get("status", 0) < 300
            tries = len(notify["attempts"])
            if ok:
                notify["state"] = DELIVERED
            elif tries >= self.cfg.max_attempts:
                notify["state"] = FAILED
            else:
                notify["state"] = RETRYING
            event = {DELIVERED: "webhook", FAILED: "webhook-failed"}.get(
                notify["state"], "webhook-retry"
            )
            self._record(job_dir, status, event, url=url, attempt=tries, **outcome)
            if notify["state"] == RETRYING:
                with self.lock:
                    self.due[job_id] = time.monotonic() + _delay(tries, self.cfg.first_delay)
                self.wake.set()
        except FileNotFoundError:
            return  # the job was removed meanwhile
        except Exception as exc:  # a bug must not end delivery for every other job
            self.log("webhook-error", job_id, error=f"{type(exc).__name__}: {exc}")
        finally:
            with self.lock:
                self.busy.discard(job_id)

    def _record(self, job_dir: Path, job: JobStatus, event: str, **fields: Any) -> None:
        write_status(job_dir, job)
        self.log(event, job.job_id, **fields)

    def _post(self, url: str, body: bytes, job_id: str) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Wt-Webhook-Id": job_id}
        if self.cfg.secret:
            headers["Wt-Signature"] = signature(self.cfg.secret, int(time.time()), body)
        request = urllib.request.Request(url, body, headers, method="POST")
        try:
            with _opener.open(request, timeout=self.cfg.timeout) as answer:
                return {"status": answer.status}
        except urllib.error.HTTPError as exc:
            return {"status": exc.code}
        except (OSError, ValueError) as exc:
            return {"error": str(getattr(exc, "reason", exc))[:300]}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would lead past the allow list: it counts as a failed attempt."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _delay(attempts: int, first: float) -> float:
    return min(MAX_DELAY, first * 2 ** max(attempts - 1, 0))

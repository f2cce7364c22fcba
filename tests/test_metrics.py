"""Prometheus metrics, scraped for real and read with prometheus_client's own parser."""

from __future__ import annotations

import time

import httpx
from conftest import free_port, run_wt, speech_files
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    """name + sorted labels -> value, for every sample."""
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_queue_depth_and_jobs_rise_and_fall_as_files_are_dropped_and_finished(
    daemon_factory, server_factory, spool_dir
):
    server = server_factory()  # the HTTP door alone: it reads the numbers from the spool
    empty = scrape(server.url + "/metrics")
    assert value(empty, "wt_queue_depth") == 0
    assert value(empty, "wt_info", version=__import__("whisper_cli").__version__, role="serve")

    recordings = [path for path, _ in speech_files("en")[:3]]
    for path in recordings:  # no daemon yet: they wait in the inbox
        proc = run_wt("submit", path, "--spool", spool_dir)
        assert proc.returncode == 0, proc.stderr
    waiting = scrape(server.url + "/metrics")
    assert value(waiting, "wt_queue_depth") == 3
    assert value(waiting, "wt_spool_inbox_files") == 3

    port = free_port()
    daemon = daemon_factory("--metrics-port", str(port), "--metrics-address", "127.0.0.1")
    daemon.wait_for(lambda: sum(j["state"] == "completed" for j in daemon.jobs()) == 3, timeout=300)
    url = f"http://127.0.0.1:{port}/metrics"
    # The daemon's own numbers are counted after the job's final status is read.
    deadline = time.monotonic() + 10
    while value(done := scrape(url), "wt_jobs_finished_total", state="completed") < 3:
        assert time.monotonic() < deadline, done
        time.sleep(0.2)
    assert value(done, "wt_queue_depth") == 0
    assert value(done, "wt_spool_jobs", state="completed") == 3
    assert value(done, "wt_spool_jobs", state="queued") == 0
    assert value(done, "wt_job_processing_seconds_count") == 3
    assert value(done, "wt_job_processing_seconds_sum") > 0
    assert value(done, "wt_job_realtime_factor_count") == 3
    assert 0 < value(done, "wt_job_realtime_factor_sum") / 3 < 5  # tiny.en, beam 1, 2 cores
    assert value(done, "wt_model_loads_total", model="faster:tiny.en") == 1  # loaded once
    assert value(done, "wt_worker_restarts_total") == 0
    assert value(done, "wt_workers") == 1 and value(done, "wt_jobs_running") == 0
    info = [k for k in done if k[0] == "wt_daemon_info"]
    assert info and dict(info[0][1])["watch"] in ("inotify", "poll")

    door = scrape(server.url + "/metrics")  # the door agrees: both read the spool
    assert value(door, "wt_queue_depth") == 0
    assert value(door, "wt_spool_jobs", state="completed") == 3


def test_a_taken_metrics_port_is_one_clear_line(spool_dir):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_wt(
            "daemon", "--spool", spool_dir, "--metrics-port", port, "--metrics-address", "127.0.0.1"
        )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"--metrics-port {port}" in proc.stderr and "free port" in proc.stderr

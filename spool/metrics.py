"""Prometheus metrics: what the spool holds (read at scrape time) and what a daemon did.

The spool's own numbers (queue depth, jobs by state) are read from the files at each scrape,
so every reader reports the same values and the stateless HTTP door can serve them, with no
daemon running too: that is what an autoscaler needs to start the first one.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from spool.client import Spool
from spool.layout import Layout
from whisper_cli import __version__
from whisper_cli.errors import WtError

# Real-time factor: processing seconds per second of audio (0.05 = 20x faster than real time).
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
SECONDS_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class SpoolCollector(Collector):
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = Spool(self.layout.root).counts()
        except (OSError, WtError):
            return  # a spool that cannot be read: no numbers rather than wrong ones
        jobs = GaugeMetricFamily("wt_spool_jobs", "Jobs in the spool by state.", labels=["state"])
        for state, count in sorted(counts.states.items()):
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(
            "wt_spool_inbox_files",
            "Files in the inbox not yet taken by a daemon.",
            value=counts.waiting,
        )
        yield GaugeMetricFamily(
            "wt_queue_depth",
            "Jobs waiting for a worker: queued jobs plus files in the inbox. Scale daemons on it.",
            value=counts.queue_depth,
        )


def spool_registry(layout: Layout, role: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SpoolCollector(layout))
    Info("wt", "wt version and the role of this process.", registry=registry).info(
        {"version": __version__, "role": role}
    )
    return registry


class DaemonMetrics:
    """What one daemon did since it started, beside the spool's numbers."""

    def __init__(self, layout: Layout) -> None:
        self.registry = spool_registry(layout, "daemon")
        r = self.registry
        self.info = Info("wt_daemon", "This daemon.", registry=r)
        self.jobs = Counter(
            "wt_jobs_finished", "Jobs this daemon finished, by final state.", ["state"], registry=r
        )
        self.seconds = Histogram(
            "wt_job_processing_seconds",
            "Seconds from start to end of each job this daemon ran.",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.rtf = Histogram(
            "wt_job_realtime_factor",
            "Processing seconds per second of audio, for each completed job.",
            buckets=RTF_BUCKETS,
            registry=r,
        )
        self.worker_restarts = Counter(
            "wt_worker_restarts", "Worker processes started again after one ended.", registry=r
        )
        self.model_loads = Counter(
            "wt_model_loads", "Models loaded by this daemon's workers.", ["model"], registry=r
        )
        self.running = Gauge("wt_jobs_running", "Jobs this daemon is running now.", registry=r)
        self.workers = Gauge("wt_workers", "Worker processes of this daemon.", registry=r)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)

    def job_finished(self, state: str, seconds: float | None, audio: float | None) -> None:
        self.jobs.labels(state).inc()
        if seconds is not None and seconds >= 0:
            self.seconds.observe(seconds)
            if state == "completed" and audio:
                self.rtf.observe(seconds / audio)

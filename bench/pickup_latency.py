"""Pickup latency: drop -> `processing` in status.json, over 50 drops per case, with inotify
and with polling, for the two ways producers deliver.

  python bench/pickup_latency.py [--drops 50] [--poll-interval 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SR, table, write_wav
from spool_throughput import drop, start_daemon, statuses

from spool.client import Spool
from spool.layout import parse_time


def rename_drop(spool: Path, clip: Path, name: str) -> float:
    return drop(clip, spool / "inbox", name)


def submit_drop(spool: Path, clip: Path, name: str) -> float:
    t = time.time()
    Spool(spool).submit(clip, job_id=name.replace(".wav", ""))
    return t


def measure(spool: Path, clip: Path, drops: int, how, tag: str = "d") -> list[float]:
    lat = []
    for i in range(drops):
        name = f"{tag}{i:03d}-{how.__name__[:6]}.wav"
        t_drop = how(spool, clip, name)
        while True:
            done = [
                s
                for s in statuses(spool)
                if (s["input"]["name"] == name or s["job_id"] == name[:-4])
                and s["state"] in ("completed", "failed")
            ]
            if done:
                break
            time.sleep(0.05)  # the latency is read from status.json, not from this loop
        lat.append(parse_time(done[0]["started_at"]).timestamp() - t_drop)
    return lat


def burst(spool: Path, clip: Path, drops: int) -> list[float]:
    """All drops renamed in at once: drop -> `created_at` (taken in as a queued job), since
    a worker runs only so many at a time."""
    times = {f"b{i:03d}.wav": rename_drop(spool, clip, f"b{i:03d}.wav") for i in range(drops)}
    while True:
        taken = {s["input"]["name"]: s for s in statuses(spool) if s["input"]["name"] in times}
        if len(taken) == drops:
            break
        time.sleep(0.05)
    return [parse_time(taken[n]["created_at"]).timestamp() - t for n, t in times.items()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--drops", type=int, default=50)
    ap.add_argument("--poll-interval", type=float, default=0.5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    clip = write_wav(np.zeros(SR, np.float32), tmp / "silence.wav")
    rows = []
    polling = ["--poll", "--poll-interval", str(args.poll_interval)]
    cases = [
        ("inotify", [], rename_drop, "write .x.tmp, rename"),
        ("inotify", [], submit_drop, "wt submit (sidecar with size)"),
        (f"poll {args.poll_interval} s", polling, submit_drop, "wt submit (sidecar with size)"),
        (f"poll {args.poll_interval} s", polling, rename_drop, "write .x.tmp, rename (no sidecar)"),
    ]
    for i, (watch, extra, how, label) in enumerate(cases):
        spool = tmp / f"spool{i}"
        proc = start_daemon(spool, *extra, model="tiny.en")
        try:
            measure(spool, clip, 1, how, tag="warm")  # warm-up: the worker loads the model
            lat = sorted(measure(spool, clip, args.drops, how))
        finally:
            proc.terminate()
            proc.wait()
        p95 = lat[int(round(0.95 * (len(lat) - 1)))]
        rows.append([watch, label, statistics.median(lat) * 1000, p95 * 1000, max(lat) * 1000])
    spool = tmp / "spool-burst"
    proc = start_daemon(spool, model="tiny.en")
    try:
        measure(spool, clip, 1, rename_drop, tag="warm")
        lat = sorted(burst(spool, clip, args.drops))
    finally:
        proc.terminate()
        proc.wait()
    p95 = lat[int(round(0.95 * (len(lat) - 1)))]
    label = f"{args.drops} renames at once (drop -> taken in)"
    rows.append(["inotify", label, statistics.median(lat) * 1000, p95 * 1000, max(lat) * 1000])
    table(
        f"Pickup latency over {args.drops} drops (drop -> processing), settle 2 s",
        ["watch", "producer", "median ms", "p95 ms", "max ms"],
        rows,
        "Latency is status.json `started_at` minus the drop time, on one host; each drop "
        "waits for the previous job to finish, so it measures pickup, not queueing. When "
        "polling, a file renamed in between two scans without a sidecar `size` cannot be told "
        "from one written in place, so it waits for the settle time.",
        name="pickup_latency",
    )


if __name__ == "__main__":
    main()

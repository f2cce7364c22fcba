"""Pickup latency: drop (rename into inbox) -> `processing` in status.json, over 50 drops,
with inotify and with polling.   python bench/pickup_latency.py [--drops 50]
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

from spool.layout import parse_time


def measure(spool: Path, clip: Path, drops: int) -> list[float]:
    lat = []
    for i in range(drops):
        name = f"d{i:03d}.wav"
        t_drop = drop(clip, spool / "inbox", name)
        while True:
            done = [
                s
                for s in statuses(spool)
                if s["input"]["name"] == name and s["state"] in ("completed", "failed")
            ]
            if done:
                break
            time.sleep(0.01)
        lat.append(parse_time(done[0]["started_at"]).timestamp() - t_drop)
    return lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--drops", type=int, default=50)
    ap.add_argument("--poll-interval", type=float, default=0.5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    clip = write_wav(np.zeros(SR, np.float32), tmp / "silence.wav")
    rows = []
    for label, extra in (
        ("inotify", []),
        (
            f"--poll, interval {args.poll_interval} s",
            ["--poll", "--poll-interval", str(args.poll_interval)],
        ),
    ):
        spool = tmp / label.split()[0].strip("-")
        proc = start_daemon(spool, *extra, model="tiny.en")
        try:
            measure(spool, clip, 1)  # warm-up: the worker loads the model
            lat = sorted(measure(spool, clip, args.drops))
        finally:
            proc.terminate()
            proc.wait()
        p95 = lat[int(round(0.95 * (len(lat) - 1)))]
        rows.append([label, statistics.median(lat) * 1000, p95 * 1000, max(lat) * 1000])
    table(
        f"Pickup latency over {args.drops} drops (rename into inbox -> processing)",
        ["watch", "median ms", "p95 ms", "max ms"],
        rows,
        "Latency is status.json `started_at` minus the time of the rename, on one host; "
        "each drop waits for the previous job to finish, so it measures pickup, not queueing.",
        name="pickup_latency",
    )


if __name__ == "__main__":
    main()

"""Spool throughput: 50 short clips (3-10 s) through a running daemon, against the sum of
direct in-process transcriptions and against one `wt transcribe` process per job (the
pattern of an HTTP service that loads the model per request).

  python bench/spool_throughput.py [--clips 50] [--model tiny.en] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SR, median, speech, table, write_wav

from whisper_cli.audio import decode


def make_clips(n: int, out: Path) -> list[Path]:
    rng = random.Random(7)
    clips = [decode(f) for f, _ in speech("en")]
    paths = []
    for i in range(n):
        audio = rng.choice(clips)
        while len(audio) < rng.uniform(3, 10) * SR:
            audio = np.concatenate([audio, np.zeros(SR // 4, np.float32), rng.choice(clips)])
        paths.append(write_wav(audio[: 10 * SR], out / f"clip{i:02d}.wav"))
    return paths


def start_daemon(spool: Path, *args: str, model: str) -> subprocess.Popen:
    wt = str(Path(sys.executable).parent / "wt")
    proc = subprocess.Popen(
        [wt, "daemon", "--spool", str(spool), "-m", model, "-f", "json", *args],
        stderr=subprocess.DEVNULL,
    )
    while not list((spool / "daemons").glob("*.json")) if (spool / "daemons").exists() else True:
        time.sleep(0.05)
    return proc


def drop(src: Path, inbox: Path, name: str) -> float:
    tmp = inbox / f".{name}.tmp"
    shutil.copyfile(src, tmp)
    t = time.time()
    os.rename(tmp, inbox / name)
    return t


def statuses(spool: Path) -> list[dict]:
    out = []
    for d in (spool / "jobs").iterdir():
        try:
            out.append(json.loads((d / "status.json").read_text()))
        except (FileNotFoundError, ValueError):
            pass
    return out


def wait_completed(spool: Path, n: int) -> None:
    while sum(s["state"] == "completed" for s in statuses(spool)) < n:
        time.sleep(0.02)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=50)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "clips").mkdir()
    clips = make_clips(args.clips, tmp / "clips")
    audio_s = sum(len(decode(c)) for c in clips) / SR

    # 1. Direct, in process, model loaded once (not counted).
    from whisper_cli.engines import load_engine
    from whisper_cli.options import TranscribeOptions
    from whisper_cli.transcribe import transcribe_file

    opts = TranscribeOptions(model=args.model, output_formats=("json",))
    load_engine(opts)
    t0 = time.perf_counter()
    for c in clips:
        transcribe_file(c, opts)
    direct = time.perf_counter() - t0

    # 2. The daemon, warmed up with one job, then all clips dropped at once.
    spool = tmp / "spool"
    proc = start_daemon(spool, "--workers", str(args.workers), model=args.model)
    try:
        drop(clips[0], spool / "inbox", "warmup.wav")
        wait_completed(spool, 1)
        t0 = time.perf_counter()
        for i, c in enumerate(clips):
            drop(c, spool / "inbox", f"job{i:02d}.wav")
        wait_completed(spool, len(clips) + 1)
        daemon = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait()

    # 3. One process per job, loading the model each time.
    wt = str(Path(sys.executable).parent / "wt")
    t0 = time.perf_counter()
    for c in clips:
        subprocess.run(
            [
                wt,
                "transcribe",
                str(c),
                "-m",
                args.model,
                "-f",
                "json",
                "-q",
                "-o",
                str(tmp / "per-job"),
            ],
            check=True,
        )
    per_job = time.perf_counter() - t0

    rows = [
        ["direct, in process (model loaded once)", direct, 1.0, audio_s / direct],
        [f"wt daemon, {args.workers} worker(s)", daemon, daemon / direct, audio_s / daemon],
        ["a process per job (model load each time)", per_job, per_job / direct, audio_s / per_job],
    ]
    table(
        f"Spool throughput: {args.clips} clips of 3-10 s ({audio_s:.0f} s of audio), "
        f"model {args.model}",
        ["how", "wall s", "vs direct", "audio s per wall s"],
        rows,
        "Daemon time runs from the first drop to the last `completed` status, after one "
        "warm-up job (the model stays loaded, as in production).",
        name="spool_throughput",
    )
    print(f"median clip {median([len(decode(c)) / SR for c in clips]):.1f} s")


if __name__ == "__main__":
    main()

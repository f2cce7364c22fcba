"""Overhead: `wt transcribe` vs a bare faster-whisper script, and `wt --help` start-up.

python bench/overhead.py [--model tiny.en] [--runs 7] [--fallback]

Both sides decode with the same settings (beam 5, temperature 0). By default temperature
fallback is off on both: fallback re-decodes failed windows by random sampling, so the amount
of work differs from run to run by more than the overhead being measured.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import ROOT, long_recording, median, table, timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--fallback", action="store_true", help="keep temperature fallback on")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    wav, _ = long_recording(60, tmp / "one-minute.wav")
    wt = str(Path(sys.executable).parent / "wt")
    cmds = {
        "wt transcribe (CLI, all 5 formats)": [
            wt,
            "transcribe",
            str(wav),
            "-m",
            args.model,
            "-o",
            str(tmp / "out"),
            "-q",
            *([] if args.fallback else ["--temperature-increment-on-fallback", "0"]),
        ],
        "bare faster-whisper script": [
            sys.executable,
            str(ROOT / "bench" / "transcribe_once.py"),
            "bare-faster",
            args.model,
            "int8",
            str(wav),
            *([] if args.fallback else ["--no-fallback"]),
        ],
    }
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    rss: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            w, r = timed(cmd)
            walls[name].append(w)
            rss[name].append(r)
    bare = median(walls["bare faster-whisper script"])
    rows = [
        [name, median(walls[name]), median(walls[name]) / bare - 1, median(rss[name])]
        for name in cmds
    ]
    helps = [timed([wt, "--help"])[0] for _ in range(args.runs)]
    rows.append(["wt --help", median(helps), "", ""])
    table(
        f"Overhead, model {args.model}, 60 s of real speech, process wall time, "
        f"fallback {'on' if args.fallback else 'off'}",
        ["command", "wall s (median)", "overhead vs bare", "peak RSS MB"],
        rows,
        f"{args.runs} runs each, alternated; wall time includes interpreter start and model load.",
    )


if __name__ == "__main__":
    main()

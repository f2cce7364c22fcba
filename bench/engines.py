"""Engines: faster-whisper int8 / float32 vs openai-whisper float32 on one >= 60 s recording.

Alternates the engines run by run (3 runs each by default), each in a fresh process;
reports medians of transcription time (model load excluded and shown apart), RTF, peak RSS
and WER.   python bench/engines.py [--model tiny.en] [--runs 3] [--seconds 75]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import ROOT, long_recording, median, run_json, table

from whisper_cli.wer import wer

CONFIGS = [("wt-faster", "int8"), ("wt-faster", "float32"), ("wt-openai", "float32")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=75)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    wav, ref = long_recording(args.seconds, tmp / "long.wav")
    results: dict[tuple[str, str], list[dict]] = {c: [] for c in CONFIGS}
    for _ in range(args.runs):
        for engine, compute in CONFIGS:
            results[(engine, compute)].append(
                run_json(
                    [
                        sys.executable,
                        str(ROOT / "bench" / "transcribe_once.py"),
                        engine,
                        args.model,
                        compute,
                        str(wav),
                    ]
                )
            )
    base = median([r["transcribe_s"] for r in results[("wt-openai", "float32")]])
    rows = []
    for (engine, compute), runs in results.items():
        t = median([r["transcribe_s"] for r in runs])
        rows.append(
            [
                engine.removeprefix("wt-"),
                compute,
                t,
                t / runs[0]["duration"],
                base / t,
                median([r["load_s"] for r in runs]),
                median([r["rss_mb"] for r in runs]),
                wer(ref, runs[0]["text"]),
            ]
        )
    table(
        f"Engines, model {args.model}, {args.seconds:.0f} s of real speech, beam 5",
        [
            "engine",
            "compute",
            "transcribe s (median)",
            "RTF",
            "speed-up vs openai",
            "load s",
            "peak RSS MB",
            "WER",
        ],
        rows,
        f"{args.runs} runs each, alternated, fresh process per run; WER normalised "
        "(lower case, punctuation stripped, numbers spelled).",
    )


if __name__ == "__main__":
    main()

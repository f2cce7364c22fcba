"""Engines: faster-whisper int8 / float32 vs openai-whisper float32 on one >= 60 s recording.

Alternates the engines run by run (3 runs each by default), each in a fresh process;
reports medians of transcription time (model load excluded and shown apart), RTF, peak RSS
and WER, with temperature fallback on (the default decoding) and off (deterministic).
python bench/engines.py [--model tiny.en] [--runs 3] [--seconds 75] [--modes on off] [--condition]

The long recording is the real clips of tests/data/speech repeated, so its text repeats every
~30 s. With the previous text as prompt, Whisper then copies the prompt instead of listening
(measured: tiny.en int8 WER 0.42 with, 0.11 without), a failure of the material rather than
of an engine; so windows are not conditioned on previous text unless --condition is given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import ROOT, long_recording, median, run_json, table

from whisper_cli.wer import wer

# (engine, compute type, batch size); batched decoding never falls back, so it runs once.
CONFIGS = [("wt-faster", "int8", 1), ("wt-faster", "float32", 1), ("wt-openai", "float32", 1)]
BATCHED = ("wt-faster", "int8", 8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=75)
    ap.add_argument("--modes", nargs="+", choices=["on", "off"], default=["on", "off"])
    ap.add_argument("--condition", action="store_true", help="condition on previous text")
    ap.add_argument("--whisper-cpp", type=Path, help="a whisper.cpp checkout, built: adds its row")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    wav, ref = long_recording(args.seconds, tmp / "long.wav")
    configs = CONFIGS + ([("whisper-cpp", "f16", 1)] if args.whisper_cpp else [])
    env = {"WT_WHISPER_CPP": str(args.whisper_cpp.resolve())} if args.whisper_cpp else None
    if args.whisper_cpp:
        from whisper_cpp import ggml_model

        ggml_model(args.model, args.whisper_cpp.resolve())  # converted before any timing
    keys = [(mode, *config) for mode in args.modes for config in configs]
    if "off" in args.modes:
        keys.append(("off", *BATCHED))
    results: dict[tuple[str, str, str, int], list[dict]] = {k: [] for k in keys}
    for _ in range(args.runs):
        for mode, engine, compute, batch in keys:
            results[(mode, engine, compute, batch)].append(
                run_json(
                    [
                        sys.executable,
                        str(ROOT / "bench" / "transcribe_once.py"),
                        engine,
                        args.model,
                        compute,
                        str(wav),
                        *(["--no-fallback"] if mode == "off" else []),
                        *([] if args.condition else ["--no-condition"]),
                        f"--batch={batch}",
                    ],
                    env=env,
                )
            )
    rows = []
    for (mode, engine, compute, batch), runs in results.items():
        base = median([r["transcribe_s"] for r in results[(mode, "wt-openai", "float32", 1)]])
        t = median([r["transcribe_s"] for r in runs])
        rows.append(
            [
                mode,
                engine.removeprefix("wt-"),
                compute,
                batch,
                t,
                t / runs[0]["duration"],
                base / t,
                median([r["load_s"] for r in runs]),
                median([r["rss_mb"] for r in runs]),
                median([wer(ref, r["text"]) for r in runs]),
            ]
        )
    table(
        f"Engines, model {args.model}, {args.seconds:.0f} s of real speech, beam 5, "
        f"condition on previous text {'on' if args.condition else 'off'}",
        [
            "fallback",
            "engine",
            "compute",
            "batch",
            "transcribe s (median)",
            "RTF",
            "speed-up vs openai",
            "load s",
            "peak RSS MB",
            "WER",
        ],
        rows,
        f"{args.runs} runs each, alternated, fresh process per run; speed-up against openai "
        "with the same fallback setting; WER (median of the runs) normalised (lower case, "
        "punctuation stripped, numbers spelled). Fallback on: temperatures 0, 0.2, ... 1.0 "
        "(the default); off: temperature 0 only. Batch 8: `--batch-size 8` (Silero VAD "
        "windows decoded 8 at a time, no fallback).",
        name=f"engines-{args.model}",
    )


if __name__ == "__main__":
    main()

"""Run every benchmark in turn; each prints its table and writes bench/results/NAME.md.
With $WT_WHISPER_CPP naming a built whisper.cpp checkout, the engine tables get its row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ("accuracy", []),
    ("engines", ["--model", "tiny.en"]),
    ("engines", ["--model", "base"]),
    ("overhead", []),
    ("pickup_latency", []),
    ("spool_throughput", []),
    ("spool_throughput", ["--model", "base"]),
    ("short_files", []),
    ("scale", []),
    ("diarize", []),
]
CPP = os.environ.get("WT_WHISPER_CPP")
for name, args in RUNS:
    if CPP and name in ("engines", "short_files"):
        args = [*args, "--whisper-cpp", CPP]
    print(f"== {name} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args], check=True)

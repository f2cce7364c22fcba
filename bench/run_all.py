"""Run every benchmark in turn; each prints its table and writes bench/results/NAME.md."""

from __future__ import annotations

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
    ("scale", []),
    ("diarize", []),
]
for name, args in RUNS:
    print(f"== {name} {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args], check=True)

"""Run every benchmark in turn; each prints its table and writes bench/results/NAME.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for name in ("accuracy", "engines", "overhead", "pickup_latency", "spool_throughput", "scale"):
    print(f"== {name}", flush=True)
    subprocess.run([sys.executable, str(HERE / f"{name}.py"), *sys.argv[1:]], check=True)

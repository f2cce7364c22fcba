"""Shared helpers for the benchmarks: test audio, subprocess timing, tables."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPEECH = Path(os.environ.get("WT_TEST_SPEECH", ROOT / "tests" / "data" / "speech"))
# Where tables are written (bench/gpu_check.sh sends its own elsewhere).
RESULTS = Path(os.environ.get("WT_BENCH_RESULTS", ROOT / "bench" / "results"))
SR = 16000
sys.path.insert(0, str(ROOT))


def speech(lang: str = "en") -> list[tuple[Path, str]]:
    entries = json.loads((SPEECH / "MANIFEST.json").read_text())
    return [
        (SPEECH / e["file"], (SPEECH / f"{e['name']}.txt").read_text().strip())
        for e in entries
        if e["lang"] == lang
    ]


def long_recording(seconds: float, path: Path) -> tuple[Path, str]:
    """Real recordings joined with 0.5 s pauses; returns the wav and its reference text."""
    from whisper_cli.audio.decode import decode

    clips = [(decode(f), ref) for f, ref in speech("en")]
    parts, refs, total = [], [], 0
    while total < seconds * SR:
        for audio, ref in clips:
            if total >= seconds * SR:
                break
            parts += [audio, np.zeros(SR // 2, np.float32)]
            refs.append(ref)
            total += len(audio) + SR // 2
    write_wav(np.concatenate(parts), path)
    return path, " ".join(refs)


def write_wav(audio: np.ndarray, path: Path) -> Path:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def run_json(cmd: list[str], env: dict | None = None) -> dict:
    """Run a command that prints one JSON object on its last line."""
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of a command, via GNU time."""
    t0 = time.perf_counter()
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{out.stderr[-2000:]}")
    return wall, int(out.stderr.strip().splitlines()[-1]) / 1024


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {date.today()}"


def table(
    title: str,
    header: list[str],
    rows: list[list[object]],
    notes: str = "",
    name: str | None = None,
) -> str:
    def fmt(v: object) -> str:
        return (
            f"{v:.3g}"
            if isinstance(v, float) and abs(v) < 100
            else f"{v:.0f}"
            if isinstance(v, float)
            else str(v)
        )

    lines = [
        f"### {title}",
        "",
        f"Machine: {machine()}. Command: `{' '.join(sys.argv)}`",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    if notes:
        lines += ["", notes]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name or Path(sys.argv[0]).stem}.md").write_text(text)
    return text


def worktree(rev: str) -> Path:
    """A checkout of git revision `rev` in the temp dir (made once), to run "before" code."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"wt-before-{rev}"
    if not path.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
            check=True,
            capture_output=True,
        )
    return path

"""whisper.cpp beside wt in the benchmarks: the same checkpoint, converted its own way.

A whisper.cpp checkout built from source (bench/build_whisper_cpp.sh SRC) is named by
--whisper-cpp SRC or $WT_WHISPER_CPP. Weights: `wt models convert MODEL x.pt` writes the
openai-whisper checkpoint of the CTranslate2 model wt runs, and whisper.cpp's own
models/convert-pt-to-ggml.py turns it into ggml (f16), so both tools run the same weights.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("WT_CACHE_DIR", Path.home() / ".cache" / "wt")) / "ggml"


def binary(src: Path) -> Path:
    path = src / "build" / "bin" / "whisper-cli"
    if not path.is_file():
        raise SystemExit(f"{path} not found: build it with bench/build_whisper_cpp.sh {src}")
    return path


def ggml_model(model: str, src: Path) -> Path:
    """The ggml file for a wt model name, converted once and cached."""
    out = CACHE / f"ggml-{model}.bin"
    if out.is_file():
        return out
    import whisper  # openai-whisper's assets: mel filters and tokenizer, as the script wants

    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pt = Path(tmp) / f"{model}.pt"
        wt = Path(sys.executable).parent / "wt"
        subprocess.run([str(wt), "models", "convert", model, str(pt)], check=True)
        assets_root = Path(whisper.__file__).parent.parent
        subprocess.run(
            [
                sys.executable,
                str(src / "models" / "convert-pt-to-ggml.py"),
                str(pt),
                str(assets_root),
                tmp,
            ],
            check=True,
            capture_output=True,
        )
        os.replace(Path(tmp) / "ggml-model.bin", out)
    return out


def transcribe(
    src: Path, model: str, path: str, beam: int, threads: int, fallback: bool, condition: bool
) -> dict:
    """One whisper.cpp run; load and transcription times from its own timings report."""
    import resource

    cmd = [
        str(binary(src)),
        "-m",
        str(ggml_model(model, src)),
        "-f",
        path,
        "-t",
        str(threads),
        "-bs",
        str(beam),
        "-bo",
        str(beam),
        "-l",
        "en" if model.endswith(".en") else "auto",
        "-nt",
    ]
    if not fallback:
        cmd.append("-nf")
    if not condition:
        cmd += ["-mc", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])

    def ms(name: str) -> float:
        m = re.search(rf"{name} time =\s*([\d.]+) ms", proc.stderr)
        return float(m.group(1)) / 1000 if m else 0.0

    samples = re.search(r"\((\d+) samples", proc.stderr)
    return {
        "load_s": ms("load"),
        "transcribe_s": ms("total") - ms("load"),
        "duration": int(samples.group(1)) / 16000 if samples else 0.0,
        "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "text": " ".join(proc.stdout.split()),
    }

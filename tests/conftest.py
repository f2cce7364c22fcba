"""Shared test helpers: the real speech recordings, a `wt` runner, and audio makers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEECH = Path(os.environ.get("WT_TEST_SPEECH", ROOT.parent / "shared" / "speech"))
SR = 16000


def speech_files(lang: str = "en") -> list[tuple[Path, str]]:
    """(wav, reference text) pairs of the real recordings in the given language."""
    manifest = SPEECH / "MANIFEST.json"
    if not manifest.is_file():
        pytest.skip(f"real speech recordings not found at {SPEECH}")
    entries = json.loads(manifest.read_text())
    return [
        (SPEECH / e["file"], (SPEECH / f"{e['name']}.txt").read_text().strip())
        for e in entries
        if e["lang"] == lang
    ]


def run_wt(
    *args: str | Path, cwd: Path | None = None, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "WT_MODEL": "tiny.en", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "whisper_cli", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_wav(path: Path) -> np.ndarray:
    from whisper_cli.audio import decode

    return decode(path)


def encode(
    samples: np.ndarray,
    path: Path,
    codec: str | None = None,
    video: bool = False,
    audio: bool = True,
) -> Path:
    """Write mono float samples at 16 kHz to any container PyAV can mux."""
    import av

    codec = (
        codec
        or {
            ".mp3": "mp3",
            ".flac": "flac",
            ".m4a": "aac",
            ".ogg": "libopus",
            ".opus": "libopus",
            ".webm": "libopus",
            ".mkv": "aac",
            ".mp4": "aac",
            ".wav": "pcm_s16le",
        }[path.suffix]
    )
    rate = 48000 if codec == "libopus" else (SR if codec in ("pcm_s16le", "flac") else 44100)
    with av.open(str(path), "w") as out:
        vstream = None
        if video:
            vstream = out.add_stream("mpeg4", rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        if audio:
            astream = out.add_stream(codec, rate=rate)
            astream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(
                (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :],
                format="s16",
                layout="mono",
            )
            frame.sample_rate = SR
            frame.time_base = Fraction(1, SR)
            resampler = av.AudioResampler(format=astream.format.name, layout="mono", rate=rate)
            for rf in resampler.resample(frame) + resampler.resample(None):
                for packet in _chunked_encode(astream, rf):
                    out.mux(packet)
            for packet in astream.encode(None):
                out.mux(packet)
        if vstream is not None:
            seconds = max(1, int(len(samples) / SR))
            for i in range(seconds * 10):
                img = av.VideoFrame.from_ndarray(
                    np.full((48, 64, 3), i % 255, dtype=np.uint8), format="rgb24"
                )
                img.pts = i
                for packet in vstream.encode(img):
                    out.mux(packet)
            for packet in vstream.encode(None):
                out.mux(packet)
    return path


def _chunked_encode(stream, frame):
    # Encoders with a fixed frame size (aac, mp3, opus) need frames of that size.
    import av

    size = stream.codec_context.frame_size or frame.samples
    data = frame.to_ndarray()
    packets = []
    pts = 0
    for start in range(0, frame.samples, size):
        part = data[:, start : start + size]
        f = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(part), format=frame.format.name, layout="mono"
        )
        f.sample_rate = frame.sample_rate
        f.pts = pts
        f.time_base = Fraction(1, frame.sample_rate)
        pts += f.samples
        packets.extend(stream.encode(f))
    return packets


def espeak(text: str, path: Path) -> Path:
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng not installed")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return path


@pytest.fixture
def english_wav() -> tuple[Path, str]:
    return speech_files("en")[0]

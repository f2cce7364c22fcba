"""Decode any audio or video file to 16 kHz mono float32, the one input both engines get.

PyAV carries its own ffmpeg libraries, so no ffmpeg program is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from whisper_cli.errors import EmptyAudio, InputNotFound, NotAudio

SAMPLE_RATE = 16000

AUDIO_EXTENSIONS = frozenset(
    [
        ".wav",
        ".mp3",
        ".flac",
        ".m4a",
        ".aac",
        ".ogg",
        ".oga",
        ".opus",
        ".webm",
        ".mp4",
        ".mkv",
        ".mov",
        ".avi",
        ".wma",
        ".aiff",
        ".aif",
        ".amr",
        ".3gp",
        ".m4v",
        ".mpga",
        ".mpeg",
        ".ts",
        ".caf",
        ".au",
    ]
)


def is_audio_name(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def decode(path: str | os.PathLike[str], label: str | None = None) -> np.ndarray:
    """Return the first audio track of `path` as mono float32 samples at 16 kHz.

    `label` names the file in error messages (the spool passes the name it was dropped as).
    """
    import av  # imported here so `wt --help` does not pay for the ffmpeg libraries

    path = Path(path)
    name = label or str(path)
    if not path.exists():
        raise InputNotFound(f"{name}: no such file", "check the path")
    if path.is_dir():
        raise NotAudio(f"{name}: is a directory", "give audio files, or a directory to walk")
    if path.stat().st_size == 0:
        raise EmptyAudio(f"{name}: file is empty (0 bytes)", "the upload or copy may have failed")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise NotAudio(
            f"{name}: not an audio or video file that can be decoded ({_reason(exc)})",
            "convert it to a common format such as wav, mp3 or flac",
        ) from None
    chunks: list[np.ndarray] = []
    with container:
        if not container.streams.audio:
            kind = "a video with no audio track" if container.streams.video else "no audio track"
            raise NotAudio(f"{name}: {kind}", "give a file that contains sound")
        stream = container.streams.audio[0]
        # Decoding runs in ffmpeg's threads; the Python side only collects resampled frames.
        stream.thread_type = "AUTO"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise NotAudio(
                    f"{name}: audio could not be decoded ({_reason(exc)})",
                    "the file may be corrupt or truncated; re-encode or re-upload it",
                ) from None
            # A truncated tail (an interrupted upload) still yields the audio before it,
            # as ffmpeg itself does; the caller gets everything that was decodable.
    if not chunks:
        raise EmptyAudio(f"{name}: contains no audio samples", "the recording is empty")
    audio = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    if audio.size == 0:
        raise EmptyAudio(f"{name}: contains no audio samples", "the recording is empty")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() or type(exc).__name__

"""Decode any audio or video file to 16 kHz mono float32, the one input both engines get.

PyAV carries its own ffmpeg libraries, so no ffmpeg program is needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
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


class AudioReader:
    """An opened, validated audio track, decoded block by block (flat memory for any length).

    Opening checks everything that can be checked up front (exists, not empty, decodable
    container, has an audio track), so a bad input fails before any model work.
    """

    def __init__(self, path: str | os.PathLike[str], label: str | None = None) -> None:
        import av  # imported here so `wt --help` does not pay for the ffmpeg libraries

        path = Path(path)
        self.name = name = label or str(path)
        if not path.exists():
            raise InputNotFound(f"{name}: no such file", "check the path")
        if path.is_dir():
            raise NotAudio(f"{name}: is a directory", "give audio files, or a directory to walk")
        if path.stat().st_size == 0:
            raise EmptyAudio(
                f"{name}: file is empty (0 bytes)", "the upload or copy may have failed"
            )
        try:
            self.container = av.open(str(path), metadata_errors="ignore")
        except (av.error.FFmpegError, UnicodeDecodeError) as exc:
            raise NotAudio(
                f"{name}: not an audio or video file that can be decoded ({_reason(exc)})",
                "convert it to a common format such as wav, mp3 or flac",
            ) from None
        if not self.container.streams.audio:
            kind = (
                "a video with no audio track" if self.container.streams.video else "no audio track"
            )
            self.container.close()
            raise NotAudio(f"{name}: {kind}", "give a file that contains sound")
        self.stream = self.container.streams.audio[0]
        # Decoding runs in ffmpeg's threads; the Python side only collects resampled frames.
        self.stream.thread_type = "AUTO"
        self.samples = 0

    @property
    def duration_estimate(self) -> float | None:
        """From the container's header; exact for wav, close for compressed formats."""
        if self.stream.duration is not None and self.stream.time_base is not None:
            return float(self.stream.duration * self.stream.time_base)
        if self.container.duration is not None:
            return self.container.duration / 1_000_000
        return None

    def blocks(self) -> Iterator[np.ndarray]:
        """Mono float32 16 kHz sample blocks, in order. Raises EmptyAudio if there are none."""
        import av

        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in self.container.decode(self.stream):
                for out in resampler.resample(frame):
                    yield from self._count(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                yield from self._count(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            if not self.samples:
                raise NotAudio(
                    f"{self.name}: audio could not be decoded ({_reason(exc)})",
                    "the file may be corrupt or truncated; re-encode or re-upload it",
                ) from None
            # A truncated tail (an interrupted upload) still yields the audio before it,
            # as ffmpeg itself does.
        if not self.samples:
            raise EmptyAudio(f"{self.name}: contains no audio samples", "the recording is empty")

    def _count(self, block: np.ndarray) -> Iterator[np.ndarray]:
        if block.size:
            self.samples += block.size
            yield np.ascontiguousarray(block, dtype=np.float32)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode(path: str | os.PathLike[str], label: str | None = None) -> np.ndarray:
    """The whole first audio track of `path` as mono float32 samples at 16 kHz.

    `label` names the file in error messages (the spool passes the name it was dropped as).
    """
    with AudioReader(path, label) as reader:
        blocks = list(reader.blocks())
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def chunks(
    blocks: Iterable[np.ndarray], target_s: float, search_s: float
) -> Iterator[tuple[int, np.ndarray]]:
    """Regroup sample blocks into (offset, chunk) pieces of about target_s seconds, each cut
    at the quietest half second within search_s of the target, so words are not split."""
    target, search = int(target_s * SAMPLE_RATE), int(search_s * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    size = offset = 0
    for block in blocks:
        pending.append(block)
        size += block.size
        while size >= target + search:
            buffer = np.concatenate(pending)
            cut = quietest_point(buffer, target - search, target + search)
            yield offset, buffer[:cut]
            offset += cut
            pending, size = [buffer[cut:]], buffer.size - cut
    if size:
        yield offset, np.concatenate(pending)


def quietest_point(audio: np.ndarray, lo: int, hi: int) -> int:
    """Index in [lo, hi) at the centre of the half second with the least energy."""
    frame = SAMPLE_RATE // 10
    window = 5  # frames: half a second
    region = audio[lo:hi]
    n = region.size // frame
    if n <= window:
        return (lo + hi) // 2
    energy = np.square(region[: n * frame].reshape(n, frame), dtype=np.float64).sum(axis=1)
    smooth = np.convolve(energy, np.ones(window), mode="valid")
    best = int(np.argmin(smooth))
    return lo + (best + window // 2) * frame + frame // 2


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() or type(exc).__name__

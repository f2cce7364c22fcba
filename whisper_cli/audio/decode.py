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
# Decoded frames are resampled in groups of this many input samples, as faster-whisper's
# loader does (the resampler's output must match its sample for sample).
GROUP_SAMPLES = 500_000

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
        """Mono float32 16 kHz sample blocks, in order. Raises EmptyAudio if there are none.

        The samples are exactly those of faster-whisper's own loader (`decode_audio`): decoded
        frames grouped GROUP_SAMPLES at a time, resampled by ffmpeg to 16-bit integers, then
        scaled by 1/32768. openai-whisper's loader also reads 16-bit integers from ffmpeg.
        Resampling straight to float gives samples that differ by up to 1.5e-5, and that is
        enough to send Whisper into a repetition loop on some recordings where the bare
        library transcribes correctly: wt must hear what the library hears.
        """
        import av

        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        try:
            for group in _grouped(self.container.decode(self.stream), GROUP_SAMPLES):
                for out in resampler.resample(group):
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
            # as ffmpeg and faster-whisper's loader do.
        if not self.samples:
            raise EmptyAudio(f"{self.name}: contains no audio samples", "the recording is empty")

    def _count(self, block: np.ndarray) -> Iterator[np.ndarray]:
        if block.size:
            self.samples += block.size
            yield block.astype(np.float32) / 32768.0

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_duration(path: str | os.PathLike[str]) -> float | None:
    """The length of a recording from its header, in seconds (None: the header does not say).
    Raises the errors AudioReader raises for a file that is not audio."""
    with AudioReader(path) as reader:
        return reader.duration_estimate


def decode(path: str | os.PathLike[str], label: str | None = None) -> np.ndarray:
    """The whole first audio track of `path` as mono float32 samples at 16 kHz.

    `label` names the file in error messages (the spool passes the name it was dropped as).
    """
    with AudioReader(path, label) as reader:
        blocks = list(reader.blocks())
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def _grouped(frames: Iterable, size: int) -> Iterator:
    """Decoded frames regrouped into frames of `size` samples (the last one shorter)."""
    import av

    fifo = av.AudioFifo()
    for frame in frames:
        frame.pts = None  # the fifo checks timestamps are contiguous; gaps are not our concern
        fifo.write(frame)
        if fifo.samples >= size:
            yield fifo.read()
    if fifo.samples:
        yield fifo.read()


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

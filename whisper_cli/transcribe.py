"""The one transcription path: file + options -> engine -> Transcript -> writers.

`wt transcribe` and the spool daemon's workers both call `transcribe_to_files`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from whisper_cli.audio import SAMPLE_RATE, decode
from whisper_cli.engines import ProgressFn, StopFn, load_engine
from whisper_cli.options import TranscribeOptions
from whisper_cli.result import Transcript, clamp_to_duration
from whisper_cli.writers import write_outputs


@dataclass(frozen=True)
class Outcome:
    transcript: Transcript
    outputs: list[Path]
    decode_seconds: float
    transcribe_seconds: float


def transcribe_file(
    path: Path,
    options: TranscribeOptions,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    label: str | None = None,
) -> tuple[Transcript, float, float]:
    engine = load_engine(options)  # first: a missing model fails before any decoding work
    started = time.perf_counter()
    audio = decode(path, label)
    decoded = time.perf_counter()
    if on_progress:
        on_progress(0.0, len(audio) / SAMPLE_RATE)
    transcript = clamp_to_duration(engine.transcribe(audio, options, on_progress, should_stop))
    del audio
    return transcript, decoded - started, time.perf_counter() - decoded


def transcribe_to_files(
    path: Path,
    options: TranscribeOptions,
    out_dir: Path,
    stem: str,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    label: str | None = None,
) -> Outcome:
    transcript, t_decode, t_run = transcribe_file(path, options, on_progress, should_stop, label)
    transcript = replace(transcript, extra={**transcript.extra, "input": label or path.name})
    outputs = write_outputs(transcript, out_dir, stem, options.output_formats)
    return Outcome(transcript, outputs, t_decode, t_run)

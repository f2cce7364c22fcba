"""What every engine is: the Engine protocol, and the Transcript it stamps with itself.
Imported by the engines and by the cache in engines/__init__.py, which loads them."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from whisper_cli.engines.callbacks import ProgressFn, SegmentFn, StopFn
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.output.result import Segment, Transcript, join_text


class Engine(Protocol):
    name: str
    model_name: str
    device: str
    compute_type: str

    def transcribe(
        self,
        audio: np.ndarray,
        options: TranscribeOptions,
        on_progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        on_segment: SegmentFn | None = None,
    ) -> Transcript: ...


def engine_transcript(
    engine: Engine,
    segments: tuple[Segment, ...] | list[Segment],
    language: str,
    probability: float,
    duration: float,
    task: str,
) -> Transcript:
    """A Transcript stamped with the engine, model, device and precision that made it."""
    return Transcript(
        text=join_text(segments),
        language=language,
        language_probability=round(float(probability), 4),
        duration=round(duration, 3),
        segments=tuple(segments),
        engine=engine.name,
        model=engine.model_name,
        device=engine.device,
        compute_type=engine.compute_type,
        task=task,
    )

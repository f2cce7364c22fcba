"""Packed windows decoded side by side in one batched call, each segment kept to its clip.

A packed window (engines/packing.py) holds several jobs' clips with silence between them.
Decoded in a batch, there is no next window to carry on from, and two things go wrong that
the sequential loop hides: the model sometimes jumps over a clip or stops before the last
one, and word timings (aligned over the whole window's text) then drift across the gap:
measured on 24 real clips, words of one job ended in another's text ("God bless" of one
recording in the next clip's transcript). Word timings cannot be trusted to say which clip
a word is from; the model's own timestamp tokens can: a segment Whisper writes starts and
ends where it heard it. So each segment is pinned to the clip its timestamps overlap most
and its words are kept inside that clip. Only a segment the model itself ran across two
clips is split between them by word timings. Speech the model jumped over is found
afterwards (FasterWhisperEngine: unheard speech) and decoded again.
"""

from __future__ import annotations

from math import ceil
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline
from faster_whisper.tokenizer import Tokenizer

from whisper_cli.engines.batched import align_words, segment_record
from whisper_cli.engines.packing import SAMPLE_RATE, WINDOW_STRIDE_SECONDS, Window

SHARED_SECONDS = 0.3  # a segment over two clips by this much in each was heard across both


def strip_of(windows: list[Window]) -> np.ndarray:
    """The windows WINDOW_STRIDE_SECONDS apart in one strip of audio."""
    stride = int(WINDOW_STRIDE_SECONDS * SAMPLE_RATE)
    strip = np.zeros(stride * len(windows), np.float32)
    for j, window in enumerate(windows):
        strip[j * stride : j * stride + window.audio.size] = window.audio
    return strip


def clip_timestamps(windows: list[Window]) -> list[dict[str, float]]:
    return [
        {
            "start": j * WINDOW_STRIDE_SECONDS,
            "end": j * WINDOW_STRIDE_SECONDS + w.audio.size / SAMPLE_RATE,
        }
        for j, w in enumerate(windows)
    ]


def overlap(a: float, b: float, span: tuple[float, float]) -> float:
    return min(b, span[1]) - max(a, span[0])


def across_clips(heard: tuple[float, float], spans: list[tuple[float, float]]) -> bool:
    """Whether the model heard a segment over two clips (SHARED_SECONDS in each)."""
    ranked = sorted((overlap(*heard, s) for s in spans), reverse=True)
    return len(ranked) > 1 and ranked[1] >= SHARED_SECONDS


def pin(segment: dict[str, Any], heard: tuple[float, float], spans: list[tuple[float, float]]):
    """Keeps a segment and its words inside the clip the model heard it in (`heard`: its
    timestamps, in the strip), unless the model heard it across two clips."""
    if across_clips(heard, spans):
        return  # split between the clips by word timings (packing.split)
    lo, hi = max(spans, key=lambda s: overlap(*heard, s))
    words = segment.get("words") or []
    for word in words:
        word["start"] = min(max(word["start"], lo), hi)
        word["end"] = min(max(word["end"], word["start"]), hi)
    segment["start"] = words[0]["start"] if words else min(max(segment["start"], lo), hi)
    segment["end"] = words[-1]["end"] if words else min(max(segment["end"], lo), hi)


class PackedWindowPipeline(BatchedInferencePipeline):
    """faster-whisper's batched pipeline over a strip of packed windows (strip_of), with
    timestamps; segments pinned to their clips (see the module). Word timings are computed
    when a job asks for them (`words`) or a segment was heard across two clips and must be
    cut by them; otherwise they are skipped (about a tenth of a pack's time on CPU) and
    segments carry no words."""

    def __init__(self, model: Any, windows: list[Window], words: bool) -> None:
        super().__init__(model)
        self.windows = windows
        self.words = words

    def forward(self, features, tokenizer: Tokenizer, chunks_metadata, options):
        encoder_output, outputs = self.generate_segment_batched(features, tokenizer, options)
        fps = self.model.frames_per_second
        found, sizes, heard, spans = [], [], [], []
        for chunk, output in zip(chunks_metadata, outputs, strict=True):
            size = int(ceil(chunk["duration"]) * fps)
            sizes.append(size)
            pieces, _, _ = self.model._split_segments_by_timestamps(
                tokenizer=tokenizer,
                tokens=output["tokens"],
                time_offset=chunk["offset"],
                segment_size=size,
                segment_duration=chunk["duration"],
                seek=0,
            )
            seek = int(chunk["offset"] * fps)
            found.append(
                [
                    {
                        **segment_record(
                            tokenizer.decode(piece["tokens"]),
                            output,
                            piece["tokens"],
                            piece["start"],
                            piece["end"],
                        ),
                        "seek": seek,
                        "words": [],
                    }
                    for piece in pieces
                ]
            )
            # The model's timestamps, before word timings move the segment's ends.
            heard.append([(piece["start"], piece["end"]) for piece in pieces])
            j = round(chunk["offset"] / WINDOW_STRIDE_SECONDS)
            offset = j * WINDOW_STRIDE_SECONDS
            spans.append([(offset + a, offset + b) for a, b in self.windows[j].spans])
        straddling = any(
            across_clips(times, clips)
            for segments_heard, clips in zip(heard, spans, strict=True)
            for times in segments_heard
        )
        if self.words or straddling:
            align_words(self, found, tokenizer, encoder_output, sizes, options)
        for segments, times, clips in zip(found, heard, spans, strict=True):
            for segment, times_heard in zip(segments, times, strict=True):
                pin(segment, times_heard, clips)
        return found

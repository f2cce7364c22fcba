"""Batched decoding that keeps every window's text whole.

faster-whisper's BatchedInferencePipeline cuts the audio at VAD pauses into windows of up to
30 s and decodes them side by side. Asked for timestamps, the model often ends a window early:
it opens the segment that would run to the window's end (`<|22.72|><|22.72|>`) and stops, as
it learned to do when a sentence crosses a window boundary. Whisper's sequential loop starts
the next window at that timestamp, so nothing is lost there; a batched window has no next
window, and its last sentence is gone (measured on LibriVox chapters: 6-10% of the words;
SYSTRAN/faster-whisper#1427). Keeping the unfinished tail does not help: the tail was never
decoded.

So each window is decoded without timestamps, which reads it to the end, and its segments are
cut afterwards from word timings (one alignment pass over the window's encoder output, in the
same batch): at sentence ends, at pauses, and at a clause or a hard limit when a sentence runs
long, so subtitles, diarization and live text get segments as fine as Whisper's own.
"""

from __future__ import annotations

from math import ceil
from typing import Any

from faster_whisper import BatchedInferencePipeline
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio

SENTENCE_ENDS = (".", "?", "!", "…", "。", "？", "！")
CLAUSE_ENDS = (",", ";", ":", "、", "，")
PAUSE_SECONDS = 0.8  # a silence this long between two words ends a segment
CLAUSE_AFTER_SECONDS = 6.0  # a segment this long ends at its next clause mark
MAX_SEGMENT_SECONDS = 12.0  # and is cut before a word that would make it longer


def _ends_with(word: str, marks: tuple[str, ...]) -> bool:
    return word.rstrip("\"')]»”’ ").endswith(marks)


def phrase_groups(words: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Words (dicts with word, start, end) grouped into segments, in order, none left out."""
    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for word in words:
        if current and (
            word["start"] - current[-1]["end"] >= PAUSE_SECONDS
            or word["end"] - current[0]["start"] > MAX_SEGMENT_SECONDS
        ):
            groups.append(current)
            current = []
        current.append(word)
        long_enough = word["end"] - current[0]["start"] >= CLAUSE_AFTER_SECONDS
        if _ends_with(word["word"], SENTENCE_ENDS) or (
            long_enough and _ends_with(word["word"], CLAUSE_ENDS)
        ):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def split_window(window: dict[str, Any], tokenizer: Tokenizer) -> list[dict[str, Any]]:
    """A window decoded as one segment, with its words, cut into phrase segments."""
    words = window.get("words") or []
    if len(words) < 2:
        return [window]
    segments = []
    for group in phrase_groups(words):
        text = "".join(w["word"] for w in group)
        segments.append(
            {
                **window,
                "text": text,
                "tokens": tokenizer.encode(text),
                "start": group[0]["start"],
                "end": group[-1]["end"],
                "words": group,
            }
        )
    return segments


def segment_record(
    text: str, output: dict[str, Any], tokens: list[int], start: float, end: float
) -> dict[str, Any]:
    """A segment as faster-whisper's batched pipeline keeps it, before word timings."""
    return {
        "text": text,
        "avg_logprob": output["avg_logprob"],
        "no_speech_prob": output["no_speech_prob"],
        "tokens": tokens,
        "start": start,
        "end": end,
        "compression_ratio": get_compression_ratio(text),
    }


def align_words(
    pipeline: BatchedInferencePipeline, windows, tokenizer, encoder_output, sizes, options
):
    """Word timings for the segments of a batch of windows, in place."""
    pipeline.last_speech_timestamp = pipeline.model.add_word_timestamps(
        windows,
        tokenizer,
        encoder_output,
        sizes,
        options.prepend_punctuations,
        options.append_punctuations,
        pipeline.last_speech_timestamp,
    )


class WholeWindowPipeline(BatchedInferencePipeline):
    """faster-whisper's batched pipeline, each window decoded to its end (see the module).
    Call transcribe with without_timestamps=True and word_timestamps=True."""

    def forward(self, features, tokenizer: Tokenizer, chunks_metadata, options):
        if not (options.without_timestamps and options.word_timestamps):
            raise ValueError("WholeWindowPipeline decodes without timestamps, with word timings")
        encoder_output, outputs = self.generate_segment_batched(features, tokenizer, options)
        fps = self.model.frames_per_second
        windows, sizes = [], []
        for chunk, output in zip(chunks_metadata, outputs, strict=True):
            sizes.append(int(ceil(chunk["duration"]) * fps))
            text = tokenizer.decode(output["tokens"])
            start = chunk["offset"]
            record = segment_record(
                text, output, output["tokens"], start, start + chunk["duration"]
            )
            windows.append([{**record, "seek": int(start * fps)}])
        align_words(self, windows, tokenizer, encoder_output, sizes, options)
        return [split_window(window[0], tokenizer) for window in windows]

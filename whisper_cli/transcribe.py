"""The one transcription path: file + options -> engine -> Transcript -> writers.

`wt transcribe` and the spool daemon's workers both call `transcribe_to_files`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from whisper_cli.audio.decode import SAMPLE_RATE, AudioReader, chunks
from whisper_cli.audio.guards import SilenceGuard
from whisper_cli.audio.vad import speech_clips
from whisper_cli.engines import load_engine
from whisper_cli.engines.base import engine_transcript
from whisper_cli.engines.callbacks import ProgressFn, SegmentFn, StopFn
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.output.result import Segment, Transcript, clamp_to_duration, in_time_order
from whisper_cli.output.writers import renderers_for, write_outputs
from whisper_cli.speakers.diarize import SpeakerTrack, assign_speakers
from whisper_cli.speakers.encoder import load_encoder
from whisper_cli.speakers.known import resolve as resolve_speakers

# Long recordings go to the engine in pieces of about this length, cut in a pause found
# within CHUNK_SEARCH_SECONDS of the target.
CHUNK_SECONDS = 180.0
CHUNK_SEARCH_SECONDS = 15.0
CARRY_MIN_SECONDS = 1.0  # an unread tail this long, in which VAD hears speech, goes round again
CARRY_MAX_SECONDS = 30.0
BATCH_WINDOW_SECONDS = 30.0  # per window of a batch, a piece holds this much audio at least


@dataclass(frozen=True)
class Outcome:
    transcript: Transcript
    outputs: list[Path]
    decode_seconds: float
    transcribe_seconds: float
    diarize_seconds: float = 0.0
    rendered: str | None = None  # the one format, when written to a stream instead of files


def transcribe_file(
    path: Path,
    options: TranscribeOptions,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    label: str | None = None,
    on_segment: SegmentFn | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[Transcript, float, float]:
    """Transcribe one file. Returns (transcript, seconds decoding, seconds in the engine).

    Audio is decoded block by block and handed to the engine in pieces of about
    CHUNK_SECONDS, cut in pauses: memory stays flat however long the recording is (both
    engines otherwise build features for the whole file at once: 3.6 GB for an hour). The
    language found in the first piece is kept for the rest. With diarization, each piece's
    voice embeddings are taken as it goes, and speakers are assigned at the end.
    """
    engine = load_engine(options)  # first: a missing model fails before any decoding work
    track = SpeakerTrack(load_encoder(engine.device), should_stop) if options.diarize else None
    # Known voices next: a bad reference clip fails before the recording is decoded.
    known = resolve_speakers(options.speakers, should_stop=should_stop) if track else ()
    # Speakers and subtitle layout go by words: the engine keeps them (the json gets them
    # only when asked for).
    words_needed = options.diarize or options.layout is not None
    options_for_engine = replace(options, word_timestamps=True) if words_needed else options
    diarize_s = 0.0
    decode_s = engine_s = 0.0
    segments: list[Segment] = []
    language, probability = options.language, 1.0
    with AudioReader(path, label) as reader:
        total = reader.duration_estimate or 0.0
        if on_progress:
            on_progress(0.0, total)
        blocks = _timed(reader.blocks())
        carry = np.zeros(0, np.float32)
        batch = options.decoding_batch(reader.duration_estimate)
        options_for_engine = replace(options_for_engine, batch_size=batch)
        # A batch of N windows needs at least N windows of audio in one piece to fill it.
        piece_seconds = max(CHUNK_SECONDS, BATCH_WINDOW_SECONDS * batch)
        pieces = chunks(blocks, piece_seconds, CHUNK_SEARCH_SECONDS)
        for offset, piece in pieces:
            if track is not None:
                t0 = time.perf_counter()
                track.add(piece, offset / SAMPLE_RATE)
                diarize_s += time.perf_counter() - t0
            if carry.size and speech_clips(carry):
                offset, piece = offset - carry.size, np.concatenate([carry, piece])
            start = offset / SAMPLE_RATE
            end = start + piece.size / SAMPLE_RATE

            def progress(done: float, _dur: float, start: float = start, end: float = end):
                if on_progress:
                    on_progress(start + done, max(total, end))

            piece_options = options_for_engine
            if offset:
                # The user's prompt primes the first window only, as in Whisper. Priming a
                # piece with the text before it was tried and measured worse: faster-whisper
                # then emits few timestamps and long segments (WER 0.13 -> 0.41, tiny.en).
                piece_options = replace(piece_options, language=language, initial_prompt=None)
            collect = _Collector(
                SilenceGuard(piece) if options.silence_guard else None,
                start,
                len(segments),
                on_segment,
            )
            t0 = time.perf_counter()
            part = engine.transcribe(piece, piece_options, progress, should_stop, collect)
            found = in_time_order(collect.found)  # missed speech is decoded after the rest
            engine_s += time.perf_counter() - t0
            if not offset:
                language, probability = part.language, part.language_probability
            segments += [_shift(s, start, len(segments) + i) for i, s in enumerate(found)]
            # Whisper sometimes gives up on the short last window of a piece (judged no
            # speech after a failed fallback) where, mid-file, it would have gone on. The
            # audio after the piece's last segment is put in front of the next piece, as
            # Whisper's own seek resumes at the last timestamp, but only when VAD hears speech
            # in it (silence goes round again only to invite invented text). After the last
            # piece nothing is decoded again: the end of the file is the engine's own call,
            # as in the bare library, and audio already transcribed is never read twice.
            last = max((s.end for s in found), default=0.0)  # a re-decoded gap comes last
            read_to = int(min(last, end - start) * SAMPLE_RATE)
            tail = piece[read_to:]
            carry = (
                tail[-int(CARRY_MAX_SECONDS * SAMPLE_RATE) :]
                if tail.size >= CARRY_MIN_SECONDS * SAMPLE_RATE
                else carry[:0]
            )
            del piece
        decode_s = blocks.seconds
        duration = reader.samples / SAMPLE_RATE
    if on_progress:
        on_progress(duration, duration)
    transcript = clamp_to_duration(
        engine_transcript(engine, segments, language or "", probability, duration, options.task)
    )
    if track is not None:
        t0 = time.perf_counter()
        found = track.speakers(
            options.num_speakers, options.min_speakers, options.max_speakers, known
        )
        transcript = assign_speakers(
            transcript,
            found.turns,
            keep_words=options.word_timestamps or options.layout is not None,
            known=found.names,
            voices=found.known,
        )
        diarize_s += time.perf_counter() - t0
    if timings is not None:
        timings["diarize"] = diarize_s
    return transcript, decode_s, engine_s


class _Collector:
    """A piece's segments as the engine decodes them, less those the silence guard drops;
    each kept one also goes on, in file time, to a live listener."""

    def __init__(
        self, guard: SilenceGuard | None, start: float, first_id: int, listener: SegmentFn | None
    ) -> None:
        self.guard, self.start, self.first_id, self.listener = guard, start, first_id, listener
        self.found: list[Segment] = []

    def __call__(self, segment: Segment) -> None:
        if self.guard is not None and not self.guard.keep(segment):
            return
        self.found.append(segment)
        if self.listener:
            self.listener(_shift(segment, self.start, self.first_id + len(self.found) - 1))


class _timed:
    """Wraps the block iterator to count the time spent decoding."""

    def __init__(self, it: Iterator[np.ndarray]) -> None:
        self.it, self.seconds = it, 0.0

    def __iter__(self) -> _timed:
        return self

    def __next__(self) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return next(self.it)
        finally:
            self.seconds += time.perf_counter() - t0


def _shift(s: Segment, offset: float, new_id: int) -> Segment:
    if not offset:
        return replace(s, id=new_id)
    words = (
        tuple(
            replace(w, start=round(w.start + offset, 3), end=round(w.end + offset, 3))
            for w in s.words
        )
        if s.words is not None
        else None
    )
    return replace(
        s,
        id=new_id,
        start=round(s.start + offset, 3),
        end=round(s.end + offset, 3),
        words=words,
        seek=s.seek + round(offset * 100),
    )


def transcribe_to_files(
    path: Path,
    options: TranscribeOptions,
    out_dir: Path | None,
    stem: str,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    label: str | None = None,
    on_segment: SegmentFn | None = None,
) -> Outcome:
    timings: dict[str, float] = {}
    transcript, t_decode, t_run = transcribe_file(
        path, options, on_progress, should_stop, label, on_segment, timings
    )
    transcript = replace(transcript, extra={**transcript.extra, "input": label or path.name})
    diarize_s = timings.get("diarize", 0.0)
    renderers = renderers_for(options.layout, options.word_timestamps)
    if out_dir is None:  # for a pipe: the one format asked for, as text
        rendered = renderers[options.output_formats[0]](transcript)
        return Outcome(transcript, [], t_decode, t_run, diarize_s, rendered)
    outputs = write_outputs(transcript, out_dir, stem, options.formats(), renderers)
    return Outcome(transcript, outputs, t_decode, t_run, diarize_s)

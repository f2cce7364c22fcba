"""faster-whisper (CTranslate2) engine."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TypeVar

import numpy as np

from whisper_cli.audio.vad import speech_clips
from whisper_cli.engines import packing
from whisper_cli.engines.base import engine_transcript
from whisper_cli.engines.callbacks import ProgressFn, SegmentFn, StopFn
from whisper_cli.errors import Canceled, ModelUnavailable
from whisper_cli.hardware import cuda_available, usable_cores
from whisper_cli.models import weights
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.output.result import Segment, Transcript, Word, in_time_order, starting_after

T = TypeVar("T")


def load_pip_cublas() -> None:
    """Make cuBLAS 12 from the nvidia-cublas-cu12 wheel (`install.sh --gpu`) visible to
    CTranslate2, which dlopens libcublas.so.12 by name: the wheel's folder is on no search
    path, and a library already loaded under that name is the one dlopen returns."""
    try:
        import ctypes

        import nvidia.cublas

        lib = os.path.join(list(nvidia.cublas.__path__)[0], "lib", "libcublas.so.12")
        if os.path.exists(lib):
            ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    except (ImportError, OSError):
        pass  # no wheel (a system CUDA, or a CPU host): CTranslate2 looks where it always does


def off_the_main_thread(build: Callable[[], T]) -> T:
    """Build on a short-lived thread and return the result (or raise its error).

    A CTranslate2 model built on the process's main thread decodes 2.4x slower on CPU than
    the same model built on any other thread (measured with ctranslate2 4.8.5 on 2 AMD
    cores: base int8, beam 5, one window: generate 0.34 s vs 0.14 s; the encoder is the
    same; OMP_NUM_THREADS and OMP_WAIT_POLICY change nothing). Why is not known here; the
    short-file benchmark and bench/spool_throughput.py show the difference end to end.
    """
    if threading.current_thread() is not threading.main_thread():
        return build()
    with ThreadPoolExecutor(1, thread_name_prefix="wt-model-load") as pool:
        return pool.submit(build).result()  # its error, if any, is raised here


class FasterWhisperEngine:
    name = "faster"

    def __init__(
        self, model: str, device: str, compute_type: str, threads: int, replicas: int = 1
    ) -> None:
        from whisper_cli.engines.one_pass import OnePassWhisperModel

        self.model_name = model
        if device != "cpu":
            load_pip_cublas()
        self.device = ("cuda" if cuda_available() else "cpu") if device == "auto" else device
        if compute_type in ("default", "auto"):
            compute_type = "float16" if self.device == "cuda" else "int8"
        self.compute_type = compute_type
        self._pipeline = None
        source = weights.resolve_ct2(model)
        if self.device != "cpu":
            replicas = 1  # a GPU batches within one replica
        else:
            # As many threads as usable cores, said explicitly: CTranslate2's "0" means 4
            # unless it caps them, and 4 on 2 cores is 3.5x slower to decode (beam 5:
            # 0.13 s a window with 2, 0.38-0.44 s with 4); replicas share the cores out.
            threads = max(1, (threads or usable_cores()) // replicas)
        try:
            self.model = off_the_main_thread(
                lambda: OnePassWhisperModel(
                    source,
                    device=self.device,
                    compute_type=compute_type,
                    cpu_threads=threads,
                    num_workers=replicas,
                    download_root=str(weights.cache_dir() / "hub"),
                )
            )
        except (ValueError, RuntimeError) as exc:
            if "compute type" in str(exc) or "CUDA" in str(exc) or "cuda" in str(exc):
                raise ModelUnavailable(
                    f"model {model}: cannot run on {self.device} with {compute_type} ({exc})",
                    "choose another --device or --compute-type",
                ) from None
            raise ModelUnavailable(
                f"model {model}: failed to load ({exc})", "check the model directory is complete"
            ) from None
        except Exception as exc:  # the hub client raises many types when offline
            if source == model and not weights.is_ct2_dir(weights.Path(source)):
                raise weights.offline_error(model, self.name, exc) from None
            raise

        from whisper_cli.engines.batching import BatchingWhisper

        # Jobs run side by side in a worker share their decoding calls
        # (whisper_cli.engines.batching).
        sot = self.model.hf_tokenizer.token_to_id("<|startoftranscript|>")
        self.model.model = BatchingWhisper(self.model.model, sot)

    def _batched(self):
        if self._pipeline is None:
            from whisper_cli.engines.batched import WholeWindowPipeline

            self._pipeline = WholeWindowPipeline(self.model)
        return self._pipeline

    def transcribe(
        self,
        audio: np.ndarray,
        options: TranscribeOptions,
        on_progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        on_segment: SegmentFn | None = None,
    ) -> Transcript:
        duration = len(audio) / 16000
        multilingual = self.model.model.is_multilingual
        language = options.language
        if not multilingual and language not in (None, "en"):
            raise ModelUnavailable(
                f"model {self.model_name} is English-only; it cannot {options.task} {language}",
                "use a multilingual model such as base",
            )
        from whisper_cli.engines.batching import current

        gatherer = current()
        if gatherer and gatherer.pack and packing.packable(duration, options, multilingual):
            return self._packed(gatherer, audio, options, on_progress, on_segment)
        common = dict(
            language=language if multilingual else "en",
            task=options.task,
            beam_size=options.beam_size,
            best_of=options.beam_size,
            initial_prompt=options.initial_prompt,
            hotwords=options.hotwords or None,
            word_timestamps=options.needs_word_timings,
        )
        if options.batch_size > 1:
            # The batched pipeline needs VAD to cut the audio into windows it can decode side
            # by side; it decodes each once (first temperature only), to its end, and cuts
            # segments from word timings (whisper_cli/engines/batched.py).
            segments_iter, info = self._batched().transcribe(
                audio,
                **{**common, "word_timestamps": True},
                temperature=options.temperature,
                vad_filter=True,
                without_timestamps=True,
                batch_size=options.batch_size,
            )
        else:
            clips: list[float] | str = speech_clips(audio) if options.vad else "0"
            if clips == []:  # VAD found no speech at all
                return engine_transcript(
                    self,
                    [],
                    language or ("" if multilingual else "en"),
                    1.0 if options.language else 0.0,
                    duration,
                    options.task,
                )
            if common["language"] is None:
                first = (0.0, None) if clips == "0" else (clips[0], clips[1])
                self.model.first_window_is(*first)
            segments_iter, info = self.model.transcribe(
                audio,
                **common,
                temperature=list(options.temperatures()),
                clip_timestamps=clips,
                condition_on_previous_text=options.condition_on_previous_text,
                hallucination_silence_threshold=options.hallucination_silence_threshold,
            )
        segments: list[Segment] = []
        reached = [0.0]  # progress only rises: speech decoded again comes after later windows

        def take(found) -> None:
            for seg in found:  # decoding happens lazily, window by window, in this loop
                segments.append(_segment(seg, len(segments), options.word_timestamps))
                if options.batch_size > 1 and len(segments) > 1:
                    segments[-1] = starting_after(segments[-2].end, segments[-1])
                if on_segment:
                    on_segment(segments[-1])
                reached[0] = max(reached[0], min(float(seg.end), duration))
                if on_progress:
                    on_progress(reached[0], duration)
                if should_stop and should_stop():
                    raise Canceled("transcription canceled")

        take(segments_iter)
        gaps = unheard_speech(audio, segments) if options.batch_size > 1 else []
        if gaps:
            # A batched window has no next window: when the model ends one early (seen with
            # tiny.en at a change of voice, and in meetings: EOT before the last sentence),
            # the speech no segment covers is decoded again, all of it in one more batch.
            found, _ = self._batched().transcribe(
                audio,
                **{
                    **common,
                    "language": common["language"] or info.language,
                    "word_timestamps": True,
                },
                temperature=options.temperature,
                clip_timestamps=[{"start": a, "end": min(b, a + 30.0)} for a, b in gaps],
                without_timestamps=True,
                batch_size=options.batch_size,
            )
            take(found)
            segments[:] = in_time_order(segments)
        if on_progress:
            on_progress(duration, duration)
        return engine_transcript(
            self, segments, info.language, info.language_probability, duration, options.task
        )

    def _packed(self, gatherer, audio, options, on_progress, on_segment) -> Transcript:
        """A short clip decoded in one window with other jobs' clips (engines/packing.py);
        a canceled job leaves the pack before it runs, as any gathered call does."""
        duration = len(audio) / 16000
        key = ("pack", id(self), packing.decoding_key(options))
        segments = gatherer.submit(key, (audio, options), self._transcribe_packed)
        if not options.word_timestamps:
            segments = [replace(s, words=None) for s in segments]
        for seg in segments:
            if on_segment:
                on_segment(seg)
        if on_progress:
            on_progress(duration, duration)
        language = options.language or "en"
        return engine_transcript(self, segments, language, 1.0, duration, options.task)

    def _transcribe_packed(self, calls: list[tuple[np.ndarray, TranscribeOptions]]):
        clips = [audio for audio, _ in calls]
        # Jobs of one pack share decoding settings (packing.decoding_key), not outputs: word
        # timings are computed when any of them needs them.
        words = any(o.needs_word_timings for _, o in calls)
        options = replace(calls[0][1], word_timestamps=words)
        out = self._decode_packed(clips, options)
        # VAD only where segments leave a stretch long enough to count (most clips: none).
        phrases = [
            speech_phrases(clip) if uncovered(clip, out[k]) else [] for k, clip in enumerate(clips)
        ]

        def unheard(k: int, segments: list[Segment]) -> float:
            return sum(b - a for a, b in unheard_speech(clips[k], segments, phrases[k]))

        # A clip with speech no segment covers (the model stopped before the last clip of a
        # window, or jumped over one that repeats what it has just heard) is decoded again
        # whole, packed with the other such clips; the decoding that leaves less speech
        # unheard is kept. Whole, because short stretches packed together read as one
        # sentence to the model and their words run into each other (measured on a chapter
        # cut into 41 clips: WER 0.080 against 0.069). What is still unheard (the model
        # may end a window at a change of voice, packed or not) is decoded stretch by
        # stretch, each in a window of its own.
        again = [k for k in range(len(clips)) if unheard(k, out[k])]
        if again:
            found = self._decode_packed([clips[k] for k in again], options)
            for k, segments in zip(again, found, strict=True):
                if unheard(k, segments) <= unheard(k, out[k]):
                    out[k] = segments
        stretches = [
            (k, a, clips[k][int(a * packing.SAMPLE_RATE) : int(b * packing.SAMPLE_RATE)])
            for k in again
            for a, b in unheard_speech(clips[k], out[k], phrases[k])
        ]
        if stretches:
            found = self._decode_packed([audio for _, _, audio in stretches], options, 1)
            for (k, offset, _), segments in zip(stretches, found, strict=True):
                out[k] = in_time_order(out[k] + [packing.later(s, offset) for s in segments])
        return out

    def _decode_packed(
        self, clips: list[np.ndarray], options: TranscribeOptions, per_window: int = 0
    ):
        out: list[list[Segment]] = [[] for _ in clips]
        # The same clips pack the same way whatever order their jobs arrived in: a clip's
        # text can depend on its neighbours, and a result must not depend on timing.
        order = sorted(range(len(clips)), key=lambda i: packing.fingerprint(clips[i]))
        windows = [
            replace(w, members=tuple(order[m] for m in w.members))
            for w in packing.pack([clips[i] for i in order], per_window)
        ]
        # The windows decoded in batched calls, one per model replica, side by side (a
        # batching worker on CPU has two one-thread replicas); off the gatherer: a pool
        # thread is no member, its calls go straight to the model.
        replicas = max(1, getattr(self.model.model, "num_workers", 1))
        size = -(-len(windows) // min(replicas, len(windows)))
        batches = [windows[i : i + size] for i in range(0, len(windows), size)]
        with ThreadPoolExecutor(len(batches)) as pool:
            decoded = [
                found
                for founds in pool.map(lambda b: self._decode_windows(b, options), batches)
                for found in founds
            ]
        for window, found in zip(windows, decoded, strict=True):
            for k, own in zip(window.members, packing.split(found, window, True)):
                out[k] = own
        return out

    def _decode_windows(
        self, windows: list[packing.Window], options: TranscribeOptions
    ) -> list[list[Segment]]:
        """Packed windows in one batched call (engines/packed.py); each window's segments
        in its own time."""
        from whisper_cli.engines.packed import PackedWindowPipeline, clip_timestamps, strip_of

        found, _ = PackedWindowPipeline(self.model, windows, options.word_timestamps).transcribe(
            strip_of(windows),
            language=options.language or "en",
            task=options.task,
            beam_size=options.beam_size,
            best_of=options.beam_size,
            initial_prompt=options.initial_prompt,
            hotwords=options.hotwords or None,
            temperature=options.temperature,
            clip_timestamps=clip_timestamps(windows),
            without_timestamps=False,
            word_timestamps=True,
            batch_size=len(windows),
        )
        stride = packing.WINDOW_STRIDE_SECONDS
        out: list[list[Segment]] = [[] for _ in windows]
        for seg in found:
            j = min(int(float(seg.start) // stride), len(windows) - 1)
            out[j].append(packing.later(_segment(seg, len(out[j]), True), -j * stride))
        return out


UNHEARD_MIN_SECONDS = 1.0  # speech this long after the words around it is decoded again


def speech_phrases(audio: np.ndarray) -> list[tuple[float, float]]:
    """Speech as Silero VAD hears it at the scale of phrases, in seconds (pauses of 0.3 s
    split it; the default 2 s would count the pauses between sentences as speech, and
    decoding a pause again invents text)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    regions = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=300))
    return [(r["start"] / 16000, r["end"] / 16000) for r in regions]


def uncovered(audio: np.ndarray, segments: list[Segment]) -> bool:
    """Whether segments leave UNHEARD_MIN_SECONDS or more of the audio uncovered anywhere:
    only then can unheard_speech find anything, so only then is VAD worth running."""
    at = 0.0
    for s in sorted(segments, key=lambda s: s.start):
        if s.start - at >= UNHEARD_MIN_SECONDS:
            return True
        at = max(at, s.end)
    return audio.size / 16000 - at >= UNHEARD_MIN_SECONDS


def unheard_speech(
    audio: np.ndarray,
    segments: list[Segment],
    phrases: list[tuple[float, float]] | None = None,
) -> list[tuple[float, float]]:
    """Stretches of speech (speech_phrases, computed unless given) of at least
    UNHEARD_MIN_SECONDS that no segment covers, in seconds."""
    covered = sorted((s.start, s.end) for s in segments)
    out = []
    for start, end in speech_phrases(audio) if phrases is None else phrases:
        at = start
        for a, b in covered:
            if b <= at or a >= end:
                continue
            if a - at >= UNHEARD_MIN_SECONDS:
                out.append((at, a))
            at = max(at, b)
        if end - at >= UNHEARD_MIN_SECONDS:
            out.append((at, end))
    return out


def _segment(seg, index: int, keep_words: bool) -> Segment:
    """faster-whisper's segment as wt's record."""
    return Segment(
        id=index,
        # Word-timed segments come as numpy floats: plain floats for JSON.
        start=round(float(seg.start), 3),
        end=round(float(seg.end), 3),
        text=seg.text,
        avg_logprob=seg.avg_logprob,
        no_speech_prob=seg.no_speech_prob,
        compression_ratio=seg.compression_ratio,
        temperature=seg.temperature,
        seek=int(seg.seek),
        tokens=tuple(seg.tokens),
        words=tuple(
            Word(round(float(w.start), 3), round(float(w.end), 3), w.word, float(w.probability))
            for w in seg.words
        )
        if seg.words is not None and keep_words
        else None,
    )

"""openai-whisper (PyTorch) engine.

openai-whisper has no progress callback: it advances a tqdm bar once per 30 s window. We
watch that bar (by swapping the `tqdm` module name inside `whisper.transcribe`) to report
progress, and cancel cooperatively by raising from its update. Stopping mid-window is the
daemon's job (it stops the worker process).
"""

from __future__ import annotations

import importlib
import threading
import types
from pathlib import Path

import numpy as np

from whisper_cli.audio.vad import speech_clips
from whisper_cli.engines.base import engine_transcript
from whisper_cli.engines.callbacks import ProgressFn, SegmentFn, StopFn
from whisper_cli.errors import Canceled, EngineUnavailable, InvalidOptions, ModelUnavailable
from whisper_cli.models import weights
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.output.result import Segment, Transcript, Word

FRAMES_PER_SECOND = 100  # openai-whisper's mel frames (hop 160 at 16 kHz)
_patch_lock = threading.Lock()


def resolve_checkpoint(name: str) -> str:
    """A .pt path for whisper.load_model: local checkpoints as they are, CT2 models converted."""
    from whisper_cli.models.convert import cached_conversion

    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".pt":
        return str(path)
    if weights.is_ct2_dir(path):
        return str(cached_conversion(path, weights.cache_dir() / "openai", str(path)))
    bundled = weights.BUNDLED.get(name)
    if bundled is not None and bundled.installed():
        src = weights.materialize(bundled)
        return str(cached_conversion(src, weights.cache_dir() / "openai", name))
    if path.exists():
        raise weights.unknown_model(name)
    return name  # a standard name: openai-whisper downloads it


class _ProgressBar:
    """Stands in for tqdm.tqdm inside whisper.transcribe."""

    def __init__(self, owner: OpenAIWhisperEngine, total: int, **_: object) -> None:
        self.owner, self.total, self.n = owner, total, 0

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, frames: int) -> None:
        self.n += frames
        hook = self.owner._progress
        if hook:
            hook(self.n / FRAMES_PER_SECOND, self.total / FRAMES_PER_SECOND)
        stop = self.owner._should_stop
        if stop and stop():
            raise Canceled("transcription canceled")


class OpenAIWhisperEngine:
    name = "openai"

    def __init__(self, model: str, device: str, compute_type: str, threads: int) -> None:
        try:
            import torch
            import whisper
        except ImportError as exc:
            raise EngineUnavailable(
                f"the openai engine is not installed ({exc.name} is missing)",
                "install it with scripts/install.sh, or pip install 'wt[openai]' openai-whisper",
            ) from None
        self.model_name = model
        self.device = (
            ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        )
        if compute_type in ("default", "auto"):
            compute_type = "float16" if self.device == "cuda" else "float32"
        if compute_type not in ("float16", "float32"):
            raise InvalidOptions(
                f"the openai engine runs float16 or float32, not {compute_type}",
                "use --compute-type float32 (CPU) or float16 (CUDA)",
            )
        if compute_type == "float16" and self.device == "cpu":
            raise InvalidOptions(
                "float16 is not supported on CPU by the openai engine", "use --compute-type float32"
            )
        self.compute_type = compute_type
        if threads > 0:
            torch.set_num_threads(threads)
        checkpoint = resolve_checkpoint(model)
        try:
            self.model = whisper.load_model(
                checkpoint, device=self.device, download_root=str(weights.cache_dir() / "whisper")
            )
        except RuntimeError as exc:
            if "available models" in str(exc):
                raise weights.unknown_model(model) from None
            raise ModelUnavailable(
                f"model {model}: failed to load ({exc})", "check the checkpoint file is complete"
            ) from None
        except OSError as exc:  # URLError and socket errors when offline
            raise weights.offline_error(model, self.name, exc) from None
        if checkpoint.endswith(".pt") and Path(checkpoint).is_file():
            self._set_alignment_heads(Path(checkpoint))
        self._progress: ProgressFn | None = None
        self._should_stop: StopFn | None = None
        self._module = importlib.import_module("whisper.transcribe")
        self._fake_tqdm = types.SimpleNamespace(
            tqdm=lambda *a, **kw: _ProgressBar(self, kw.get("total", 0))
        )

    def _set_alignment_heads(self, checkpoint: Path) -> None:
        import torch

        heads = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True).get(
            "alignment_heads"
        )
        if heads:
            dims = self.model.dims
            mask = torch.zeros(dims.n_text_layer, dims.n_text_head, dtype=torch.bool)
            for layer, head in heads:
                mask[layer, head] = True
            self.model.register_buffer(
                "alignment_heads", mask.to_sparse().to(self.device), persistent=False
            )

    def transcribe(
        self,
        audio: np.ndarray,
        options: TranscribeOptions,
        on_progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        on_segment: SegmentFn | None = None,
    ) -> Transcript:
        import whisper

        duration = len(audio) / 16000
        multilingual = self.model.is_multilingual
        language, probability = options.language, 1.0
        if not multilingual:
            if language not in (None, "en"):
                raise ModelUnavailable(
                    f"model {self.model_name} is English-only; it cannot {options.task} {language}",
                    "use a multilingual model such as base",
                )
            language = "en"
        elif language is None:
            language, probability = self._detect_language(audio)
        clips: list[float] | str = "0"
        if options.vad:
            clips = speech_clips(audio)
        decode = (
            {"beam_size": options.beam_size, "best_of": options.beam_size}
            if options.beam_size > 1
            else {}
        )
        with _patch_lock:
            self._progress, self._should_stop = on_progress, should_stop
            original = self._module.tqdm
            self._module.tqdm = self._fake_tqdm
            try:
                if clips == []:  # VAD found no speech at all
                    result = {"segments": [], "language": language}
                else:
                    result = whisper.transcribe(
                        self.model,
                        audio,
                        verbose=None,
                        language=language,
                        task=options.task,
                        temperature=options.temperatures(),
                        initial_prompt=_prompt(options),
                        # Hotwords go into every window's prompt, as faster-whisper puts them.
                        carry_initial_prompt=bool(options.hotwords),
                        condition_on_previous_text=options.condition_on_previous_text,
                        word_timestamps=options.needs_word_timings,
                        hallucination_silence_threshold=options.hallucination_silence_threshold,
                        fp16=self.compute_type == "float16",
                        clip_timestamps=clips,
                        **decode,
                    )
            finally:
                self._module.tqdm = original
                self._progress = self._should_stop = None
        segments = tuple(
            Segment(
                id=i,
                start=round(float(s["start"]), 3),
                end=round(float(s["end"]), 3),
                text=s["text"],
                avg_logprob=float(s["avg_logprob"]),
                no_speech_prob=float(s["no_speech_prob"]),
                compression_ratio=float(s["compression_ratio"]),
                temperature=float(s["temperature"]),
                seek=int(s["seek"]),
                tokens=tuple(int(t) for t in s["tokens"]),
                words=tuple(
                    Word(
                        round(float(w["start"]), 3),
                        round(float(w["end"]), 3),
                        w["word"],
                        float(w["probability"]),
                    )
                    for w in s["words"]
                )
                if options.word_timestamps
                else None,
            )
            for i, s in enumerate(result["segments"])
        )
        # openai-whisper hands its segments over when the whole piece is done.
        for segment in segments if on_segment else ():
            on_segment(segment)
        if on_progress:
            on_progress(duration, duration)
        return engine_transcript(
            self, segments, result.get("language") or language, probability, duration, options.task
        )

    def _detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        # The same detection openai-whisper runs on the first 30 s, done here to also get
        # the probability it does not return.
        import whisper

        # Exactly as whisper.transcribe builds it (the whole audio, padded by 30 s, then the
        # first 30 s): a mel of the trimmed audio differs in the last bits and, on a 1.5 s
        # clip, tipped base from English to Arabic where openai-whisper itself said English.
        from whisper.audio import N_FRAMES, N_SAMPLES

        mel = whisper.log_mel_spectrogram(audio, self.model.dims.n_mels, padding=N_SAMPLES)
        mel = whisper.pad_or_trim(mel, N_FRAMES).to(self.device)
        if self.compute_type == "float16":
            mel = mel.half()
        _, probs = self.model.detect_language(mel)
        language = max(probs, key=probs.get)
        return language, probs[language]


def _prompt(options: TranscribeOptions) -> str | None:
    """openai-whisper has no hotwords: they lead the prompt, which is then carried into
    every window (carry_initial_prompt), where faster-whisper places its hotwords."""
    if not options.hotwords:
        return options.initial_prompt
    return " ".join(p for p in (options.hotwords, options.initial_prompt) if p)

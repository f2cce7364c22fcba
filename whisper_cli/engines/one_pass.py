"""One encoder pass for the first window, whatever decides the language.

Without a language, faster-whisper encodes the first 30 s window to detect it and then, in
its decoding loop, encodes that window again (on short recordings the encoder is most of the
work: 126 s vs 88 s for 73 short files). Here language detection encodes exactly the window
the loop will decode, the loop's `encode` call gets that output back, and the language comes
from the same encoder output the first window is decoded with.

The window is rebuilt as faster-whisper's loop cuts it (up to the first clip's end and the
last whole frame); the hand-over happens only when the arrays are equal, so a faster-whisper
that cuts differently costs the second pass again, never a wrong result.
"""

from __future__ import annotations

import threading

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim

FRAMES_PER_WINDOW = 3000


class OnePassWhisperModel(WhisperModel):
    """faster-whisper's model with the first window's encoder output shared between language
    detection and decoding. State is per thread: several jobs may share one model."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self.encoder_passes = 0  # counted for tests and the benchmarks

    def first_window_is(self, start: float, end: float | None) -> None:
        """Say where the first clip to be decoded starts and ends, in seconds (end None: the
        end of the audio), before calling transcribe without a language."""
        self._local.clip = (start, end)
        self._local.shared = None

    def detect_language(
        self,
        audio=None,
        features=None,
        vad_filter: bool = False,
        vad_parameters=None,
        language_detection_segments: int = 1,
        language_detection_threshold: float = 0.5,
    ):
        clip = getattr(self._local, "clip", None)
        self._local.clip = None
        if (
            clip is None
            or audio is not None
            or features is None
            or language_detection_segments != 1
        ):
            return super().detect_language(
                audio,
                features,
                vad_filter,
                vad_parameters,
                language_detection_segments,
                language_detection_threshold,
            )
        # transcribe() hands over the features from int(start) on; its loop starts at
        # round(start) and decodes up to the clip's end or the last whole frame.
        start, end = clip
        fps = self.frames_per_second
        given_from = int(start * fps)
        seek = round(start * fps)
        content_frames = features.shape[-1] - 1 + given_from
        clip_end = content_frames if end is None else min(round(end * fps), content_frames)
        size = min(FRAMES_PER_WINDOW, content_frames - seek, clip_end - seek)
        skip = seek - given_from
        window = pad_or_trim(features[..., skip : skip + max(size, 1)])
        encoder_output = self.encode(window)
        self._local.shared = (window, encoder_output)
        results = self.model.detect_language(encoder_output)[0]
        all_language_probs = [(token[2:-2], prob) for token, prob in results]
        language, probability = all_language_probs[0]
        return language, probability, all_language_probs

    def encode(self, features: np.ndarray):
        shared = getattr(self._local, "shared", None)
        if shared is not None:
            self._local.shared = None
            window, encoder_output = shared
            if features.shape == window.shape and np.array_equal(features, window):
                return encoder_output
        if features.ndim == 3 and features.shape[0] > 1 and self.model.device == "cpu":
            # A batch of windows (batched decoding): on CPU the encoder is no faster per window
            # in a batch and slower in large ones (base int8, 2 cores: 4 windows 1.50 s
            # batched, 1.32 s one by one), so windows go through it one at a time and only
            # the decoder, where batching pays, sees them together.
            import ctranslate2

            self.encoder_passes += features.shape[0]
            outputs = [np.asarray(super(OnePassWhisperModel, self).encode(f)) for f in features]
            return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(outputs)))
        self.encoder_passes += 1
        return super().encode(features)

"""Speaker embeddings: a voice as a vector, from a model that installs from PyPI.

The encoder behind diarization. Resemblyzer's (a 3-layer LSTM trained for speaker
verification, GE2E loss; Apache-2.0) ships its weights inside its wheel: no hub, no token,
offline from a plain install. Another encoder (an ECAPA model, pyannote's for users with a
hub) only has to provide `windows`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from whisper_cli.errors import ModelUnavailable

SAMPLE_RATE = 16000


class SpeakerEncoder(Protocol):
    name: str

    def windows(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of overlapping windows of 16 kHz mono audio: (n, dim) unit vectors,
        and (n, 2) window start and end in seconds from the start of `audio`."""
        ...


class ResemblyzerEncoder:
    name = "resemblyzer"
    # 1.6 s windows (resemblyzer's own partial length), one every 0.5 s: speaker changes are
    # placed to about a quarter of a second, at a third of the cost of its default rate.
    RATE = 2.0

    def __init__(self, device: str = "cpu") -> None:
        try:
            from resemblyzer import VoiceEncoder
        except ImportError as exc:
            raise ModelUnavailable(
                f"speaker diarization needs the resemblyzer speaker encoder ({exc.name} is "
                "missing)",
                "install it with scripts/install.sh (not --no-openai: it runs on torch)",
            ) from None
        self.model = VoiceEncoder("cuda" if device == "cuda" else "cpu", verbose=False)

    def windows(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        min_samples = int(0.5 * SAMPLE_RATE)
        if audio.size < min_samples:
            return np.zeros((0, 256), np.float32), np.zeros((0, 2))
        _, partials, slices = self.model.embed_utterance(
            audio.astype(np.float32), return_partials=True, rate=self.RATE, min_coverage=0.5
        )
        spans = np.array(
            [(sl.start / SAMPLE_RATE, min(sl.stop, audio.size) / SAMPLE_RATE) for sl in slices]
        )
        return np.asarray(partials, np.float32), spans


_encoders: dict[str, SpeakerEncoder] = {}


def load_encoder(device: str = "cpu") -> SpeakerEncoder:
    """One encoder per process (a daemon worker keeps it across jobs, like its models)."""
    key = f"resemblyzer:{device}"
    if key not in _encoders:
        _encoders[key] = ResemblyzerEncoder(device)
    return _encoders[key]

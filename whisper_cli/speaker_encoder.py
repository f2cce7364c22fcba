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

    def windows(self, regions: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each stretch of 16 kHz mono speech: embeddings of its overlapping windows as
        (n, dim) unit vectors, and (n, 2) window start and end in seconds from its start."""
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

    def windows(self, regions: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """All windows of all regions go through the network in one batch: per call, the
        model's own embed_utterance costs ~40 ms of overhead, more than the windows of a
        short turn (measured: 1.74 s for 151 windows in 33 turns, one call each)."""
        import torch
        from resemblyzer.audio import wav_to_mel_spectrogram

        mels, spans, counts = [], [], []
        for audio in regions:
            if audio.size < int(0.5 * SAMPLE_RATE):
                counts.append(0)
                continue
            wav_slices, mel_slices = self.model.compute_partial_slices(audio.size, self.RATE, 0.5)
            padded = np.pad(audio, (0, max(0, wav_slices[-1].stop - audio.size)))
            mel = wav_to_mel_spectrogram(padded.astype(np.float32))
            mels += [mel[s] for s in mel_slices]
            spans += [
                (w.start / SAMPLE_RATE, min(w.stop, audio.size) / SAMPLE_RATE) for w in wav_slices
            ]
            counts.append(len(mel_slices))
        if not mels:
            return [(np.zeros((0, 256), np.float32), np.zeros((0, 2))) for _ in regions]
        with torch.no_grad():
            batch = torch.from_numpy(np.array(mels)).to(self.model.device)
            vectors = self.model(batch).cpu().numpy()
        out, i = [], 0
        for n in counts:
            out.append((vectors[i : i + n], np.array(spans[i : i + n]).reshape(-1, 2)))
            i += n
        return out


_encoders: dict[str, SpeakerEncoder] = {}


def load_encoder(device: str = "cpu") -> SpeakerEncoder:
    """One encoder per process (a daemon worker keeps it across jobs, like its models)."""
    key = f"resemblyzer:{device}"
    if key not in _encoders:
        _encoders[key] = ResemblyzerEncoder(device)
    return _encoders[key]

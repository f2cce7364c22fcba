"""Kaldi-style log mel filterbank features, the input CAM++ speaker embeddings were trained on.

Same recipe as Kaldi's `compute-fbank-feats` (and torchaudio.compliance.kaldi.fbank) with
dither off: 25 ms frames every 10 ms, DC offset removed, pre-emphasis 0.97, Povey window,
512-point power spectrum, 80 triangular filters on Kaldi's mel scale from 20 Hz to Nyquist,
natural log; then each utterance's mean is removed (the speaker-verification recipe). Written
in numpy so that the speaker encoder needs no torchaudio (whose wheels pull their own torch).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
FRAME = 400  # 25 ms
SHIFT = 160  # 10 ms
FFT = 512
MELS = 80
LOW_HZ = 20.0
PREEMPHASIS = 0.97


def _mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz) / 700.0)


@lru_cache(maxsize=1)
def _filters() -> np.ndarray:
    """(FFT // 2, MELS): Kaldi's triangles, flat in mel, over bins 0..255 (no Nyquist bin)."""
    bins = np.arange(FFT // 2) * SAMPLE_RATE / FFT
    low, high = _mel(LOW_HZ), _mel(SAMPLE_RATE / 2)
    edges = np.linspace(low, high, MELS + 2)
    mel = _mel(bins)[:, None]
    left, centre, right = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    return np.clip(np.minimum(up, down), 0.0, None).astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    n = np.arange(FRAME)
    return ((0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME - 1))) ** 0.85).astype(np.float32)


def fbank(audio: np.ndarray) -> np.ndarray:
    """(frames, 80) mean-normalised log mel energies of 16 kHz mono float samples; fewer
    than one frame of audio gives (0, 80)."""
    if audio.size < FRAME:
        return np.zeros((0, MELS), np.float32)
    count = 1 + (audio.size - FRAME) // SHIFT
    index = np.arange(FRAME)[None, :] + SHIFT * np.arange(count)[:, None]
    # Kaldi works on 16-bit sample values; only the log floor depends on the scale.
    frames = audio.astype(np.float32)[index] * 32768.0
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= PREEMPHASIS * frames[:, :-1].copy()
    frames[:, 0] *= 1.0 - PREEMPHASIS
    frames *= _window()
    power = np.abs(np.fft.rfft(frames, n=FFT)[:, : FFT // 2]) ** 2
    energies = np.log(np.maximum(power @ _filters(), np.finfo(np.float32).eps))
    return (energies - energies.mean(axis=0, keepdims=True)).astype(np.float32)

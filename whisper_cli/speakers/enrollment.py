"""A voiceprint from reference clips: the embedding of the one voice each clip holds.

Each clip goes through the diarization pipeline itself (segmentation, embeddings, clustering),
so a clip's voiceprint is made the way a recording's speakers are, and a clip that is not one
voice's speech is refused with its reason: not audio, silent, too little speech, or two voices.
Only the embeddings are kept, never the audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisper_cli.errors import WtError

MIN_SPEECH_SECONDS = 2.0  # CAM++ embeddings of less speech are mostly noise (docs/speakers.md)
SILENT_SECONDS = 0.3  # less speech than this: the clip is silence (or noise)
# A second voice with this much speech, and this share of the clip's speech, makes the clip
# unusable: its voiceprint would sit between two people.
SECOND_VOICE_SECONDS = 1.0
SECOND_VOICE_SHARE = 0.15
# Two local speakers in one 10 s window, each with SECOND_VOICE_SECONDS of speech and less alike
# than this, are two voices (the segmentation model is trained to tell voices apart within a
# window; the clustering alone merged a telephone call's two women: the channel makes them
# alike). Measured: two voices 0.32-0.62, and no window of a one-voice clip holds two local
# speakers (the repo's recordings and enrollment clips).
SAME_VOICE_SIMILARITY = 0.75


class BadReferenceClip(WtError):
    kind = "bad_reference_clip"


@dataclass(frozen=True)
class ClipPrint:
    """One reference clip's voice: its embedding and how much speech it came from."""

    file: str
    embedding: np.ndarray  # (dim,) unit vector
    speech_seconds: float


def clip_print(path: Path, name: str, should_stop=None) -> ClipPrint:
    """The voice of one reference clip of `name`; BadReferenceClip says why a clip is unusable."""
    from whisper_cli.audio.decode import decode
    from whisper_cli.speakers.diarize import FRAME_SECONDS, SpeakerTrack
    from whisper_cli.speakers.encoder import load_encoder

    audio = decode(path)  # NotAudio / EmptyAudio / InputNotFound name the file and the fix
    track = SpeakerTrack(load_encoder(), should_stop)
    track.add(audio, 0.0)
    speech = _speech_seconds(track, FRAME_SECONDS)
    fix = f"give a clip of 5-30 s in which only {name} speaks"
    if speech < SILENT_SECONDS or not track.embeddings:
        raise BadReferenceClip(f"{path}: reference clip for {name} holds no speech", fix)
    if speech < MIN_SPEECH_SECONDS:
        raise BadReferenceClip(
            f"{path}: reference clip for {name} holds {speech:.1f} s of speech, "
            f"{MIN_SPEECH_SECONDS:.0f} s at least are needed",
            fix,
        )
    two = _two_voices_in_a_window(track, FRAME_SECONDS)
    if two:
        raise BadReferenceClip(
            f"{path}: reference clip for {name} holds two voices "
            f"({two[0]:.1f} s and {two[1]:.1f} s of speech within 10 s)",
            fix,
        )
    found = track.speakers()
    talk = {s: 0.0 for s in range(len(found.centroids))}
    for t in found.turns:
        talk[t.speaker] += t.end - t.start
    ranked = sorted(talk, key=lambda s: -talk[s])
    if len(ranked) > 1:
        second = talk[ranked[1]]
        if second >= SECOND_VOICE_SECONDS and second >= SECOND_VOICE_SHARE * sum(talk.values()):
            raise BadReferenceClip(
                f"{path}: reference clip for {name} holds two voices "
                f"({talk[ranked[0]]:.1f} s and {second:.1f} s of speech)",
                fix,
            )
    return ClipPrint(path.name, found.centroids[ranked[0]], speech)


def _two_voices_in_a_window(track, frame_seconds: float) -> tuple[float, float] | None:
    vectors = np.concatenate(track.embeddings)
    row = 0
    for w in track.windows:
        found = vectors[row : row + len(w.embedded)]
        row += len(w.embedded)
        seconds = [float(w.active[:, k].sum() * frame_seconds) for k in w.embedded]
        for i in range(len(found)):
            for j in range(i + 1, len(found)):
                apart = float(found[i] @ found[j]) < SAME_VOICE_SIMILARITY
                if apart and min(seconds[i], seconds[j]) >= SECOND_VOICE_SECONDS:
                    return seconds[i], seconds[j]
    return None


def _speech_seconds(track, frame_seconds: float) -> float:
    """Seconds in which the segmentation hears anybody, each frame counted once."""
    if not track.windows:
        return 0.0
    frames = max(w.frame + len(w.active) for w in track.windows)
    heard = np.zeros(frames, np.float32)
    covered = np.zeros(frames, np.float32)
    for w in track.windows:
        span = slice(w.frame, w.frame + len(w.active))
        heard[span] += w.active.any(axis=1)
        covered[span] += 1
    return float((heard / np.maximum(covered, 1) >= 0.5).sum() * frame_seconds)


def combine(name: str, clips: list[ClipPrint]):
    """One voiceprint from several clips of one person: their embeddings averaged, weighted by
    speech, so an in-room and a telephone sample both count."""
    from whisper_cli.speakers.naming import Voiceprint

    weights = np.array([c.speech_seconds for c in clips], np.float32)
    mean = (np.stack([c.embedding for c in clips]) * weights[:, None]).sum(axis=0)
    return Voiceprint(name, mean / max(float(np.linalg.norm(mean)), 1e-8), float(weights.sum()))

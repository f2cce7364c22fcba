"""A voiceprint from reference clips: the embedding of the one voice each clip holds; or from
the stretches where a speaker of a transcribed recording talks alone (speakers/turns_file.py).

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
SAMPLE_RATE = 16000


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

    audio = decode(path)  # NotAudio / EmptyAudio / InputNotFound name the file and the fix
    where = f"{path}: reference clip for {name}"
    fix = f"give a clip of 5-30 s in which only {name} speaks"
    return _voice_of(audio, path.name, where, fix, should_stop)


def turns_print(recording: Path, turns: Path, label: str, name: str, should_stop=None) -> ClipPrint:
    """The voice of the speaker `label` of a transcribed recording, from the stretches where
    the turns file (the json or RTTM wt wrote for it) has that speaker talking alone."""
    from whisper_cli.audio.decode import decode
    from whisper_cli.speakers.turns_file import MIN_STRETCH_SECONDS, read_turns, solo_stretches

    found = read_turns(turns)
    labels = sorted({t.label for t in found})
    if label not in labels:
        raise BadReferenceClip(
            f"{turns}: no speaker {label!r} (its speakers: {', '.join(labels)})",
            "give one of those with --label",
        )
    clip = f"give a clip of 5-30 s in which only {name} speaks instead"
    stretches = solo_stretches(found, label)
    if not stretches:
        raise BadReferenceClip(
            f"{turns}: {label} never talks alone for {MIN_STRETCH_SECONDS:g} s or more", clip
        )
    audio = decode(recording)
    pieces = [audio[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] for a, b in stretches]
    joined = np.concatenate(pieces)
    if joined.size < SAMPLE_RATE:
        raise BadReferenceClip(
            f"{turns}: {label}'s turns lie beyond the end of {recording}",
            "give the turns file written for this recording",
        )
    where = f"{recording}: the speech of {label} (in {turns.name}) for {name}"
    return _voice_of(joined, f"{recording.name} [{label}]", where, clip, should_stop)


def _voice_of(audio: np.ndarray, file: str, where: str, fix: str, should_stop=None) -> ClipPrint:
    """The one voice in `audio`, made the way a recording's speakers are; `where` starts each
    refusal (the file, and whose speech it was to be)."""
    from whisper_cli.speakers.diarize import FRAME_SECONDS, SpeakerTrack
    from whisper_cli.speakers.encoder import load_encoder

    track = SpeakerTrack(load_encoder(), should_stop)
    track.add(audio, 0.0)
    speech = _speech_seconds(track, FRAME_SECONDS)
    if speech < SILENT_SECONDS or not track.embeddings:
        raise BadReferenceClip(f"{where} holds no speech", fix)
    if speech < MIN_SPEECH_SECONDS:
        raise BadReferenceClip(
            f"{where} holds {speech:.1f} s of speech, "
            f"{MIN_SPEECH_SECONDS:.0f} s at least are needed",
            fix,
        )
    two = _two_voices_in_a_window(track, FRAME_SECONDS)
    if two:
        raise BadReferenceClip(
            f"{where} holds two voices ({two[0]:.1f} s and {two[1]:.1f} s of speech within 10 s)",
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
                f"{where} holds two voices ({talk[ranked[0]]:.1f} s and {second:.1f} s of speech)",
                fix,
            )
    return ClipPrint(file, found.centroids[ranked[0]], speech)


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

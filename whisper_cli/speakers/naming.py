"""Naming a recording's speakers after known voices.

A speaker (a cluster's centroid) takes a voiceprint's name when their cosine similarity is at
least MATCH_THRESHOLD and beats by MATCH_MARGIN both the speaker's similarity to every other
known voice and the voice's similarity to every other speaker (no name where two are alike).
One name goes to one speaker (the best one-to-one assignment). Any other speaker stays
unnamed: a voice nobody enrolled must never get a name. (Merging a second speaker that also
passes into the named one was tried: on the telephone call both women pass 0.60 against
either one's voiceprint, and the whole call took one name.) Both values were measured on real
meetings (bench/diarize.py --names): docs/speakers.md, Known voices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from whisper_cli.output.result import KnownSpeaker

# Cosine similarity between a speaker's centroid and a voiceprint (CAM++ embeddings).
# bench/diarize.py --names on 14 real recordings: a voiceprint against the found speakers of
# other recordings that are one person's, different people: median 0.42, at most 0.66 (228
# pairs; people of one corpus recorded in one kind of room are alike to CAM++); the same person
# met again in another meeting: 0.61-0.82 (5 pairs, the highest from the longest clip, 22 s).
# The threshold is where a normal fit of the different-people similarities leaves one stranger
# in a thousand (mean + 3.09 sd), rounded up: 0.68. Kept as the rule gives it: not lowered to
# keep the two same-person pairs at 0.676 and 0.678 named (on the first 7 recordings the rule
# gave 0.63; the 7 added later held a stranger at 0.66).
MATCH_THRESHOLD = 0.68
MATCH_MARGIN = 0.05


@dataclass(frozen=True)
class Voiceprint:
    name: str
    embedding: np.ndarray  # (dim,) unit vector
    speech_seconds: float = 0.0  # speech it was enrolled from


def similarities(centroids: np.ndarray, known: tuple[Voiceprint, ...]) -> np.ndarray:
    """(speakers, voices) cosine similarities."""
    voices = np.stack([v.embedding for v in known]).astype(np.float32)
    return centroids @ voices.T


def match(centroids: np.ndarray, known: tuple[Voiceprint, ...]) -> dict[int, int]:
    """speaker index -> voice index, for the speakers that match a known voice."""
    from scipy.optimize import linear_sum_assignment

    if not known or not len(centroids):
        return {}
    sim = similarities(centroids, known)

    def accepted(c: int, v: int) -> bool:
        rivals = [np.delete(sim[c], v), np.delete(sim[:, v], c)]
        best_rival = max((r.max() for r in rivals if r.size), default=-1.0)
        return sim[c, v] >= MATCH_THRESHOLD and sim[c, v] - best_rival >= MATCH_MARGIN

    return {
        int(c): int(v) for c, v in zip(*linear_sum_assignment(-sim), strict=True) if accepted(c, v)
    }


def outcomes(
    centroids: np.ndarray, known: tuple[Voiceprint, ...], matched: dict[int, int]
) -> tuple[KnownSpeaker, ...]:
    """Each known voice: named or not, and the similarity that decided it (to the speaker it
    named, else to the closest speaker)."""
    if not known:
        return ()
    sim = similarities(centroids, known) if len(centroids) else None
    by_voice = {v: c for c, v in matched.items()}
    out = []
    for v, voice in enumerate(known):
        if sim is None:
            best = None
        elif v in by_voice:
            best = float(sim[by_voice[v], v])
        else:
            best = float(sim[:, v].max())
        out.append(KnownSpeaker(voice.name, v in by_voice, best, MATCH_THRESHOLD))
    return tuple(out)


def not_recognised(source: str, k: KnownSpeaker) -> str:
    """What to tell a user whose known speaker got no name in `source`."""
    if k.similarity is None:
        return f"{source}: {k.name} not recognised: nobody was heard speaking"
    why = (
        f"closest speaker {k.similarity:.3f}, a name needs {k.threshold:g}"
        if k.similarity < k.threshold
        else "two speakers or two voices too alike to tell apart"
    )
    return (
        f"{source}: {k.name} not recognised ({why}); their speech keeps a SPEAKER_ label. "
        f"A longer clip of {k.name} alone (10-30 s, in the same kind of room or line) gives a "
        "surer voiceprint"
    )


def merge_named(
    centroids: np.ndarray, known: tuple[Voiceprint, ...]
) -> tuple[np.ndarray, dict[int, str], tuple[KnownSpeaker, ...]]:
    """The centroids with those matching one voice merged into one, the names of the
    speakers that matched (index in the returned centroids -> name), and each voice's
    outcome."""
    matched = match(centroids, known)
    report = outcomes(centroids, known, matched)
    if not matched:
        return centroids, {}, report
    rows: list[np.ndarray] = []
    names: dict[int, str] = {}
    by_voice: dict[int, int] = {}
    for c in range(len(centroids)):
        v = matched.get(c)
        if v is None:
            rows.append(centroids[c])
        elif v in by_voice:
            rows[by_voice[v]] = rows[by_voice[v]] + centroids[c]
        else:
            by_voice[v] = len(rows)
            names[len(rows)] = known[v].name
            rows.append(centroids[c])
    merged = np.stack(rows)
    unit = merged / np.maximum(np.linalg.norm(merged, axis=1, keepdims=True), 1e-8)
    return unit, names, report

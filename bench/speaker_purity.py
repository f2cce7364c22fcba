"""Where diarization's errors start (bench/diarize.py --purity): the local speakers of the
segmentation model that hold two people.

In each 10 s window the segmentation model (pyannote segmentation-3.0) says which of up to
three local speakers talk; wt embeds each local speaker and clusters the embeddings. A local
speaker that holds two people's speech can only go to one speaker: no clustering, distance or
embedding transform downstream can split it. This counts them against the reference: for
each local speaker with an embedding, the frames where it talks and the reference has one
person talking alone; it holds two people when the second person's share of those frames is
at least SECOND_SHARE and SECOND_SECONDS.
"""

from __future__ import annotations

import numpy as np
from common import table

SECOND_SHARE = 0.2
SECOND_SECONDS = 0.5


def purity(recs) -> None:
    from speaker_tuning import tracks

    from whisper_cli.speakers.diarize import FRAME_SECONDS, NOBODY_BELOW, STEP_SECONDS
    from whisper_cli.speakers.segmentation import FRAME_SPAN, SAMPLE_RATE

    rows = []
    all_local = all_two = 0
    all_solo = all_in_two = 0.0
    for r, track in zip(recs, tracks(recs, STEP_SECONDS, NOBODY_BELOW), strict=True):
        people = sorted(r.ref.labels())
        who = _who_alone(r.ref, people, max(r.audio.size / SAMPLE_RATE, 0.0), FRAME_SECONDS)
        local = two = 0
        solo = in_two = 0.0
        for w in track.windows:
            for k in w.embedded:
                frames = w.frame + np.flatnonzero(w.active[:, k])
                # the frame's centre on the recording's time line
                index = np.round(frames + FRAME_SPAN / 2 / SAMPLE_RATE / FRAME_SECONDS).astype(int)
                index = index[index < who.size]
                counts = np.bincount(who[index][who[index] >= 0], minlength=len(people))
                seconds = counts * FRAME_SECONDS
                ranked = np.sort(seconds)[::-1]
                local += 1
                solo += float(seconds.sum())
                second = ranked[1] if len(ranked) > 1 else 0.0
                if second >= SECOND_SECONDS and second >= SECOND_SHARE * seconds.sum():
                    two += 1
                    in_two += float(seconds.sum())
        rows.append([
            r.name, str(len(people)), str(local), str(two),
            f"{100 * in_two / solo:.0f}%" if solo else "-",
        ])  # fmt: skip
        all_local, all_two = all_local + local, all_two + two
        all_solo, all_in_two = all_solo + solo, all_in_two + in_two
    rows.append([
        "all", "", str(all_local), str(all_two),
        f"{100 * all_in_two / all_solo:.0f}%" if all_solo else "-",
    ])  # fmt: skip
    table(
        "Local speakers that hold two people (segmentation-3.0, windows every "
        f"{STEP_SECONDS:g} s)",
        ["recording", "people", "local speakers embedded", "holding two people",
         "their share of the one-person speech they cover"],
        rows,
        "A local speaker holds two people when the second person has at least "
        f"{SECOND_SHARE:.0%} and {SECOND_SECONDS:g} s of the frames where it talks and the "
        "reference has one person talking alone. Its speech goes to one speaker whatever the "
        "clustering does.",
        name="diarize-purity",
    )  # fmt: skip


def _who_alone(ref, people: list[str], seconds: float, frame_seconds: float) -> np.ndarray:
    """Per frame of the recording's time line: the index of the one person talking, -1 where
    nobody or several talk."""
    n = int(seconds / frame_seconds) + 1
    talking = np.zeros((len(people), n), bool)
    for segment, _, label in ref.itertracks(yield_label=True):
        a, b = int(segment.start / frame_seconds), int(np.ceil(segment.end / frame_seconds))
        talking[people.index(label), a : min(b, n)] = True
    one = talking.sum(axis=0) == 1
    return np.where(one, talking.argmax(axis=0), -1)

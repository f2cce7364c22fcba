"""Settings chosen by leave-one-out, and known voices measured (bench/diarize.py --tune, --names).

--tune: every recording's segmentation and embeddings are taken once per window step; then
every clustering setting (linkage x distance) is scored on every recording. "dev" is the DER
of the settings with the lowest DER over all recordings, scored on those same recordings
(what tuning on a test set reports); "leave-one-out" scores each recording with the settings
that did best on the others, so no recording is scored with settings chosen on it.

--names: every speaker with 2 s or more of speech alone in a recording's reference is enrolled
from a clip of that speech (cut where the reference has them talking alone). Similarities of
voiceprints to the speakers wt finds in *other* recordings that are one person's (_pure), the
same person and different people, and the naming threshold's rule (match_threshold) on them;
naming accuracy (share of an enrolled speaker's speech labelled with their name) where
the same people meet again (AMI reuses people across meetings: a person's clips from all the
*other* recordings combined into one voiceprint); false names (speech of a voice not
enrolled that carries a name) in every recording, with every voice of the other recordings
enrolled; DER with and without known speakers. Also: seconds under a name where that person
does not speak (another person or nobody: confusion inside the meeting), and, for the words
Whisper (base) hears where the reference has one person talking, the share of the enrolled
person's words that carry their name and the words of others that carry it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import table

SAMPLE_RATE = 16000
STEPS = (10.0, 5.0, 2.5, 1.0)  # cheapest first: a tie goes to the cheaper setting
# Speech when P(nobody) is under this (None: the likeliest class, pyannote's rule).
NOBODY = (None, 0.6, 0.7, 0.8, 0.9)
LINKAGES = ("average", "complete")
THRESHOLDS = tuple(round(float(t), 3) for t in np.arange(0.6, 1.401, 0.025))
MIN_ENROLL_SECONDS = 2.0


@dataclass
class Recording:
    name: str
    wav: Path
    ref: object  # pyannote Annotation
    audio: np.ndarray


def load(files: list[Path]) -> list[Recording]:
    from diarize import reference

    from whisper_cli.audio.decode import decode

    return [Recording(w.stem, w, reference(w.with_suffix(".rttm")), decode(w)) for w in files]


def der_parts(ref, turns, names: dict[int, str] | None = None) -> tuple[float, float]:
    """(errors, total) seconds: DER = sum of errors / sum of totals."""
    from diarize import hypothesis
    from pyannote.metrics.diarization import DiarizationErrorRate

    labels = names or {}
    hyp = hypothesis([(t.start, t.end, labels.get(t.speaker, t.speaker)) for t in turns], "x")
    d = DiarizationErrorRate(collar=0.5, skip_overlap=False)(
        ref, hyp, uem=ref.get_timeline().extent(), detailed=True
    )
    return d["confusion"] + d["missed detection"] + d["false alarm"], d["total"]


def tracks(recs: list[Recording], step: float, nobody_below: float | None = None):
    from whisper_cli.speakers.diarize import SpeakerTrack
    from whisper_cli.speakers.encoder import load_encoder

    out = []
    for r in recs:
        track = SpeakerTrack(
            load_encoder(), step=int(step * SAMPLE_RATE), nobody_below=nobody_below
        )
        track.add(r.audio, 0.0)
        out.append(track)
    return out


def _describe(setting) -> str:
    step, nobody, c = setting
    speech = "argmax" if nobody is None else f"P(nobody)<{nobody:g}"
    return f"{step:g} s, {speech}, {c.linkage} {c.threshold:.3f}"


def tune(recs: list[Recording]) -> None:
    from whisper_cli.speakers.clustering import DEFAULT_CLUSTERING, Clustering
    from whisper_cli.speakers.diarize import NOBODY_BELOW, STEP_SECONDS

    # The shipped distance is in the grid whatever its value.
    grid = sorted({*THRESHOLDS, DEFAULT_CLUSTERING.threshold})
    fronts = [(s, n) for s in STEPS for n in NOBODY]
    settings = [(s, n, Clustering(k, t)) for s, n in fronts for k in LINKAGES for t in grid]
    scores = np.zeros((len(settings), len(recs), 2))
    for step, nobody in fronts:
        print(f"  step {step} s, speech {nobody}: segmentation and embeddings", file=sys.stderr)
        found = tracks(recs, step, nobody)
        for i, (s, n, clustering) in enumerate(settings):
            if (s, n) != (step, nobody):
                continue
            for j, (r, track) in enumerate(zip(recs, found, strict=True)):
                scores[i, j] = der_parts(r.ref, track.speakers(clustering=clustering).turns)
    total = scores[:, :, 0].sum(1) / scores[:, :, 1].sum(1)
    best = int(total.argmin())
    shipped = settings.index((STEP_SECONDS, NOBODY_BELOW, DEFAULT_CLUSTERING))
    every = list(range(len(settings)))
    # The shipped pipeline (step, speech rule, linkage) with only its distance chosen: the
    # choice wt makes again whenever recordings are added.
    distance_only = [i for i, (s, n, c) in enumerate(settings) if (s, n) == settings[shipped][:2]
                     and c.linkage == DEFAULT_CLUSTERING.linkage]  # fmt: skip
    loo, picks = _loo(scores, every)
    loo_d, picks_d = _loo(scores, distance_only)

    def der(i: int, j: int) -> str:
        return f"{scores[i, j, 0] / scores[i, j, 1]:.3f}"

    rows = [
        [r.name, len(r.ref.labels()), der(shipped, j), der(best, j), der(picks[j], j),
         _describe(settings[picks[j]]), der(picks_d[j], j),
         f"{settings[picks_d[j]][2].threshold:.3f}"]
        for j, r in enumerate(recs)
    ]  # fmt: skip
    rows.append([
        "all", "", f"{total[shipped]:.3f}", f"{total[best]:.3f}", f"{loo:.3f}", "",
        f"{loo_d:.3f}", "",
    ])  # fmt: skip
    table(
        "Diarization settings chosen by leave-one-out, DER (collar 0.25 s)",
        ["recording", "speakers", "shipped", "dev", "leave-one-out", "settings chosen without it",
         "leave-one-out, distance only", "distance chosen without it"],
        rows,
        f"shipped: {_describe(settings[shipped])}, chosen in "
        f"{sum(p == shipped for p in picks)} of {len(recs)} folds from every setting and in "
        f"{sum(p == shipped for p in picks_d)} from the distances alone. dev: the settings best "
        f"over all {len(recs)} recordings ({_describe(settings[best])}) scored on the same "
        "recordings; leave-one-out: each recording scored with the settings best on the others "
        "(all: pooled DER), from every setting, or from the distances alone with the shipped "
        f"step, speech rule and linkage. Grid: steps {STEPS} s, speech rule {NOBODY}, linkages "
        f"{LINKAGES}, distances {THRESHOLDS[0]}-{THRESHOLDS[-1]} by 0.025.",
        name="diarize-tune",
    )  # fmt: skip
    _grids(recs, settings, scores, shipped)


def _loo(scores: np.ndarray, allowed: list[int]) -> tuple[float, list[int]]:
    """Pooled DER of leave-one-out over the settings `allowed`, and each fold's pick."""
    err = total = 0.0
    picks = []
    for j in range(scores.shape[1]):
        others = [k for k in range(scores.shape[1]) if k != j]
        sub = scores[allowed][:, others]
        pick = allowed[int((sub[:, :, 0].sum(1) / sub[:, :, 1].sum(1)).argmin())]
        picks.append(pick)
        err, total = err + scores[pick, j, 0], total + scores[pick, j, 1]
    return err / total, picks


def _grids(recs, settings, scores, shipped: int) -> None:
    """Leave-one-out of choosing from smaller grids: the more settings a choice ranges over,
    the more it fits the recordings it was chosen on (what the dev column hides)."""
    from whisper_cli.speakers.diarize import NOBODY_BELOW, STEP_SECONDS

    grids = {
        "every setting": lambda s: True,
        "speech rule fixed (argmax)": lambda s: s[1] is None,
        f"step and speech rule fixed ({STEP_SECONDS:g} s, argmax)": (
            lambda s: s[1] is NOBODY_BELOW and s[0] == STEP_SECONDS
        ),
        f"... and linkage fixed ({settings[shipped][2].linkage})": (
            lambda s: (
                s[1] is NOBODY_BELOW
                and s[0] == STEP_SECONDS
                and s[2].linkage == settings[shipped][2].linkage
            )
        ),
    }
    rows = []
    for label, keep in grids.items():
        allowed = [i for i, s in enumerate(settings) if keep(s)]
        dev = allowed[int((scores[allowed, :, 0].sum(1) / scores[allowed, :, 1].sum(1)).argmin())]
        loo, picks = _loo(scores, allowed)
        chosen = sorted({_describe(settings[p]) for p in picks})
        rows.append([
            label, str(len(allowed)),
            f"{scores[dev, :, 0].sum() / scores[dev, :, 1].sum():.3f}", f"{loo:.3f}",
            f"{len(chosen)}: " + "; ".join(chosen[:4]) + (" ..." if len(chosen) > 4 else ""),
        ])  # fmt: skip
    table(
        "Leave-one-out by how much is chosen, DER (collar 0.25 s)",
        ["chosen from", "settings", "dev", "leave-one-out", "settings the folds chose"],
        rows,
        f"{len(recs)} recordings. dev: the grid's best setting scored on the recordings it was "
        "chosen on; leave-one-out: each recording scored with the grid's best setting on the "
        "others (pooled DER).",
        name="diarize-tune-grids",
    )


def solo_audio(r: Recording, speaker: str) -> np.ndarray:
    """The speaker's speech where the reference has nobody else talking, spans of 0.5 s up."""
    mine = r.ref.label_timeline(speaker).support()
    others = r.ref.subset([x for x in r.ref.labels() if x != speaker]).get_timeline().support()
    spans = [s for s in mine.extrude(others) if s.duration >= 0.5]
    parts = [r.audio[int(s.start * SAMPLE_RATE) : int(s.end * SAMPLE_RATE)] for s in spans]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def names(recs: list[Recording], tmp: Path) -> None:
    from common import write_wav

    from whisper_cli.errors import WtError
    from whisper_cli.speakers import naming
    from whisper_cli.speakers.enrollment import clip_print, combine

    prints = []  # (recording index, speaker, Voiceprint)
    for i, r in enumerate(recs):
        for spk in r.ref.labels():
            clip = solo_audio(r, spk)
            if clip.size < MIN_ENROLL_SECONDS * SAMPLE_RATE:
                continue
            path = write_wav(clip, tmp / f"{r.name}-{spk}.wav")
            try:
                prints.append((i, spk, clip_print(path, spk)))
            except WtError as e:
                print(f"  {r.name} {spk}: not enrolled: {e}", file=sys.stderr)
    print(f"  enrolled {len(prints)} voices", file=sys.stderr)
    from whisper_cli.speakers.diarize import NOBODY_BELOW, STEP_SECONDS

    found = tracks(recs, STEP_SECONDS, NOBODY_BELOW)
    same, different = [], []
    pairs = []  # (recording enrolled in, recording named in, similarity, same person)
    for j, (r, track) in enumerate(zip(recs, found, strict=True)):
        plain = track.speakers()
        majority = _pure(r, plain)
        for i, spk, cp in prints:
            if i == j:
                continue
            sims = plain.centroids @ cp.embedding
            for c, who in majority.items():
                (same if who == spk else different).append(float(sims[c]))
                pairs.append((i, j, float(sims[c]), who == spk))
    # Naming: each recording with the voices of its people enrolled in their *other* meeting
    # (the therapist enrolled once, named in every session); false names: each recording with
    # each voice of *other* people enrolled, one at a time (a voice nobody enrolled is there).
    rows = []
    transcripts = {}  # recording index -> Whisper's words (base, no fallback), taken once
    words_named = words_total = words_misnamed = 0
    named_s = total_s = false_s = unenrolled_s = heard_s = misnamed_s = labelled_s = 0.0
    with_err = with_total = without_err = without_total = 0.0
    for j, (r, track) in enumerate(zip(recs, found, strict=True)):
        plain = track.speakers()
        present = set(r.ref.labels())
        own = _own_voices(prints, j, present)
        strangers = [combine(spk, [cp]) for i, spk, cp in prints if i != j and spk not in present]
        per = []
        e, t = der_parts(r.ref, plain.turns)
        if own:
            without_err, without_total = without_err + e, without_total + t
            got = track.speakers(known=own)
            e2, t2 = der_parts(r.ref, got.turns)
            with_err, with_total = with_err + e2, with_total + t2
            if j not in transcripts:
                transcripts[j] = _words(r.wav)
            spoken = _word_names(transcripts[j], got)
            for vp in own:
                mine = [w for w in spoken if _one_speaker(r, w) == vp.name]
                words_named += sum(w.speaker == vp.name for w in mine)
                words_total += len(mine)
                words_misnamed += sum(
                    w.speaker == vp.name and _one_speaker(r, w) not in (vp.name, None)
                    for w in spoken
                )
                per.append(
                    f"{vp.name}: {sum(w.speaker == vp.name for w in mine)} of {len(mine)} words"
                )
                speech = r.ref.label_timeline(vp.name).support()
                right = _labelled(got, speech).get(vp.name, 0.0)
                heard = _heard(got, speech)
                named_s, total_s = named_s + right, total_s + speech.duration()
                heard_s += heard
                under = _named_timeline(got, vp.name)
                misnamed = under.duration() - under.crop(speech).duration()
                misnamed_s, labelled_s = misnamed_s + misnamed, labelled_s + under.duration()
                per.append(
                    f"{vp.name} {100 * right / speech.duration():.0f}% named "
                    f"({100 * right / max(heard, 1e-9):.0f}% of the {heard:.1f} s heard; "
                    f"{misnamed:.1f} s of {under.duration():.1f} s under the name where they "
                    "do not speak)"
                )
        wrong = 0.0
        for vp in strangers:
            got = track.speakers(known=(vp,))
            wrong += sum(_labelled(got, r.ref.get_timeline().support()).values())
        false_s += wrong
        unenrolled_s += len(strangers) * r.ref.get_timeline().support().duration()
        per.append(f"{len(strangers)} strangers' voices: {wrong:.1f} s named")
        rows.append([
            r.name, f"{e / t:.3f}", f"{e2 / t2:.3f}" if own else "-", "; ".join(per)
        ])  # fmt: skip
    loo = _names_held_out(recs, found, prints, pairs)
    _by_source(recs, found, prints, _turn_prints(recs, found, tmp))
    rows.append([
        "all", f"{without_err / max(without_total, 1e-9):.3f}",
        f"{with_err / max(with_total, 1e-9):.3f}" if with_total else "-",
        f"named {100 * named_s / max(total_s, 1e-9):.0f}% of enrolled speakers' speech "
        f"({100 * named_s / max(heard_s, 1e-9):.0f}% of what diarization heard of it); "
        f"{misnamed_s:.1f} s of {labelled_s:.1f} s under a name where that person does not speak; "
        f"words: {words_named} of {words_total} ({100 * words_named / max(words_total, 1):.0f}%) "
        f"named, {words_misnamed} of another person alone under a name; "
        f"{false_s:.1f} s of {unenrolled_s:.0f} s of speech named after a stranger. "
        f"Threshold chosen without the recording (leave-one-out, {loo[0]}): named "
        f"{loo[1]:.0f}% of enrolled speakers' speech; {loo[2]:.1f} s named after a stranger",
    ])  # fmt: skip
    table(
        "Known voices: enrolled in one recording, named in the others",
        ["recording", "DER", "DER with known voices", "naming"],
        rows,
        f"{len(prints)} voices enrolled (each speaker with >= {MIN_ENROLL_SECONDS:g} s alone in "
        "a reference, from a clip of that speech). DER with known voices and naming: the "
        "recording's people enrolled from their clips in the other recordings (AMI meetings of "
        "the same people: EN2006a/b, and in a larger folder the same AMI speaker ids). "
        "Strangers: each voice of other recordings enrolled alone; any name given is false. "
        "Similarity of a "
        f"voiceprint to a found speaker of another recording: same person "
        f"{_range(same)}; different people {_range(different)} (max); the rule (mean + "
        f"{STRANGER_Z} sd, rounded up) on all of them: {match_threshold(different):.2f}. Match "
        f"as shipped: similarity >= {naming.MATCH_THRESHOLD} and a margin of "
        f"{naming.MATCH_MARGIN} over other voices and "
        "other speakers. The all row's DERs are over the recordings with known voices.",
        name="diarize-names",
    )


# The threshold rule (whisper_cli/speakers/naming.py): the similarities of different people
# fitted with a normal distribution, cut at its 99.9th percentile (mean + 3.09 sd), rounded up.
STRANGER_Z = 3.09


def match_threshold(different: list[float]) -> float:
    import math

    xs = np.asarray(different)
    return math.ceil((xs.mean() + STRANGER_Z * xs.std()) * 100) / 100


def _names_held_out(recs, found, prints, pairs) -> tuple[str, float, float]:
    """Naming with the threshold chosen by leave-one-out: for each recording, the rule
    (match_threshold) applied to the different-people pairs that involve neither that
    recording nor voices enrolled from it. Returns (thresholds used, % of enrolled speakers'
    speech named, seconds named after a stranger)."""
    from whisper_cli.speakers import naming

    shipped = naming.MATCH_THRESHOLD
    used, named_s, total_s, false_s = [], 0.0, 0.0, 0.0
    try:
        for j, (r, track) in enumerate(zip(recs, found, strict=True)):
            others = [x for i, k, x, same in pairs if not same and j not in (i, k)]
            naming.MATCH_THRESHOLD = match_threshold(others)
            used.append(naming.MATCH_THRESHOLD)
            named, total, false, _ = _named_and_false(r, track, prints, j)
            named_s, total_s, false_s = named_s + named, total_s + total, false_s + false
    finally:
        naming.MATCH_THRESHOLD = shipped
    spread = f"thresholds {min(used):.2f}-{max(used):.2f}"
    return spread, 100 * named_s / max(total_s, 1e-9), false_s


def _named_and_false(r: Recording, track, prints, j: int) -> tuple[float, float, float, float]:
    """Recording j with its people enrolled from their other recordings, and with each
    stranger's voice enrolled alone: (seconds of their speech named, seconds of it, seconds
    named after a stranger, seconds of speech in the stranger trials)."""
    from whisper_cli.speakers.enrollment import combine

    present = set(r.ref.labels())
    named = total = false = unenrolled = 0.0
    own = _own_voices(prints, j, present)
    if own:
        got = track.speakers(known=own)
        for vp in own:
            speech = r.ref.label_timeline(vp.name).support()
            named += _labelled(got, speech).get(vp.name, 0.0)
            total += speech.duration()
    everyone = r.ref.get_timeline().support()
    for i, spk, cp in prints:
        if i != j and spk not in present:
            got = track.speakers(known=(combine(spk, [cp]),))
            false += sum(_labelled(got, everyone).values())
            unenrolled += everyone.duration()
    return named, total, false, unenrolled


def _turn_prints(recs, found, tmp: Path) -> list:
    """(recording index, person, ClipPrint) for every found speaker that is one person's,
    enrolled the way `wt voices add NAME REC --turns REC.rttm --label LABEL` does."""
    from whisper_cli.errors import WtError
    from whisper_cli.speakers.enrollment import turns_print

    prints = []
    for i, (r, track) in enumerate(zip(recs, found, strict=True)):
        plain = track.speakers()
        rttm = tmp / f"{r.name}.found.rttm"
        rttm.write_text("".join(
            f"SPEAKER x 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> S{t.speaker} <NA> <NA>\n"
            for t in plain.turns
        ))  # fmt: skip
        for c, who in _pure(r, plain).items():
            try:
                prints.append((i, who, turns_print(r.wav, rttm, f"S{c}", who)))
            except WtError as e:
                print(f"  {r.name} S{c} ({who}): not enrolled from turns: {e}", file=sys.stderr)
    return prints


def _by_source(recs, found, clip_prints, turn_prints) -> None:
    """Naming and false names with voices enrolled from reference clips, and from found
    speakers' turns, side by side; also on the people both sources enroll."""
    both = {spk for _, spk, _ in clip_prints} & {spk for _, spk, _ in turn_prints}
    rows = []
    pooled: list[float] = []  # different-people similarities of both sources, all people
    sources = (("reference clips (solo speech, 2 s or more)", clip_prints),
               ("a found speaker's turns (--turns, --label)", turn_prints))  # fmt: skip
    for label, prints in sources:
        for people in ("all", "both"):
            use = [p for p in prints if people == "all" or p[1] in both]
            same, different = [], []
            named_s, total_s, false_s, unenrolled_s = 0.0, 0.0, 0.0, 0.0
            for j, (r, track) in enumerate(zip(recs, found, strict=True)):
                plain = track.speakers()
                for c, who in _pure(r, plain).items():
                    for i, spk, cp in use:
                        if i != j:
                            sim = float(plain.centroids[c] @ cp.embedding)
                            (same if spk == who else different).append(sim)
                named, total, false, unenrolled = _named_and_false(r, track, use, j)
                named_s, total_s = named_s + named, total_s + total
                false_s, unenrolled_s = false_s + false, unenrolled_s + unenrolled
            if people == "all":
                pooled += different
            rows.append([
                label, "all people" if people == "all" else f"the {len(both)} both enroll",
                str(len(use)), _range(same), _range(different),
                f"{match_threshold(different):.2f}" if different else "-",
                f"{100 * named_s / max(total_s, 1e-9):.0f}% of {total_s:.0f} s",
                f"{false_s:.1f} s of {unenrolled_s:.0f} s",
            ])  # fmt: skip
    table(
        "Known voices by what they were enrolled from",
        ["enrolled from", "people", "voices", "similarity to the same person in another "
         "recording", "to different people", "the threshold rule on those",
         "their speech named there", "strangers' speech named"],
        rows,
        "Reference clips: a person's speech where the reference has them alone. Found "
        "speakers' turns: wt's own speakers of a recording that are one person's (80% of the "
        "solo speech they cover), enrolled by label as wt voices add --turns does (stretches "
        "of 2.5 s or more where nobody else talks, 0.5 s trimmed at each end). Naming and "
        "strangers as in the table above, with the shipped threshold. The threshold rule on "
        f"both sources' different-people pairs together: {match_threshold(pooled):.2f}.",
        name="diarize-names-sources",
    )  # fmt: skip


def _own_voices(prints, j: int, present: set[str]) -> tuple:
    """The voiceprints of recording j's people from their clips in the *other* recordings,
    one per person (several clips of one person combined, as `--speaker X=a --speaker X=b`)."""
    from whisper_cli.speakers.enrollment import combine

    clips: dict[str, list] = {}
    for i, spk, cp in prints:
        if i != j and spk in present:
            clips.setdefault(spk, []).append(cp)
    return tuple(combine(spk, cps) for spk, cps in clips.items())


def _range(xs: list[float]) -> str:
    if not xs:
        return "none"
    return f"{min(xs):.2f}-{max(xs):.2f} (n={len(xs)}, median {float(np.median(xs)):.2f})"


# A found speaker is one person's when at least this much of the speech it covers where one
# person talks alone is that person's, and that is at least PURE_SECONDS: a speaker mixing two
# voices says nothing about how alike two people are.
PURE_SHARE = 0.8
PURE_SECONDS = 1.0


def _pure(r: Recording, found) -> dict[int, str]:
    """found speaker index -> its person, for the speakers that are one person's."""
    from pyannote.core import Segment, Timeline

    solo = {s: _alone(r, s) for s in r.ref.labels()}
    out = {}
    for c in range(len(found.centroids)):
        tl = Timeline([Segment(t.start, t.end) for t in found.turns if t.speaker == c]).support()
        cover = {s: solo[s].crop(tl).duration() for s in r.ref.labels()} if tl else {}
        if not cover:
            continue
        who = max(cover, key=lambda s: cover[s])
        if cover[who] >= PURE_SECONDS and cover[who] >= PURE_SHARE * sum(cover.values()):
            out[c] = who
    return out


def _alone(r: Recording, speaker: str):
    """The reference timeline where `speaker` talks and nobody else does."""
    mine = r.ref.label_timeline(speaker).support()
    others = r.ref.subset([x for x in r.ref.labels() if x != speaker]).get_timeline().support()
    return mine.extrude(others)


def _words(wav: Path) -> list:
    """Whisper's words of a recording (base, English, no fallback: the same every run)."""
    from whisper_cli.options.transcribe_options import TranscribeOptions
    from whisper_cli.transcribe import transcribe_file

    options = TranscribeOptions(
        model="base", language="en", temperature_increment_on_fallback=0.0, word_timestamps=True
    )
    return transcribe_file(wav, options)[0]


def _word_names(transcript, found) -> list:
    """The transcript's words with the speaker names `found` gives them (wt's own rule)."""
    from whisper_cli.speakers.diarize import assign_speakers

    named = assign_speakers(transcript, found.turns, keep_words=True, known=found.names)
    return [w for s in named.segments for w in s.words or ()]


def _one_speaker(r: Recording, word) -> str | None:
    """Who the reference has speaking alone at the word's middle (None: nobody or several)."""
    from pyannote.core import Segment

    middle = (word.start + word.end) / 2
    who = r.ref.crop(Segment(middle - 0.001, middle + 0.001)).labels()
    return who[0] if len(who) == 1 else None


def _named_timeline(found, name: str):
    from pyannote.core import Segment, Timeline

    chosen = {c for c, n in found.names.items() if n == name}
    return Timeline([Segment(t.start, t.end) for t in found.turns if t.speaker in chosen]).support()


def _heard(found, timeline) -> float:
    """Seconds of `timeline` that any found speaker covers."""
    from pyannote.core import Segment, Timeline

    return timeline.crop(
        Timeline([Segment(t.start, t.end) for t in found.turns]).support()
    ).duration()


def _labelled(found, timeline) -> dict[str, float]:
    """Seconds of `timeline` under each name the found speakers carry."""
    from pyannote.core import Segment, Timeline

    out: dict[str, float] = {}
    for c, name in found.names.items():
        tl = Timeline([Segment(t.start, t.end) for t in found.turns if t.speaker == c]).support()
        out[name] = out.get(name, 0.0) + timeline.crop(tl).duration()
    return out

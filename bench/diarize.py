"""Who spoke when, scored: `python bench/diarize.py [DIR ...] [--hour]`

DIR holds real recordings NAME.wav with hand-made references NAME.rttm (default: the call the
tests carry, tests/data/conversations; ../shared/diarization has six). Every system runs on
every recording in a fresh process (bench/diarize_once.py), the systems alternating:
- wt before: the diarization of the checkout in $WT_BEFORE (default: a worktree of the last
  release before this pipeline, c130f04: resemblyzer windows over Silero speech, threshold 0.4);
- wt: this checkout (segmentation-3.0 + CAM++ + clustering, whisper_cli/speakers/diarize.py);
- senko 0.2.2 (CAM++ embeddings too, its own VAD and clustering), an offline peer
  (`pip install senko==0.2.2` in a separate venv, or --no-deps beside umap-learn, hdbscan,
  termcolor, colour-science, silero-vad; give its python with --senko-python).
Scored with pyannote.metrics' DiarizationErrorRate, overlapped speech scored, with a collar of
0.25 s on each side of every reference boundary (NIST's classic setting) and without.
--tune: settings chosen by leave-one-out; --names: known voices (bench/speaker_tuning.py);
--purity: local speakers of the segmentation model that hold two people (bench/speaker_purity.py).
Time: diarization alone, and as a share of transcribing the same file with base (wt's
defaults). --hour: a one-hour recording (the recordings repeated) transcribed with base with
and without --diarize, in fresh processes, --hour-runs rounds alternating (medians): time and
peak memory of both.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import ROOT, median, run_json, table, worktree, write_wav

ONCE = str(ROOT / "bench" / "diarize_once.py")
TRANSCRIBE_ONCE = str(ROOT / "bench" / "transcribe_once.py")
BEFORE_COMMIT = "c130f04"
NAMES = {
    "wt-before": "wt 0.4 --diarize (resemblyzer, threshold)",
    "wt": "wt --diarize (segmentation-3.0 + CAM++)",
    "senko": "senko 0.2.2 (CAM++, CPU)",
}


def reference(path: Path):
    from pyannote.core import Annotation, Segment

    ref = Annotation(uri=path.stem)
    for i, line in enumerate(path.read_text().splitlines()):
        f = line.split()
        if f and f[0] == "SPEAKER":
            ref[Segment(float(f[3]), float(f[3]) + float(f[4])), i] = f[7]
    return ref


def hypothesis(turns: list, uri: str):
    from pyannote.core import Annotation, Segment

    hyp = Annotation(uri=uri)
    for i, (start, end, speaker) in enumerate(turns):
        if end > start:
            hyp[Segment(start, end), i] = str(speaker)
    return hyp


def before_checkout() -> Path:
    given = os.environ.get("WT_BEFORE")
    return Path(given) if given else worktree(BEFORE_COMMIT)


def one_hour(recordings: list[Path], path: Path) -> Path:
    from whisper_cli.audio.decode import decode

    parts = [decode(p) for p in recordings]
    total, out = 0, []
    while total < 3600 * 16000:
        for part in parts:
            out.append(part)
            total += part.size
    return write_wav(np.concatenate(out)[: 3600 * 16000], path)


def main() -> None:
    from pyannote.metrics.diarization import DiarizationErrorRate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path, default=[ROOT / "tests/data/conversations"])
    ap.add_argument("--systems", default="wt-before,wt,senko")
    ap.add_argument("--senko-python", default=sys.executable)
    ap.add_argument("--model", default="base")
    ap.add_argument("--hour", action="store_true")
    ap.add_argument("--hour-runs", type=int, default=3, help="rounds of the hour, alternating")
    ap.add_argument("--tune", action="store_true", help="settings by leave-one-out, then stop")
    ap.add_argument("--names", action="store_true", help="known voices measured, then stop")
    ap.add_argument(
        "--purity", action="store_true", help="local speakers holding two people, then stop"
    )
    args = ap.parse_args()
    files = sorted(w for d in args.dirs for w in d.glob("*.wav") if w.with_suffix(".rttm").exists())
    if not files:
        sys.exit(f"diarize.py: no NAME.wav + NAME.rttm pairs in {args.dirs}")
    if args.tune or args.names or args.purity:
        import speaker_tuning

        recs = speaker_tuning.load(files)
        if args.purity:
            from speaker_purity import purity

            purity(recs)
        if args.tune:
            speaker_tuning.tune(recs)
        if args.names:
            speaker_tuning.names(recs, Path(tempfile.mkdtemp()))
        return
    systems = args.systems.split(",")
    env_before = {**os.environ, "PYTHONPATH": str(before_checkout())}
    collared = {s: DiarizationErrorRate(collar=0.5, skip_overlap=False) for s in systems}
    strict = {s: DiarizationErrorRate(collar=0.0, skip_overlap=False) for s in systems}
    seconds = {s: 0.0 for s in systems}
    transcribe_s = {s: 0.0 for s in systems}
    per_file: list[list] = []
    audio_s = 0.0
    for n, wav in enumerate(files):
        ref = reference(wav.with_suffix(".rttm"))
        row = [wav.stem, len(ref.labels())]
        order = systems if n % 2 == 0 else systems[::-1]
        found = {}
        for system in order:
            python = args.senko_python if system == "senko" else sys.executable
            cmd = [python, ONCE, system, str(wav)]
            if system != "senko":
                cmd += ["--transcribe", args.model]
            out = run_json(cmd, env=env_before if system == "wt-before" else None)
            hyp = hypothesis(out["turns"], wav.stem)
            uem = ref.get_timeline().extent()
            collared[system](ref, hyp, uem=uem)
            der = strict[system](ref, hyp, uem=uem)
            seconds[system] += out["diarize_s"]
            transcribe_s[system] += out.get("transcribe_s", 0.0)
            found[system] = f"{len(hyp.labels())}, {der:.2f}"
            print(f"  {wav.stem} {system}: DER {der:.3f}", file=sys.stderr)
        audio_s += float(ref.get_timeline().extent().end)
        per_file.append(row + [found[s] for s in systems])
    rows = []
    for s in systems:
        share = f"{100 * seconds[s] / transcribe_s[s]:.0f}%" if transcribe_s[s] else "-"
        rows.append(
            [
                NAMES[s],
                f"{abs(collared[s]):.3f}",
                f"{abs(strict[s]):.3f}",
                f"{seconds[s] / audio_s:.3f}",
                share,
            ]
        )
    table(
        f"Diarization on {len(files)} real recordings ({audio_s / 60:.1f} min), DER",
        ["system", "DER, collar 0.25 s", "DER, no collar", "RTF (diarization)",
         f"share of transcription ({args.model})"],
        rows,
        "DER over all files (pyannote.metrics, overlapped speech scored; collar 0.25 s on each "
        "side of reference boundaries). Each system in a fresh process per file, models loaded "
        "and warmed up before the clock starts.",
        name="diarize",
    )  # fmt: skip
    table(
        "Per recording: speakers found, DER without collar",
        ["recording", "speakers", *[NAMES[s] for s in systems]],
        per_file,
        name="diarize-files",
    )
    if args.hour:
        path = one_hour(files, Path(tempfile.mkdtemp()) / "hour.wav")
        runs: dict[str, list[dict]] = {"plain": [], "diarize": []}
        for r in range(args.hour_runs):  # the two ways alternate; medians of each
            for way in ("plain", "diarize") if r % 2 == 0 else ("diarize", "plain"):
                extra = ["--batch", "0"] + (["--diarize"] if way == "diarize" else [])
                cmd = [sys.executable, TRANSCRIBE_ONCE, "wt-faster", args.model, "int8", str(path)]
                runs[way].append(run_json(cmd + extra))
                print(
                    f"  hour {r + 1} {way}: {runs[way][-1]['transcribe_s']:.0f} s", file=sys.stderr
                )
        plain, diarized = (
            {
                key: median([run[key] for run in runs[way]])
                for key in ("transcribe_s", "rss_mb", "diarize_s")
            }
            for way in ("plain", "diarize")
        )
        extra_s = diarized["transcribe_s"] - plain["transcribe_s"]
        steps_s = diarized["diarize_s"]
        table(
            f"One hour ({len(files)} recordings repeated), {args.model}, wt defaults, "
            f"medians of {args.hour_runs} rounds",
            ["", "wall s", "peak MB"],
            [
                ["transcription", f"{plain['transcribe_s']:.0f}", f"{plain['rss_mb']:.0f}"],
                ["with --diarize", f"{diarized['transcribe_s']:.0f}", f"{diarized['rss_mb']:.0f}"],
                [
                    "diarization's cost",
                    f"{extra_s:.0f} ({100 * extra_s / plain['transcribe_s']:.0f}%)",
                    f"{diarized['rss_mb'] - plain['rss_mb']:+.0f}",
                ],
                [
                    "of which in the diarization steps",
                    f"{steps_s:.0f} ({100 * steps_s / plain['transcribe_s']:.0f}%)",
                    "",
                ],
            ],
            "Fresh process each, the ways alternating; models loaded before the clock starts; "
            "peak memory is the process's VmHWM. The cost is the difference of the two ways' "
            "median wall times; the steps are timed inside the diarized runs (segmentation, "
            "embeddings, clustering, speakers on words).",
            name="diarize-hour",
        )


if __name__ == "__main__":
    main()

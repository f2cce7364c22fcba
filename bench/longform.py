"""Long recordings: each way of decoding them, side by side, on real long speech.

python bench/longform.py DIR [--model base] [--rounds 1] [--ways seq,batch8,...]

DIR holds pairs NAME.wav + NAME.txt (the text of exactly what is spoken), for example whole
audiobook chapters. Every way runs in a fresh process (bench/transcribe_once.py), the ways
alternating within each round and file; the table gives, per way, the total wall time over
all files (median of rounds), the real-time factor, WER with substitutions, deletions and
insertions summed over the files, the longest run of inserted words in any file (a repetition
loop shows as a long run) and the peak memory of the largest run.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from common import ROOT, median, run_json, table

from whisper_cli.wer import ErrorCounts, error_counts, longest_insertion_run, normalize

ONCE = str(ROOT / "bench" / "transcribe_once.py")
# name: (engine, extra arguments, what the row is)
WAYS = {
    "default": ("wt-faster", ["--batch", "0"], "wt transcribe, defaults"),
    "seq": ("wt-faster", ["--batch", "1"], "wt --batch-size 1 (sequential, as before)"),
    "batch4": ("wt-faster", ["--batch", "4"], "wt --batch-size 4"),
    "batch8": ("wt-faster", ["--batch", "8"], "wt --batch-size 8"),
    "batch16": ("wt-faster", ["--batch", "16"], "wt --batch-size 16"),
    "bare-batched8": ("bare-batched", ["--batch", "8"], "bare BatchedInferencePipeline, batch 8"),
    "bare-seq": ("bare-faster", [], "bare WhisperModel.transcribe"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--model", default="base")
    ap.add_argument("--compute", default="int8")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--ways", default="default,seq,batch8,bare-batched8")
    args = ap.parse_args()
    pairs = sorted(
        (wav, wav.with_suffix(".txt").read_text())
        for wav in args.dir.glob("*.wav")
        if wav.with_suffix(".txt").exists()
    )
    if not pairs:
        sys.exit(f"longform.py: no NAME.wav + NAME.txt pairs in {args.dir}")
    ways = args.ways.split(",")
    unknown = [w for w in ways if w not in WAYS]
    if unknown:
        sys.exit(f"longform.py: unknown way(s) {unknown}; known: {', '.join(WAYS)}")
    seconds: dict[str, list[float]] = defaultdict(list)  # per way: total wall s of a round
    errors: dict[str, ErrorCounts] = defaultdict(ErrorCounts)
    longest: dict[str, int] = defaultdict(int)
    rss: dict[str, float] = defaultdict(float)
    duration = 0.0
    words = sum(len(normalize(ref)) for _, ref in pairs)
    for round_no in range(args.rounds):
        totals: dict[str, float] = defaultdict(float)
        for wav, ref in pairs:
            order = ways if round_no % 2 == 0 else ways[::-1]
            for way in order:
                engine, extra, _ = WAYS[way]
                out = run_json(
                    [sys.executable, ONCE, engine, args.model, args.compute, str(wav), *extra]
                )
                totals[way] += out["transcribe_s"]
                rss[way] = max(rss[way], out["rss_mb"])
                if round_no == 0:
                    errors[way] += error_counts(ref, out["text"])
                    longest[way] = max(longest[way], longest_insertion_run(ref, out["text"]))
                    if way == ways[0]:
                        duration += out["duration"]
                print(f"  {wav.stem} {way}: {out['transcribe_s']:.1f} s", file=sys.stderr)
        for way in ways:
            seconds[way].append(totals[way])
    base = median(seconds["seq"]) if "seq" in seconds else None
    rows = []
    for way in ways:
        wall, e = median(seconds[way]), errors[way]
        rows.append(
            [
                WAYS[way][2],
                wall,
                f"{base / wall:.2f}x" if base else "-",
                f"{wall / duration:.3f}",
                f"{e.total / words:.4f}",
                e.substitutions,
                e.deletions,
                e.insertions,
                longest[way],
                rss[way],
            ]
        )
    table(
        f"Long recordings, {args.model} "
        f"({len(pairs)} files, {duration / 60:.1f} min, {words} words)",
        [
            "way",
            "wall s",
            "speed vs sequential",
            "RTF",
            "WER",
            "S",
            "D",
            "I",
            "longest insertion run",
            "peak MB",
        ],
        rows,
        f"{args.rounds} round(s), ways alternating, a fresh process per run; wall: median over "
        "rounds of the sum over files, model load excluded; WER, S/D/I and the longest run of "
        "inserted words from the first round (sequential decoding falls back to sampling on a "
        "failed window, so its WER varies a little between runs).",
        name=f"longform-{args.model}",
    )


if __name__ == "__main__":
    main()

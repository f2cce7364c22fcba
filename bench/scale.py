"""Scale: wall time and peak RSS against audio length (1, 5, 20, 60 min of real speech).

python bench/scale.py [--minutes 1 5 20 60] [--model tiny.en] [--batch 1]

Decoding is deterministic (no temperature fallback) and not conditioned on previous text:
the long recordings repeat the same real clips, which otherwise sends Whisper into
prompt-copying loops whose length is luck, not scale (see engines.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import ROOT, long_recording, run_json, table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 20, 60])
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    rows = []
    for minutes in args.minutes:
        wav, _ = long_recording(minutes * 60, tmp / f"{minutes}min.wav")
        r = run_json(
            [
                sys.executable,
                str(ROOT / "bench" / "transcribe_once.py"),
                "wt-faster",
                args.model,
                "int8",
                str(wav),
                "--no-fallback",
                "--no-condition",
                f"--batch={args.batch}",
            ]
        )
        rows.append(
            [
                minutes,
                r["transcribe_s"],
                r["transcribe_s"] / r["duration"],
                r["rss_mb"],
                r["load_s"],
            ]
        )
        wav.unlink()
    table(
        f"Scale: faster engine, model {args.model}, int8, beam 5, batch {args.batch}",
        ["audio min", "transcribe s", "RTF", "peak RSS MB", "load s"],
        rows,
        "One fresh process per length. Audio is decoded and transcribed in pieces of about "
        "3 minutes, so memory does not depend on the length.",
        name="scale",
    )


if __name__ == "__main__":
    main()

"""What diarization costs and how right it is: `python bench/diarize.py [--model base] [--runs 3]`

A two-person conversation built from real recordings of two men (CMU ARCTIC aew and axb,
alternating, 0.4 s pauses), repeated to about two minutes. In one process, models loaded
once: transcription without and with --diarize alternate, run after run; medians. The
diarization step is timed inside the one transcription path (its embeddings are taken piece
by piece, its clustering and word assignment at the end).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np
from common import SPEECH, median, table, write_wav

TURNS = ["arctic_aew_a0001", "arctic_axb_a0004", "arctic_aew_a0002",
         "arctic_axb_a0006", "arctic_aew_a0003", "arctic_axb_a0005"]  # fmt: skip


def conversation(seconds: float, path: Path) -> tuple[Path, list[tuple[float, float, str]]]:
    from whisper_cli.audio import decode

    gap = np.zeros(6400, np.float32)
    parts, truth, t = [], [], 0.0
    for name in itertools.cycle(TURNS):
        if t >= seconds:
            break
        audio = decode(SPEECH / f"{name}.wav")
        truth.append((t, t + audio.size / 16000, name.split("_")[1]))
        parts += [audio, gap]
        t += (audio.size + gap.size) / 16000
    return write_wav(np.concatenate(parts), path), truth


def accuracy(transcript, truth) -> float:
    """Share of the words' time given to the right person, best mapping of labels."""
    spans = []
    for w in (w for s in transcript.segments for w in s.words or ()):
        person = max(truth, key=lambda x: min(w.end, x[1]) - max(w.start, x[0]))[2]
        spans.append((max(w.end - w.start, 0.02), w.speaker, person))
    labels = sorted({s for _, s, _ in spans})
    people = sorted({p for *_, p in truth})
    total = sum(d for d, *_ in spans)
    return max(
        sum(d for d, s, p in spans if dict(zip(labels, m))[s] == p) / total
        for m in itertools.permutations(people + [None] * len(labels), len(labels))
    )


def main() -> None:
    from dataclasses import replace

    from whisper_cli.options import TranscribeOptions
    from whisper_cli.transcribe import transcribe_file

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="base")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=120)
    args = ap.parse_args()
    wav, truth = conversation(args.seconds, Path(tempfile.mkdtemp()) / "conversation.wav")
    plain = TranscribeOptions(model=args.model, word_timestamps=True)
    speakers = replace(plain, diarize=True)
    transcribe_file(wav, speakers)  # load the model and the speaker encoder once
    runs: dict[str, list[float]] = {"plain": [], "total": [], "diarize": []}
    found, right = [], []
    for _ in range(args.runs):
        timings: dict[str, float] = {}
        _, _, engine_s = transcribe_file(wav, plain)
        runs["plain"].append(engine_s)
        t, decode_s, engine_s = transcribe_file(wav, speakers, timings=timings)
        runs["total"].append(engine_s + timings["diarize"])
        runs["diarize"].append(timings["diarize"])
        found.append(len(t.speakers))
        right.append(accuracy(t, truth))
    duration = truth[-1][1]
    d, p = median(runs["diarize"]), median(runs["plain"])
    rows = [
        ["transcription (engine)", f"{p:.2f}", f"{p / duration:.3f}", ""],
        ["diarization step", f"{d:.2f}", f"{d / duration:.3f}", f"{100 * d / p:.1f}%"],
        ["speakers found / accuracy", f"{median(found):.0f} of 2", "", f"{min(right):.3f}"],
    ]
    table(
        f"Diarization, {duration:.0f} s two-person conversation (two men), {args.model}, beam 5",
        ["", "seconds", "real-time factor", "share of transcription / accuracy"],
        rows,
        notes=f"{args.runs} alternating runs in one process, models loaded once; medians. "
        "Accuracy: share of the words' time given to the right person (worst run).",
    )


if __name__ == "__main__":
    main()

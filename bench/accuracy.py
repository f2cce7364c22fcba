"""Accuracy against the bare engine: wt and the library it wraps, recording by recording.

For each engine and model, every real recording (and harder files made from them: speech
then silence, speech then quiet noise, resampled stereo, several recordings in one file) is
transcribed by wt and by the bare library on the same model and settings (beam 5,
temperature fallback, conditioning: both libraries' defaults). Rows list every recording
where the two differ; the summary counts recordings where wt is worse by more than one word.

- faster: `faster_whisper.WhisperModel(...).transcribe(path)`, its own loader.
- openai: `whisper.transcribe(model, samples)` on wt's samples (openai-whisper's own loader
  runs the ffmpeg program, which wt does not need and this machine does not have; wt's
  samples are 16-bit like that loader's).

Normalisation: lower case, punctuation stripped, numbers 0-99 and ordinals spelled out.
  python bench/accuracy.py [--models tiny.en,base] [--engines faster,openai]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from common import SR, speech, table, write_wav

from whisper_cli.audio.decode import decode
from whisper_cli.engines import load_engine
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.transcribe import transcribe_file
from whisper_cli.wer import ErrorCounts, error_counts, normalize


def recordings(work: Path) -> list[tuple[str, Path, str]]:
    """(name, file, reference): the real recordings, then files made from them."""
    base = [(f.stem, f, ref) for lang in ("en", "ru") for f, ref in speech(lang)]
    english = speech("en")
    gap = np.zeros(int(0.6 * SR), np.float32)
    four = np.concatenate([np.concatenate([decode(f), gap]) for f, _ in english[:4]])
    four_ref = " ".join(ref for _, ref in english[:4])
    made = []
    for seconds in (5, 10, 20):
        silence = np.zeros(seconds * SR, np.float32)
        path = write_wav(np.concatenate([four, silence]), work / f"four+silence{seconds}.wav")
        made.append((path.stem, path, four_ref))
    rng = np.random.default_rng(0)
    noise = rng.uniform(-0.02, 0.02, 10 * SR).astype(np.float32)
    noisy = write_wav(np.concatenate([four, noise]), work / "four+noise10.wav")
    made.append((noisy.stem, noisy, four_ref))
    everything = np.concatenate([np.concatenate([decode(f), gap]) for f, _ in english])
    all8 = write_wav(everything, work / "all8.wav")
    made.append((all8.stem, all8, " ".join(ref for _, ref in english)))
    stereo = work / "stereo44k.wav"
    subprocess.run(["sox", str(english[1][0]), "-r", "44100", "-c", "2", str(stereo)], check=True)
    made.append(("stereo44k", stereo, english[1][1]))
    return base + made


def bare(engine: str, model: str, path: Path, wt_engine) -> str:
    if engine == "faster":
        segments, _ = wt_engine.model.transcribe(str(path), beam_size=5)
        return "".join(s.text for s in segments)
    import whisper

    options = TranscribeOptions(model=model, engine="openai")
    result = whisper.transcribe(
        wt_engine.model, decode(path), beam_size=5, best_of=5, temperature=options.temperatures()
    )
    return result["text"]


SUMMARY_HEADER = [
    "engine",
    "model",
    "files",
    "words",
    "WER wt",
    "WER bare",
    "wt S/D/I",
    "bare S/D/I",
    "wt better",
    "wt worse (>1 word)",
]
DIFF_HEADER = ["engine", "model", "recording", "wt S/D/I", "bare S/D/I", "wt", "bare"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument("--engines", default="faster,openai")
    args = parser.parse_args()
    rows, summary = [], []
    with tempfile.TemporaryDirectory() as tmp:
        files = recordings(Path(tmp))
        for engine in args.engines.split(","):
            for model in args.models.split(","):
                options = TranscribeOptions(model=model, engine=engine)
                wt_engine = load_engine(options)
                totals = {"wt": ErrorCounts(), "bare": ErrorCounts()}
                words = worse = better = files_done = 0
                for name, path, ref in files:
                    if model.endswith(".en") and name == "ds_ru":
                        continue
                    ours = transcribe_file(path, options)[0].text
                    theirs = bare(engine, model, path, wt_engine)
                    e_wt, e_bare = error_counts(ref, ours), error_counts(ref, theirs)
                    totals["wt"] += e_wt
                    totals["bare"] += e_bare
                    words += len(normalize(ref))
                    worse += e_wt.total > e_bare.total + 1
                    better += e_wt.total < e_bare.total
                    files_done += 1
                    if normalize(ours) != normalize(theirs):
                        texts = [ours.strip(), theirs.strip()]
                        rows.append([engine, model, name, _fmt(e_wt), _fmt(e_bare), *texts])
                wer_wt, wer_bare = totals["wt"].total / words, totals["bare"].total / words
                counts = [_fmt(totals["wt"]), _fmt(totals["bare"]), better, worse]
                summary.append([engine, model, files_done, words, wer_wt, wer_bare, *counts])
    table(
        "Accuracy: wt against the bare library, same recordings, model and settings",
        SUMMARY_HEADER,
        summary,
        "S/D/I: substituted, deleted (lost) and inserted (added) words. Recordings where the "
        "transcripts differ:\n\n"
        + "\n".join(_markdown_rows([DIFF_HEADER, ["---"] * len(DIFF_HEADER), *rows])),
        name="accuracy",
    )


def _markdown_rows(rows: list[list[object]]) -> list[str]:
    return ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def _fmt(e: ErrorCounts) -> str:
    return f"{e.substitutions}/{e.deletions}/{e.insertions}"


if __name__ == "__main__":
    main()

"""Accuracy: WER of each engine and model on the real recordings in shared/speech.

Normalisation: lower case, punctuation stripped, numbers 0-99 and ordinals spelled out.
  python bench/accuracy.py
"""

from __future__ import annotations

from common import speech, table

from whisper_cli.engines import load_engine
from whisper_cli.options import TranscribeOptions
from whisper_cli.transcribe import transcribe_file
from whisper_cli.wer import normalize, word_errors

CONFIGS = [
    ("faster", "int8", "tiny.en"),
    ("faster", "float32", "tiny.en"),
    ("openai", "float32", "tiny.en"),
    ("faster", "int8", "base"),
    ("faster", "float32", "base"),
    ("openai", "float32", "base"),
]


def main() -> None:
    rows = []
    for engine, compute, model in CONFIGS:
        opts = TranscribeOptions(model=model, engine=engine, compute_type=compute)
        load_engine(opts)
        for lang in ("en", "ru"):
            if lang == "ru" and model.endswith(".en"):
                continue
            pairs = [(ref, transcribe_file(f, opts)[0].text) for f, ref in speech(lang)]
            errors = sum(word_errors(r, h) for r, h in pairs)
            words = sum(len(normalize(r)) for r, _ in pairs)
            rows.append([engine, compute, model, lang, len(pairs), words, errors / words])
    table(
        "Accuracy on the real recordings (corpus WER)",
        ["engine", "compute", "model", "lang", "files", "words", "WER"],
        rows,
        "Lower case, punctuation stripped, numbers 0-99 and ordinals spelled out; beam 5.",
        name="accuracy",
    )


if __name__ == "__main__":
    main()

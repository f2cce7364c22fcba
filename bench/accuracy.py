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

# (engine, compute type, model, batch size)
CONFIGS = [
    ("faster", "int8", "tiny.en", 1),
    ("faster", "int8", "tiny.en", 8),
    ("faster", "float32", "tiny.en", 1),
    ("openai", "float32", "tiny.en", 1),
    ("faster", "int8", "base", 1),
    ("faster", "int8", "base", 8),
    ("faster", "float32", "base", 1),
    ("openai", "float32", "base", 1),
]


def main() -> None:
    rows = []
    for engine, compute, model, batch in CONFIGS:
        opts = TranscribeOptions(model=model, engine=engine, compute_type=compute, batch_size=batch)
        load_engine(opts)
        for lang in ("en", "ru"):
            if lang == "ru" and model.endswith(".en"):
                continue
            pairs = [(ref, transcribe_file(f, opts)[0].text) for f, ref in speech(lang)]
            errors = sum(word_errors(r, h) for r, h in pairs)
            words = sum(len(normalize(r)) for r, _ in pairs)
            rows.append([engine, compute, batch, model, lang, len(pairs), words, errors / words])
    table(
        "Accuracy on the real recordings (corpus WER)",
        ["engine", "compute", "batch", "model", "lang", "files", "words", "WER"],
        rows,
        "Lower case, punctuation stripped, numbers 0-99 and ordinals spelled out; beam 5.",
        name="accuracy",
    )


if __name__ == "__main__":
    main()
